// Workload attestation with Kubernetes projected service-account tokens: JWTs the cluster's API
// server signs for a pod (TokenRequest API), verified through the cluster issuer's OIDC discovery
// and mapped to a Workload Identifier by a configured rule.
import { ASYMMETRIC_JWA, Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions } from '@oidc2/core/adapter';
import { decodeJwt, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { compileTemplate, isTrustDomain, MAX_IDENTIFIER_LENGTH } from '../lib/identifier.js';
import type { ClientAuthenticator } from '../types.js';
import { fetchOption, requireString, stringArray } from './args.js';
import { NOT_ACCESS_TOKENS } from './claims.js';
import { isKeySourceFailure, keyResolver, remoteKeyOptions, type RemoteKeyOptions } from './keys.js';

const ASYMMETRIC: readonly string[] = ASYMMETRIC_JWA;
const WHERE = 'kubernetesServiceAccounts options';

/** The verified facts of a projected service-account token (its `kubernetes.io` claim). */
export interface KubernetesServiceAccount {
  /** `kubernetes.io.namespace`. */
  namespace: string;
  /** `kubernetes.io.serviceaccount`: the service account's name and uid. */
  serviceAccount: { name: string; uid: string };
  /** `kubernetes.io.pod`: the pod the token is bound to. Absent for tokens not bound to a pod. */
  pod?: { name: string; uid: string };
  /** `kubernetes.io.node`: the node the pod runs on (Kubernetes 1.30 and later). */
  node?: { name: string; uid: string };
  /** All verified claims of the token. */
  claims: JWTPayload;
}

/**
 * Options of {@link kubernetesServiceAccounts}. Unknown keys are refused (`ERR_UNKNOWN_OPTION`).
 */
export interface KubernetesServiceAccountOptions {
  /**
   * The cluster's service-account issuer (the API server's `--service-account-issuer`): the tokens'
   * `iss` must equal it. Required. Without `jwks` and `jwksUri` its keys are discovered through
   * `<issuer>/.well-known/openid-configuration` and its `jwks_uri` (then it must be an `https` URL,
   * `http` only on loopback).
   */
  issuer: string;
  /**
   * Accepted `aud` values: the audience the pods request in their projected token volume
   * (`serviceAccountToken.audience`), e.g. this issuer's URL. Never the API server's own audience.
   * Required.
   */
  audience: string | string[];
  /** The cluster's public keys (`kubectl get --raw /openid/v1/jwks`). At most one of `jwks` and `jwksUri`. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the cluster's keys: `https` (`http` only on loopback). */
  jwksUri?: string;
  /**
   * The trust domain of the default identifier and of the `{trustDomain}` placeholder: a lower-case
   * DNS name. Required unless `subject` is given.
   */
  trustDomain?: string;
  /**
   * How the authenticated subject (the ICT and WIT `sub`) is made from the token:
   * - a template with placeholders `{trustDomain}`, `{namespace}`, `{serviceAccount}`,
   *   `{serviceAccountUid}`, `{pod}`, `{podUid}`, `{node}` and `{nodeUid}`; a placeholder whose value
   *   the token lacks refuses the caller (403 `access_denied`);
   * - a function of the {@link KubernetesServiceAccount}; `undefined` refuses the caller.
   *
   * Default `spiffe://{trustDomain}/ns/{namespace}/sa/{serviceAccount}`, the identifier SPIRE and
   * Istio give a Kubernetes workload.
   */
  subject?: string | ((serviceAccount: KubernetesServiceAccount) => string | undefined | Promise<string | undefined>);
  /** Namespaces whose service accounts are accepted; others get 403 `access_denied`. Default: all. */
  namespaces?: string[];
  /**
   * Accept only tokens bound to a pod (`kubernetes.io.pod`), as the kubelet projects them; a token
   * made with `kubectl create token` without `--bound-object-kind Pod` is then refused. Default `true`.
   */
  requirePod?: boolean;
  /** Contexts the workloads' ICTs carry. Default none. */
  contexts?: string[];
  /** Accepted JWS algorithms. Default: every asymmetric JWA algorithm (Kubernetes signs with RS256 or ES256). */
  algorithms?: string[];
  /**
   * Largest accepted token lifetime (`exp - iat`), seconds. Projected tokens live
   * `expirationSeconds` (default 3600); the year-long tokens of `--service-account-extend-token-expiration`
   * exceed this bound and are refused. Default 86400.
   */
  maxLifetime?: number;
  /** `fetch` for discovery and `jwksUri`. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch` in @oidc2/core). */
  fetch?: typeof fetch;
  /** Caching and bounds of fetched keys; see {@link RemoteKeyOptions} for the defaults. */
  remoteKeys?: RemoteKeyOptions;
}

const OPTIONS: readonly (keyof KubernetesServiceAccountOptions)[] = [
  'issuer',
  'audience',
  'jwks',
  'jwksUri',
  'trustDomain',
  'subject',
  'namespaces',
  'requirePod',
  'contexts',
  'algorithms',
  'maxLifetime',
  'fetch',
  'remoteKeys',
];
const PLACEHOLDERS = ['trustDomain', 'namespace', 'serviceAccount', 'serviceAccountUid', 'pod', 'podUid', 'node', 'nodeUid'];

// Kubernetes object names: a namespace is a DNS label, service accounts, pods and nodes DNS
// subdomains; uids are UUIDs. Anything else did not come from an API server.
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;
const UID = /^[A-Za-z0-9-]{1,64}$/;

function named(value: unknown): { name: string; uid: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { name, uid } = value as Record<string, unknown>;
  return typeof name === 'string' && DNS_SUBDOMAIN.test(name) && typeof uid === 'string' && UID.test(uid) ? { name, uid } : undefined;
}

/**
 * Workloads presenting a Kubernetes projected service-account token, as an RFC 7523 client
 * assertion (`client_assertion` at the ICT and WIT endpoints, `subject_token` of type
 * `urn:ietf:params:oauth:token-type:jwt` at the token endpoint). A token whose `iss` is not this
 * cluster is left to the next authenticator, so one authenticator per cluster can be chained.
 *
 * Checks: signature by the cluster's keys (OIDC discovery, `jwks_uri`, through the same hardened
 * key resolver as the other authenticators), `iss`, `aud`, `exp` (required), `nbf`, `iat`
 * (required), lifetime, the `kubernetes.io` claim (namespace, service account, pod) and that `sub`
 * is `system:serviceaccount:<namespace>:<name>` of it. The token is a bearer token the pod presents
 * again until the kubelet rotates it, so its `jti` is not spent; the issuer's PoP token or DPoP
 * proof is the one-time part of the request.
 *
 * @example
 * ```ts
 * const pods = kubernetesServiceAccounts({
 *   issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE',
 *   audience: 'https://wit.example.org',
 *   trustDomain: 'example.org', // spiffe://example.org/ns/<namespace>/sa/<service account>
 * });
 * ```
 */
export function kubernetesServiceAccounts(options: KubernetesServiceAccountOptions): ClientAuthenticator {
  assertOptions(options, OPTIONS, WHERE);
  const issuer = requireString(options.issuer, `${WHERE}.issuer`);
  const audience = typeof options.audience === 'string' ? [options.audience] : stringArray(options.audience, `${WHERE}.audience`);
  if (!audience || audience.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.audience is required`);
  const algorithms = stringArray(options.algorithms, `${WHERE}.algorithms`) ?? [...ASYMMETRIC];
  if (algorithms.some((a) => !ASYMMETRIC.includes(a))) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.algorithms may hold asymmetric algorithms only`);
  const maxLifetime = options.maxLifetime ?? 86400;
  if (typeof maxLifetime !== 'number' || !Number.isFinite(maxLifetime) || maxLifetime <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.maxLifetime must be a positive number`);
  const namespaces = stringArray(options.namespaces, `${WHERE}.namespaces`);
  const contexts = stringArray(options.contexts, `${WHERE}.contexts`) ?? [];
  const requirePod = options.requirePod ?? true;
  if (typeof requirePod !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE}.requirePod must be a boolean`);
  const trustDomain = options.trustDomain;
  if (trustDomain !== undefined && !isTrustDomain(trustDomain)) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.trustDomain must be a lower-case DNS name without port, such as example.org`);

  let rule: (sa: KubernetesServiceAccount) => string | undefined | Promise<string | undefined>;
  if (typeof options.subject === 'function') {
    rule = options.subject;
  } else {
    if (options.subject !== undefined && typeof options.subject !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE}.subject must be a template string or a function`);
    if (options.subject === undefined && trustDomain === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE} needs trustDomain (for the default subject) or subject`);
    const source = options.subject ?? 'spiffe://{trustDomain}/ns/{namespace}/sa/{serviceAccount}';
    const template = compileTemplate(source, (n) => PLACEHOLDERS.includes(n), `${WHERE}.subject`);
    if (template.names.includes('trustDomain') && trustDomain === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.subject uses {trustDomain}: set trustDomain`);
    if (source.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.subject must not be empty`);
    rule = (sa) =>
      template.render((name) => {
        switch (name) {
          case 'trustDomain':
            return trustDomain;
          case 'namespace':
            return sa.namespace;
          case 'serviceAccount':
            return sa.serviceAccount.name;
          case 'serviceAccountUid':
            return sa.serviceAccount.uid;
          case 'pod':
            return sa.pod?.name;
          case 'podUid':
            return sa.pod?.uid;
          case 'node':
            return sa.node?.name;
          case 'nodeUid':
            return sa.node?.uid;
          default:
            return undefined;
        }
      });
  }
  const keyOptions = remoteKeyOptions(options.remoteKeys, fetchOption(options.fetch, `${WHERE}.fetch`), `${WHERE}.remoteKeys`);
  const keys = keyResolver({ issuer, ...(options.jwks !== undefined ? { jwks: options.jwks } : {}), ...(options.jwksUri !== undefined ? { jwksUri: options.jwksUri } : {}) }, keyOptions, WHERE);
  const invalid = (message: string) => new Oidc2Error('client_invalid', message);

  return async (_request, context) => {
    const token = context.clientAssertion;
    if (token === undefined) return undefined;
    let claimedIssuer: unknown;
    try {
      claimedIssuer = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    // Another cluster's (or another kind of) assertion: the next authenticator may know it.
    if (claimedIssuer !== issuer) return undefined;
    let payload: JWTPayload;
    let header: { typ?: unknown };
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(token, keys, {
        issuer,
        audience,
        algorithms,
        currentDate: new Date(context.now * 1000),
        clockTolerance: context.clockTolerance,
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalid('the service-account token has expired');
      if (isKeySourceFailure(err)) throw new Oidc2Error('issuer_unavailable', 'the cluster keys are unavailable', { cause: err });
      throw invalid('the service-account token is not valid');
    }
    if (typeof header.typ === 'string' && NOT_ACCESS_TOKENS.includes(header.typ.toLowerCase())) throw invalid('the token is not a service-account token');
    const { exp, iat } = payload as { exp: number; iat: number };
    if (exp - iat > maxLifetime) throw invalid('the service-account token lifetime is too long');

    const k8s = (payload as Record<string, unknown>)['kubernetes.io'];
    if (typeof k8s !== 'object' || k8s === null) throw invalid('the token has no kubernetes.io claim');
    const { namespace, serviceaccount, pod, node } = k8s as Record<string, unknown>;
    const account = named(serviceaccount);
    if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace) || account === undefined) throw invalid('the token names no service account');
    if (payload.sub !== `system:serviceaccount:${namespace}:${account.name}`) throw invalid('the token sub is not its service account');
    const sa: KubernetesServiceAccount = { namespace, serviceAccount: account, claims: payload };
    if (pod !== undefined) {
      const p = named(pod);
      if (p === undefined) throw invalid('the token kubernetes.io.pod is malformed');
      sa.pod = p;
    }
    if (node !== undefined) {
      const n = named(node);
      if (n === undefined) throw invalid('the token kubernetes.io.node is malformed');
      sa.node = n;
    }
    if (requirePod && sa.pod === undefined) throw invalid('the token is not bound to a pod');
    if (namespaces !== undefined && !namespaces.includes(namespace)) throw new Oidc2Error('access_denied', 'service accounts of this namespace are not accepted');

    const subject = await rule(sa);
    if (subject !== undefined && typeof subject !== 'string') throw argumentError('ERR_INVALID_RETURN_VALUE', `${WHERE}.subject returned neither a string nor undefined`);
    if (subject === undefined || subject.length === 0 || subject.length > MAX_IDENTIFIER_LENGTH) throw new Oidc2Error('access_denied', 'no identity is configured for this service account');
    return { subject, kind: 'workload', contexts: [...contexts], expiresAt: exp, claims: {} };
  };
}
