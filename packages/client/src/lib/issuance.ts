// Obtaining an ICT or a WIT from an issuer, in either of the two forms @oidc2/issuer serves:
// - the OIDC² draft ICT request (section 4.3): POST to `ict_endpoint` (for a WIT the same request
//   to `wit_endpoint`), the credential in `Authorization` (or a client assertion in the body), a
//   `jwt+pop` PoP token proving the key;
// - RFC 8693 token exchange at `token_endpoint`, the credential as `subject_token`, the key proven
//   by an RFC 9449 DPoP proof (with one retry when the issuer asks for a DPoP nonce), the token
//   kind named by `requested_token_type`.
import { ERROR_STATUS, Oidc2Error, createDpopProof, createNonce, isOidc2Error, type Oidc2ErrorCode } from '@oidc2/core';
import { argumentError, assertOptions, failureOf, readBoundedBody, type EventSink } from '@oidc2/core/adapter';
import { SignJWT, decodeJwt } from 'jose';
import type { ClientKey } from './keys.js';

/** A value, or a function returning it (called for every issuance, so it may rotate). */
export type Supplied<T> = T | (() => T | Promise<T>);

/**
 * How the client authenticates to the issuer. Exactly one member.
 * - `accessToken`: an end-user's OAuth access token (granting `e2e_auth_*` scopes), sent as
 *   `Authorization: Bearer` (ICT request) or as `subject_token` of type `access_token` (token exchange).
 * - `apiKey`: a workload's API key, sent as `Authorization: ApiKey` or as `subject_token` of type
 *   `urn:oidc2:params:oauth:token-type:api-key`.
 * - `clientAssertion`: a workload's RFC 7523 JWT client assertion. Each one is accepted once, so
 *   supply a function that makes a fresh one (`aud`: the issuer or the endpoint URL).
 */
export type IssuerCredential =
  | { accessToken: Supplied<string>; apiKey?: never; clientAssertion?: never }
  | { apiKey: Supplied<string>; accessToken?: never; clientAssertion?: never }
  | { clientAssertion: () => string | Promise<string>; accessToken?: never; apiKey?: never };

/**
 * Where and how the client obtains its credential from an issuer (e.g. `@oidc2/issuer`): an ICT,
 * or with a workload proof (`proof: 'wimse-signature'` or `'wpt'`) a WIT.
 */
interface IssuanceCommon {
  /**
   * The issuer's URL: its identifier (the `iss` of the ICTs and WITs it issues, and the PoP token
   * `aud`). Its endpoints come from `<url>/.well-known/openid-configuration` unless `endpoint` is
   * given. Required. (Formerly `issuer`: `issuer: { url }` rather than `issuer: { issuer }`.)
   */
  url: string;
  /**
   * The client's credential at the issuer. Required. A Kubernetes workload passes its projected
   * service-account token as `clientAssertion` (read again at every issuance, as the kubelet
   * rotates it).
   */
  credential: IssuerCredential;
  /**
   * The request form:
   * - `'ict'`: the OIDC² draft ICT request with a PoP token, at `ict_endpoint` (ICT proofs only);
   * - `'wit'`: the same request at the issuer's WIT endpoint, `wit_endpoint` (workload proofs only);
   * - `'token-exchange'`: RFC 8693 token exchange with a DPoP proof at `token_endpoint`, asking for
   *   an ICT (`requested_token_type` `urn:ietf:params:oauth:token-type:ic_token`) or, with a
   *   workload proof, a WIT (`urn:ietf:params:oauth:token-type:wit`).
   *
   * Default `'ict'`, or `'wit'` with a workload proof.
   */
  grant?: 'ict' | 'wit' | 'token-exchange';
  /** The ICT, WIT or token endpoint of `grant`. Default: from discovery. */
  endpoint?: string;
  /**
   * The subject the credential belongs to: the PoP token's `sub`, which the issuer compares with
   * the authenticated subject (the end-user's `sub`, the workload's identifier; at the WIT
   * endpoint also the Workload Identifier the WIT will carry). Required for `grant: 'ict'` and
   * `'wit'`; unused for token exchange.
   */
  subject?: string;
  /** The OAuth client id: the PoP token's `iss`. Default: `subject`. */
  clientId?: string;
  /** OIDC² contexts to request (token exchange `scope` `e2e_auth_<ctx>`; ICTs only: a WIT has none). Default: all the credential grants. */
  contexts?: string[];
  /** Claims the ICT must carry (PoP `required_claims`; `'ict'` only). Default none. */
  requiredClaims?: string[];
  /** Claims the ICT should carry when available (PoP `optional_claims`; `'ict'` only). Default none. */
  optionalClaims?: string[];
  /** Milliseconds before an issuer request is abandoned. Default `10000`. */
  timeout?: number;
}

