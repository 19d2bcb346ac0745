// oidc2 fetch: one request through @oidc2/client, curl-style: signed with the caller's key and ICT,
// answered only by a verified response, with a report of what was verified.
import { createClient, type ClientAlgorithm, type VerifiedResponse } from '@oidc2/client';
import { publicJwk, type TrustedIssuer } from '@oidc2/core';
import { EXIT, UsageError, integerOption, note, printJson, requiredOption, stringOption, table, type Command, type OptionValues } from '../lib/command.js';
import { inlineOrFile } from '../lib/files.js';
import { readKeySet, readPrivateKey } from '../lib/keys.js';

/** Response fields that carry a credential or a session token: shown as redacted. */
const REDACTED_FIELDS = new Set(['identity-certification-token', 'workload-identity-token', 'txn-token', 'authorization', 'dpop', 'oidc2-session', 'set-cookie']);
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const fetchCommand: Command = {
  path: ['fetch'],
  summary: 'make a signed request and verify who answered (like curl)',
  help: `Usage: oidc2 fetch <url> --key <file> --ict <token|@file> --service-issuer <issuer>
                  [--service-jwks <file>] [--expect-service <sub>]... [-X <method>]
                  [-H 'name: value']... [-d <body>|@file|@-] [--dpop] [--encrypt]
                  [--insecure-http] [--timeout 30] [--fail] [--json]

Sends one request with @oidc2/client: signed with --key and carrying --ict (an RFC 9421 signature,
or DPoP with --dpop), optionally with end-to-end encrypted bodies (--encrypt). The response counts
only when it is signed by a service whose ICT comes from --service-issuer (and, with
--expect-service, names that subject) and is bound to this request; anything else is exit 1 with
the reason's code.

The report (service identity, the checks that passed, encryption, status) goes to stderr and the
response body to stdout; with --json, both go to stdout as one object. Tokens are never printed:
token fields of the response are shown as [redacted].

Options:
  --key <file>             the caller's private key (JWK or PKCS#8 PEM, ES256 or Ed25519)
  --ict <token|@file|@->   the caller's ICT, certifying --key
  --service-issuer <iss>   the issuer trusted to certify services (its ICT's iss)
  --service-jwks <file>    that issuer's public keys (JWK Set or one JWK); default OIDC discovery
                           at <iss>/.well-known/openid-configuration
  --expect-service <sub>   the service subject that must answer; repeat to allow several.
                           Default: any subject the issuer certified
  -X, --request <method>   the method; default GET, or POST with --data
  -H, --header <field>     a request field 'name: value'; repeatable
  -d, --data <body>        the request body: text, @file or @- (stdin), sent as given
  --dpop                   prove the key with DPoP (RFC 9449) instead of an HTTP Message
                           Signature; DPoP covers neither the body nor the query
  --encrypt                end-to-end encrypt the request and response bodies; a service that
                           cannot is an error, never a request in clear
  --insecure-http          allow http:// to hosts other than loopback (the default allows https
                           anywhere and http only to localhost, 127.0.0.0/8 and [::1])
  --timeout <s>            give up after this many seconds, 1 to 600 (default 30)
  --fail                   exit 1 when the verified status is 400 or more
  --json                   one JSON object on stdout: status, headers, service, verified,
                           encryption, body (or bodyBase64)
  -h, --help               this help

Exit codes: 0 a verified response (whatever its status, unless --fail), 1 the request failed or
the response did not verify, 2 usage.

Example:
  oidc2 fetch https://api.example.com/orders --key caller.jwk --ict @caller.ict \\
    --service-issuer https://attest.example.com --expect-service spiffe://example.com/orders`,
  options: {
    key: { type: 'string' },
    ict: { type: 'string' },
    'service-issuer': { type: 'string' },
    'service-jwks': { type: 'string' },
    'expect-service': { type: 'string', multiple: true },
    request: { type: 'string', short: 'X' },
    header: { type: 'string', short: 'H', multiple: true },
    data: { type: 'string', short: 'd' },
    dpop: { type: 'boolean' },
    encrypt: { type: 'boolean' },
    'insecure-http': { type: 'boolean' },
    timeout: { type: 'string' },
    fail: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run(values, [target]) {
    const url = targetUrl(target!, values['insecure-http'] === true);
    const dpop = values.dpop === true;
    const encrypt = values.encrypt === true;
    if (dpop && encrypt) throw new UsageError('--encrypt needs an HTTP Message Signature: it cannot be combined with --dpop');
    const timeout = integerOption(values, 'timeout', 30, 1, 600);
    const keyFile = requiredOption(values, 'key');
    const ictArgument = requiredOption(values, 'ict');
    const issuer = requiredOption(values, 'service-issuer');
    const jwksFile = stringOption(values, 'service-jwks');
    const expected = (values['expect-service'] as string[] | undefined) ?? [];
    const headers = requestHeaders(values);
    const data = stringOption(values, 'data');
    const body = data === undefined ? undefined : await inlineOrFile(data, '--data file');
    const method = (stringOption(values, 'request') ?? (body ? 'POST' : 'GET')).toUpperCase();
    if (!HEADER_NAME.test(method)) throw new UsageError('--request must be an HTTP method');

    const { keyPair, algorithm } = await clientKeyPair(keyFile);
    const ict = (await inlineOrFile(ictArgument, '--ict file')).toString('utf8').trim();
    if (ict.length === 0) throw new UsageError('--ict is empty');
    const serviceIssuer: TrustedIssuer = { issuer, ...(jwksFile !== undefined ? { jwks: readKeySet(jwksFile, '--service-jwks file') } : {}) };

    const client = createClient({
      serviceIssuers: [serviceIssuer],
      ...(expected.length > 0 ? { expectedService: expected } : {}),
      proof: dpop ? 'dpop' : 'http-signature',
      algorithm,
      keyPair,
      getIct: async () => ict,
      encryption: encrypt ? 'required' : 'off',
    });
    const response = await client(url, {
      method,
      headers,
      ...(body ? { body: new Uint8Array(body) } : {}),
      signal: AbortSignal.timeout(timeout * 1000),
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const verified = verificationSteps(response, dpop, expected);
    const code = values.fail === true && response.status >= 400 ? EXIT.failure : EXIT.ok;

    if (values.json === true) {
      const text = utf8(bytes);
      printJson({
        url: url.href,
        method,
        proof: dpop ? 'dpop' : 'http-signature',
        status: response.status,
        statusText: response.statusText,
        headers: shownHeaders(response.headers),
        service: serviceOf(response),
        verified,
        encryption: response.encryption,
        ...(text === undefined ? { bodyBase64: Buffer.from(bytes).toString('base64') } : { body: text }),
      });
      return code;
    }
    const { service, encryption } = response;
    note(
      table([
        ['service', `${service.subject} (issuer ${service.issuer})`],
        ['proof', dpop ? 'DPoP (RFC 9449)' : 'HTTP Message Signature (RFC 9421)'],
        ['verified', verified.map((step) => `- ${step}`).join('\n')],
        ['encryption', encryption ? `${encryption.suite}, ${encryption.mode}, epoch ${encryption.epoch}, ${encryption.bodyEncrypted ? 'body encrypted' : 'no body'}` : 'none (in clear)'],
        ['status', `${response.status} ${response.statusText}`.trimEnd()],
      ]),
    );
    process.stdout.write(bytes);
    if (process.stdout.isTTY && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) process.stdout.write('\n');
    return code;
  },
};

/** The target, refused when it is plain http to anything but loopback (unless allowed). */
function targetUrl(target: string, insecureHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new UsageError('<url> is not an absolute URL');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') throw new UsageError('<url> must be https: or http:');
  if (!LOOPBACK_HOST.test(url.hostname) && !insecureHttp) throw new UsageError('<url> is plain http to a host that is not loopback: use https, or pass --insecure-http');
  return url;
}

function requestHeaders(values: OptionValues): Headers {
  const headers = new Headers();
  for (const line of (values.header as string[] | undefined) ?? []) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (!HEADER_NAME.test(name)) throw new UsageError("--header must be 'name: value'");
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`--header ${name} has a value that is not allowed in a field`);
    }
  }
  return headers;
}

