/**
 * Decision events: one structured record per authentication decision, response signature, key
 * fetch, credential renewal and issuer grant, for logs, traces and metrics. An event carries codes,
 * identifiers (subject, issuer, client), RFC 7638 thumbprints and URLs of configured endpoints;
 * never a token, a proof, a signature, a key or a body. Events are published on
 * `node:diagnostics_channel` (channel names in {@link OIDC2_EVENT_CHANNELS}) when running on Node,
 * and handed to an `onEvent` option everywhere (browsers included). A throwing `onEvent` never
 * changes the outcome of a request: its error is dropped.
 */
import type { Oidc2ErrorCode } from './errors.js';
import { isOidc2Error } from './errors.js';
import type { ProofType } from './binding.js';
import { argumentError } from './lib/validate.js';
import { nodeBuiltin } from './lib/builtin.js';

/** What every event has. */
export interface Oidc2EventBase {
  /** Unix time in milliseconds at which the event was published. */
  readonly time: number;
  /** `'success'`, or `'failure'` with {@link code}. */
  readonly outcome: 'success' | 'failure';
  /** The coded error of a failure. */
  readonly code?: Oidc2ErrorCode;
  /**
   * Why, in words, for a failure: the coded error's message (which never contains a token, proof or
   * key) and its cause's. A message of foreign origin (a custom credential provider's error, say) is
   * cut to 200 characters and every run of 16 or more base64 or base64url characters in it is
   * replaced by `[redacted]`, so a token or key it quotes never reaches an event.
   */
  readonly reason?: string;
}

/** A service decided whether a request may reach its route. */
export interface AuthenticationEvent extends Oidc2EventBase {
  readonly type: 'authentication';
  readonly method: string;
  /** The request path, without its query (which may carry secrets). */
  readonly path: string;
  /** The HTTP status of a refusal. */
  readonly status?: number;
  /**
   * On an optional route, a failed authentication that still let the request through without an
   * identity (`outcome` is `'failure'` and the route runs).
   */
  readonly anonymous?: boolean;
  /** The proof the request used (or named, for a refusal). */
  readonly proof?: ProofType;
  readonly kind?: 'user' | 'workload';
  readonly subject?: string;
  readonly issuer?: string;
  /** RFC 7638 thumbprint of the caller's key. */
  readonly thumbprint?: string;
  /** End-to-end encryption of the exchange: a handshake, a session request or a rekey. */
  readonly e2ee?: 'handshake' | 'session' | 'rekey';
  /**
   * What the service expected, where that helps an operator: for `audience_mismatch` and
   * `ict_audience_mismatch` the configured audiences. Never sent to the caller.
   */
  readonly expected?: { readonly audiences?: readonly string[] };
  /** Milliseconds the decision took, from the exchange's start to the decision. */
  readonly durationMs: number;
}

/** A service signed a response, or could not sign one it had to. */
export interface ResponseSigningEvent extends Oidc2EventBase {
  readonly type: 'response_signing';
  readonly method: string;
  readonly path: string;
  /** Status of the response that was signed (or could not be). */
  readonly status: number;
  /** The credential that signed: the service's ICT or WIT. */
  readonly credential?: 'ict' | 'wit';
  /** RFC 7638 thumbprint of the service key that signed. */
  readonly thumbprint?: string;
  /** Whether the head of a streamed encrypted body was signed (no digest). */
  readonly streamed?: boolean;
}

/** A verifier fetched (or failed to fetch) an issuer's keys. */
export interface KeyFetchEvent extends Oidc2EventBase {
  readonly type: 'key_fetch';
  /** The configured issuer identifier. */
  readonly issuer: string;
  /** The URL fetched (a configured or discovered `jwks_uri`, or the discovery document). */
  readonly url?: string;
  /** Number of keys in the fetched set. */
  readonly keys?: number;
  /** A failed fetch was bridged with the keys of an earlier one (stale-if-error). */
  readonly stale?: boolean;
}

/** A service or client renewed (or failed to renew) its own credential. */
export interface CredentialRefreshEvent extends Oidc2EventBase {
  readonly type: 'credential_refresh';
  /** Whose credential: a service's (signs responses) or a client's (signs requests). */
  readonly side: 'service' | 'client';
  readonly credential: 'ict' | 'wit';
  readonly subject?: string;
  readonly issuer?: string;
  /** RFC 7638 thumbprint of the key the credential certifies. */
  readonly thumbprint?: string;
  /** `exp` of the new credential (unix seconds). */
  readonly expiresAt?: number;
  /** A failed renewal while the old credential is still valid and stays in use. */
  readonly keptPrevious?: boolean;
}