/**
 * Where and how the client obtains its credential from an issuer (e.g. `@oidc2/issuer`): an ICT,
 * or with a workload proof (`proof: 'wimse-signature'` or `'wpt'`) a WIT. The ICT and WIT requests
 * need the `subject` (the PoP token's `sub`); token exchange does not.
 */
export type IssuanceOptions = (IssuanceCommon & { grant?: 'ict' | 'wit'; subject: string }) | (IssuanceCommon & { grant: 'token-exchange' });

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ICT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:ic_token';
const WIT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:wit';

/** The kind of credential obtained: an ICT, or a WIT for a workload proof. */
export type CredentialKind = 'ict' | 'wit';
const SUBJECT_TOKEN_TYPES = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  apiKey: 'urn:oidc2:params:oauth:token-type:api-key',
  clientAssertion: 'urn:ietf:params:oauth:token-type:jwt',
} as const;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_ANSWER_BYTES = 65536;

function stringList(value: unknown, name: string): void {
  if (value !== undefined && (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.${name} must be an array of strings`);
  }
}

/** The request form of `o` for a credential of `kind`. */
function grantOf(o: IssuanceOptions, kind: CredentialKind): 'ict' | 'wit' | 'token-exchange' {
  return o.grant ?? kind;
}

/** Every key of {@link IssuanceOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
const ISSUANCE_OPTION_KEYS = ['url', 'credential', 'grant', 'endpoint', 'subject', 'clientId', 'contexts', 'requiredClaims', 'optionalClaims', 'timeout'] as const satisfies ReadonlyArray<keyof IssuanceCommon>;
/** Former names of {@link IssuanceOptions} keys, refused with the current name. */
const ISSUANCE_RENAMED = { issuer: 'url' } as const;

/** Validates `options.issuer` once, at construction, for a credential of `kind`. */
export function validateIssuerOptions(o: IssuanceOptions, kind: CredentialKind = 'ict'): void {
  assertOptions(o, ISSUANCE_OPTION_KEYS, 'options.issuer', ISSUANCE_RENAMED);
  for (const [name, value] of [['url', o.url], ['endpoint', o.endpoint]] as const) {
    if (value === undefined && name === 'endpoint') continue;
    let url: URL | undefined;
    try {
      url = typeof value === 'string' ? new URL(value) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.${name} must be an absolute http(s) URL`);
  }
  const grant = grantOf(o, kind);
  if (grant !== 'ict' && grant !== 'wit' && grant !== 'token-exchange') throw argumentError('ERR_INVALID_ARG_VALUE', "options.issuer.grant must be 'ict', 'wit' or 'token-exchange'");
  if (grant !== 'token-exchange' && grant !== kind) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.grant '${grant}' obtains ${grant === 'ict' ? 'an ICT' : 'a WIT'}, and this client's proof needs ${kind === 'ict' ? 'an ICT' : 'a WIT'}`);
  }
  const c = o.credential as Record<string, unknown> | undefined;
  const kinds = c && typeof c === 'object' ? (['accessToken', 'apiKey', 'clientAssertion'] as const).filter((k) => c[k] !== undefined) : [];
  if (kinds.length !== 1) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer.credential must have exactly one of accessToken, apiKey, clientAssertion');
  const supplied = c![kinds[0]!];
  if (typeof supplied !== 'function' && (typeof supplied !== 'string' || supplied.length === 0 || kinds[0] === 'clientAssertion')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.credential.${kinds[0]} must be ${kinds[0] === 'clientAssertion' ? 'a function' : 'a string or a function'}`);
  }
  if (grant !== 'token-exchange' && (typeof o.subject !== 'string' || o.subject.length === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.subject is required for grant '${grant}'`);
  }
  if (kind === 'wit') {
    // A WIT carries no contexts and no identity claims: the issuer refuses to be asked for them.
    for (const name of ['contexts', 'requiredClaims', 'optionalClaims'] as const) {
      if (o[name] !== undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuer.${name} does not apply to a WIT`);
    }
  }
  if (o.clientId !== undefined && (typeof o.clientId !== 'string' || o.clientId.length === 0)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer.clientId must be a non-empty string');
  stringList(o.contexts, 'contexts');
  stringList(o.requiredClaims, 'requiredClaims');
  stringList(o.optionalClaims, 'optionalClaims');
  if (o.timeout !== undefined && (typeof o.timeout !== 'number' || !(o.timeout > 0))) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer.timeout must be a positive number');
}

export interface IssuanceEnvironment {
  fetch: typeof fetch;
  now: () => number;
  /** The issuer's discovery document, fetched once per client. */
  discovery: { document?: Promise<Record<string, unknown>> | undefined };
  /** Where each issuance is reported, as an `issuer_grant` event of the client's side. */
  events: EventSink;
}

// A supplier's failure is the application's, not the issuer's: its own code, with the cause.
async function supplied<T>(value: Supplied<T>, name: string): Promise<T> {
  if (typeof value !== 'function') return value;
  try {
    return await (value as () => T | Promise<T>)();
  } catch (cause) {
    throw new Oidc2Error('credential_supplier_failed', `options.issuer.credential.${name} threw`, { cause });
  }
}

const cut = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

async function readJson(response: Response): Promise<Record<string, unknown> | undefined> {
  const bytes = await readBoundedBody(response, MAX_ANSWER_BYTES, () => new Oidc2Error('issuer_unavailable', `the issuer's answer exceeds ${MAX_ANSWER_BYTES} bytes`));
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// The issuer's refusal keeps its stable code when it is one of ours; anything else is "unavailable".
// Either way the error says what the issuer said (`remote`, and its description in the message).
function refusal(status: number, body: Record<string, unknown> | undefined, kind: CredentialKind): Oidc2Error {
  const code = typeof body?.code === 'string' ? body.code : undefined;
  const error = typeof body?.error === 'string' ? body.error : undefined;
  const description = typeof body?.error_description === 'string' ? cut(body.error_description) : undefined;
  const remote = { status, verified: false, ...(code ?? error ? { code: (code ?? error)! } : {}), ...(error ? { error } : {}), ...(description ? { description } : {}) };
  const said = [error ?? code, description].filter((s) => s !== undefined).join(': ');
  if (status < 500 && code !== undefined && Object.prototype.hasOwnProperty.call(ERROR_STATUS, code)) {
    return new Oidc2Error(code as Oidc2ErrorCode, `the issuer refused the ${kind.toUpperCase()} request (HTTP ${status}${said ? `, ${said}` : ''})`, { remote });
  }
  return new Oidc2Error('issuer_unavailable', `the issuer answered HTTP ${status}${said ? ` (${said})` : ''}`, { remote });
}

const ENDPOINT_MEMBER = { ict: 'ict_endpoint', wit: 'wit_endpoint', 'token-exchange': 'token_endpoint' } as const;

async function endpointOf(o: IssuanceOptions, kind: CredentialKind, env: IssuanceEnvironment, signal: AbortSignal): Promise<string> {
  if (o.endpoint !== undefined) return o.endpoint;
  const member = ENDPOINT_MEMBER[grantOf(o, kind)];
  let document = env.discovery.document;
  if (!document) {
    document = (async () => {
      const response = await env.fetch(`${o.url.replace(/\/$/, '')}/.well-known/openid-configuration`, { headers: { accept: 'application/json' }, redirect: 'error', signal });
      const body = await readJson(response);
      if (!response.ok || !body) throw new Oidc2Error('issuer_unavailable', `the issuer's discovery document is unavailable (HTTP ${response.status})`);
      // OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer we asked.
      if (body.issuer !== o.url) throw new Oidc2Error('issuer_unavailable', "the discovery document names another issuer");
      return body;
    })();
    // Kept for the client's lifetime; a failed discovery is retried by the next issuance.
    env.discovery.document = document;
    document.catch(() => {
      if (env.discovery.document === document) env.discovery.document = undefined;
    });
  }
  const endpoint = (await document)[member];
  if (typeof endpoint !== 'string') throw new Oidc2Error('issuer_unavailable', `the issuer advertises no ${member}`);
  return endpoint;
}

async function popToken(o: IssuanceOptions, key: ClientKey, now: number): Promise<string> {
  const iat = Math.floor(now);
  const claims: Record<string, unknown> = {
    iss: o.clientId ?? o.subject,
    sub: o.subject,
    aud: o.url,
    iat,
    nbf: iat,
    exp: iat + 60,
    jti: createNonce(),
  };
  if (o.requiredClaims) claims.required_claims = o.requiredClaims;
  if (o.optionalClaims) claims.optional_claims = o.optionalClaims;
  return new SignJWT(claims).setProtectedHeader({ typ: 'jwt+pop', alg: key.alg, jwk: key.publicJwk }).sign(key.privateKey);
}

/**
 * Obtains an ICT (or, with `kind` `'wit'`, a WIT) for `key` from the configured issuer, and reports
 * the answer as an `issuer_grant` event (identifiers and the key's thumbprint only).
 */
export async function issueCredential(o: IssuanceOptions, key: ClientKey, env: IssuanceEnvironment, kind: CredentialKind = 'ict'): Promise<string> {
  let token: string;
  try {
    token = await requestCredential(o, key, env, kind);
  } catch (error) {
    if (env.events.wants('issuer_grant')) {
      const remote = isOidc2Error(error) ? error.remote : undefined;
      env.events.publish({
        ...grantEvent(o, key, kind),
        outcome: 'failure',
        ...failureOf(error),
        ...(remote ? { status: remote.status } : {}),
        ...(remote?.code !== undefined ? { remoteCode: remote.code.slice(0, 64) } : {}),
      });
    }
    throw error;
  }
  if (env.events.wants('issuer_grant')) {
    // The issued token's own claims (not verified here: the service verifies it) name whom it certifies.
    let claims: { sub?: unknown; exp?: unknown } = {};
    try {
      claims = decodeJwt(token);
    } catch {
      // A token that is not a JWT is refused when it is inspected.
    }
    const base = grantEvent(o, key, kind);
    const subject = typeof claims.sub === 'string' ? claims.sub : base.subject;
    env.events.publish({
      ...base,
      outcome: 'success',
      ...(subject !== undefined ? { subject } : {}),
      ...(typeof claims.exp === 'number' ? { expiresAt: claims.exp } : {}),
    });
  }
  return token;
}

function grantEvent(o: IssuanceOptions, key: ClientKey, kind: CredentialKind) {
  const client = o.clientId ?? o.subject;
  return {
    type: 'issuer_grant' as const,
    side: 'client' as const,
    grant: grantOf(o, kind),
    token: kind,
    ...(o.subject !== undefined ? { subject: o.subject } : {}),
    ...(client !== undefined ? { client } : {}),
    thumbprint: key.thumbprint,
  };
}

async function requestCredential(o: IssuanceOptions, key: ClientKey, env: IssuanceEnvironment, kind: CredentialKind): Promise<string> {
  const signal = AbortSignal.timeout(o.timeout ?? 10_000);
  let response: Response;
  let body: Record<string, unknown> | undefined;
  try {
    const endpoint = await endpointOf(o, kind, env, signal);
    const c = o.credential;
    if (grantOf(o, kind) !== 'token-exchange') {
      const pop = await popToken(o, key, env.now());
      const headers: Record<string, string> = { accept: 'application/json' };
      let requestBody: string;
      if (c.clientAssertion !== undefined) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        requestBody = new URLSearchParams({ client_assertion_type: JWT_BEARER, client_assertion: await supplied(c.clientAssertion, 'clientAssertion'), pop_token: pop }).toString();
      } else {
        headers['content-type'] = 'application/jwt+pop';
        headers.authorization = c.accessToken !== undefined ? `Bearer ${await supplied(c.accessToken, 'accessToken')}` : `ApiKey ${await supplied(c.apiKey!, 'apiKey')}`;
        requestBody = pop;
      }
      response = await env.fetch(endpoint, { method: 'POST', headers, body: requestBody, redirect: 'error', signal });
      body = await readJson(response);
      if (response.status === 201 || response.status === 200) return tokenFrom(kind === 'ict' ? body?.identity_certification_token : body?.workload_identity_token, kind);
      throw refusal(response.status, body, kind);
    }
    const presented = c.accessToken !== undefined ? 'accessToken' : c.apiKey !== undefined ? 'apiKey' : 'clientAssertion';
    const params = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token: await supplied(presented === 'clientAssertion' ? c.clientAssertion! : (c.accessToken ?? c.apiKey)!, presented),
      subject_token_type: SUBJECT_TOKEN_TYPES[presented],
      requested_token_type: kind === 'ict' ? ICT_TOKEN_TYPE : WIT_TOKEN_TYPE,
    });
    if (o.contexts) params.set('scope', o.contexts.map((ctx) => `e2e_auth_${ctx}`).join(' '));
    let nonce: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const proof = await createDpopProof({ method: 'POST', url: endpoint, key: key.signer, jwk: key.publicJwk, now: env.now, ...(nonce ? { nonce } : {}) });
      response = await env.fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop: proof },
        body: params.toString(),
        redirect: 'error',
        signal,
      });
      body = await readJson(response);
      const fresh = response.headers.get('dpop-nonce');
      // RFC 9449 section 8: the token endpoint asks for a nonce with 400 use_dpop_nonce.
      if (attempt === 0 && response.status === 400 && body?.error === 'use_dpop_nonce' && fresh && fresh !== nonce) {
        nonce = fresh;
        continue;
      }
      // What came back is checked as the credential asked for (an ICT, or a WIT by its typ) before use.
      if (response.status === 200) return tokenFrom(body?.access_token, kind);
      throw refusal(response.status, body, kind);
    }
  } catch (error) {
    if (isOidc2Error(error)) throw error;
    throw new Oidc2Error('issuer_unavailable', 'the issuer could not be reached', { cause: error });
  }
}

function tokenFrom(value: unknown, kind: CredentialKind): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw kind === 'ict' ? new Oidc2Error('ict_malformed', 'the issuer answered without an ICT') : new Oidc2Error('wit_invalid', 'the issuer answered without a WIT');
  }
  return value;
}