/** The caller's key pair as WebCrypto keys, the private one not extractable. */
async function clientKeyPair(path: string): Promise<{ keyPair: CryptoKeyPair; algorithm: ClientAlgorithm }> {
  const { jwk } = readPrivateKey(path, '--key file');
  const algorithm: ClientAlgorithm | undefined = jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : jwk.kty === 'OKP' && jwk.crv === 'Ed25519' ? 'Ed25519' : undefined;
  if (!algorithm) throw new UsageError(`--key file ${path} must hold an ES256 (P-256) or Ed25519 key`);
  const params = algorithm === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' };
  const { kty, crv, x, y, d } = jwk;
  try {
    const privateKey = await crypto.subtle.importKey('jwk', { kty, crv, x, y, d }, params, false, ['sign']);
    const publicKey = await crypto.subtle.importKey('jwk', publicJwk(jwk), params, true, ['verify']);
    return { keyPair: { privateKey, publicKey }, algorithm };
  } catch {
    throw new UsageError(`--key file ${path} holds a key that cannot be imported`);
  }
}

/** What the client checked before it handed over this response, in its order. */
function verificationSteps(response: VerifiedResponse, dpop: boolean, expected: string[]): string[] {
  const { service, encryption } = response;
  return [
    `service ICT signed by the trusted issuer ${service.issuer}, within its validity`,
    expected.length > 0 ? `service subject ${service.subject} is ${expected.length === 1 ? 'the expected one' : 'one of the expected'}` : `service subject ${service.subject} accepted (no --expect-service)`,
    `response signature verified with the key the service ICT certifies (thumbprint ${service.thumbprint})`,
    "signature covers @status, the service ICT, Content-Digest and this request's @method, @path and @query",
    dpop ? 'bound to this request: covers its DPoP proof and Authorization field' : "bound to this request: repeats its signature's nonce",
    'Content-Digest matches the body as received',
    ...(encryption?.bodyEncrypted ? [`body decrypted (aes128gcm) with keys of the ${encryption.suite} session, after its signed key exchange`] : []),
  ];
}

function serviceOf(response: VerifiedResponse): Record<string, unknown> {
  const { issuer, subject, thumbprint, contexts } = response.service;
  return { issuer, subject, thumbprint, contexts };
}

function shownHeaders(headers: Headers): Record<string, string> {
  const shown: Record<string, string> = {};
  headers.forEach((value, name) => {
    shown[name] = REDACTED_FIELDS.has(name) ? '[redacted]' : value;
  });
  return shown;
}

/** `bytes` as text when they are UTF-8, else undefined. */
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