/** An issuer answered a request for a credential (at the issuer, or as seen by a client). */
export interface IssuerGrantEvent extends Oidc2EventBase {
  readonly type: 'issuer_grant';
  readonly side: 'issuer' | 'client';
  /** The request form: the ICT request, the WIT request or RFC 8693 token exchange. */
  readonly grant: 'ict' | 'wit' | 'token-exchange';
  /** The token kind asked for. */
  readonly token?: 'ict' | 'wit';
  readonly subject?: string;
  /** The OAuth client or workload authenticated at the issuer. */
  readonly client?: string;
  /** RFC 7638 thumbprint of the key certified. */
  readonly thumbprint?: string;
  readonly expiresAt?: number;
  /** HTTP status the issuer answered a failure with. */
  readonly status?: number;
  /** The issuer's own error code (its problem `code` or OAuth `error`) on a refusal, as a client saw it. */
  readonly remoteCode?: string;
}

/** A client verified (or refused) a service's response. */
export interface ResponseVerificationEvent extends Oidc2EventBase {
  readonly type: 'response_verification';
  readonly method: string;
  /** The request URL's origin and path, without its query. */
  readonly url: string;
  readonly status?: number;
  readonly subject?: string;
  readonly issuer?: string;
  readonly thumbprint?: string;
  /** End-to-end encryption of the exchange. */
  readonly e2ee?: 'handshake' | 'session' | 'rekey';
  /** The service's problem `code` on a signed refusal (`outcome` is still `'success'`: it verified). */
  readonly remoteCode?: string;
}

/** Every event an oidc2 package publishes. */
export type Oidc2Event = AuthenticationEvent | ResponseSigningEvent | KeyFetchEvent | CredentialRefreshEvent | IssuerGrantEvent | ResponseVerificationEvent;

/** The event types. */
export type Oidc2EventType = Oidc2Event['type'];

/** Receives every event of one service, verifier, client or issuer. */
export type Oidc2EventListener = (event: Oidc2Event) => void;

/** `node:diagnostics_channel` names, one per event type. */
export const OIDC2_EVENT_CHANNELS: Readonly<Record<Oidc2EventType, string>> = Object.freeze({
  authentication: 'oidc2:authentication',
  response_signing: 'oidc2:response-signing',
  key_fetch: 'oidc2:key-fetch',
  credential_refresh: 'oidc2:credential-refresh',
  issuer_grant: 'oidc2:issuer-grant',
  response_verification: 'oidc2:response-verification',
});

interface Channel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}
interface DiagnosticsChannel {
  channel(name: string): Channel;
}

const channels: Readonly<Record<Oidc2EventType, Channel>> | undefined = (() => {
  const dc = nodeBuiltin<DiagnosticsChannel>('node:diagnostics_channel');
  if (!dc) return undefined;
  const made = {} as Record<Oidc2EventType, Channel>;
  for (const [type, name] of Object.entries(OIDC2_EVENT_CHANNELS)) made[type as Oidc2EventType] = dc.channel(name);
  return made;
})();

/** An event without what the publisher adds. */
export type EventInit<E extends Oidc2Event = Oidc2Event> = E extends Oidc2Event ? Omit<E, 'time'> : never;

/** Where a component publishes its events. */
export interface EventSink {
  /** Whether anyone listens to events of `type` (so a publisher can skip building one). */
  wants(type: Oidc2EventType): boolean;
  /** Publishes `event` to the listener and the type's channel. */
  publish(event: EventInit): void;
}

/** Checks an `onEvent` option once. */
export function assertEventListener(value: unknown, name: string): asserts value is Oidc2EventListener | undefined {
  if (value !== undefined && typeof value !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be a function`);
}

/** The sink of one component: its `onEvent` listener (if any) and the diagnostics channels. */
export function createEventSink(listener: Oidc2EventListener | undefined): EventSink {
  return {
    wants: (type) => listener !== undefined || channels?.[type].hasSubscribers === true,
    publish(init) {
      const event = Object.freeze({ ...init, time: Date.now() }) as unknown as Oidc2Event;
      if (listener) {
        try {
          listener(event);
        } catch {
          // A listener's failure never changes a decision.
        }
      }
      const channel = channels?.[event.type];
      if (channel?.hasSubscribers) {
        try {
          channel.publish(event);
        } catch {
          // Nor does a subscriber's.
        }
      }
    },
  };
}

/** A sink that publishes to the diagnostics channels only. */
export const CHANNEL_SINK: EventSink = createEventSink(undefined);

// Anything that could be a token, a key or a signature: base64 or base64url runs of 16 or more.
const SECRET_LIKE = /[A-Za-z0-9+/_=-]{16,}/g;

function foreign(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : typeof error;
  return text.slice(0, 200).replace(SECRET_LIKE, '[redacted]');
}

/** The `code` and `reason` of a failure, without anything an error of foreign origin may hold. */
export function failureOf(error: unknown): { code?: Oidc2ErrorCode; reason: string } {
  if (!isOidc2Error(error)) return { reason: foreign(error) };
  const cause = (error as { cause?: unknown }).cause;
  const why = cause === undefined ? '' : isOidc2Error(cause) ? ` (${cause.code}: ${cause.message})` : ` (${foreign(cause)})`;
  return { code: error.code, reason: `${error.message}${why}` };
}
