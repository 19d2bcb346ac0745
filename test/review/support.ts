// What the review's tests share: one caller and one service credential from freshly minted keys,
// the three adapters started with the same options, and a sender that puts a request on the wire
// exactly as given (request line, field lines in order and repeated, body) over a real socket.
import { request as httpRequest } from 'node:http';
import { createContentDigest, createNonce, signMessage, signRequest, type Fields, type HttpRequest, type HttpResponse, type Oidc2Options, type SignRequestOptions } from '@oidc2/core';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type Framework, type FrameworkService } from '../support/frameworks';

export { FRAMEWORKS, type Framework };

export interface Parties {
  callers: TestIssuer;
  services: TestIssuer;
  alice: TestKey;
  aliceIct: string;
  serviceKey: TestKey;
  serviceIct: string;
}

/** A trusted issuer with one caller (alice), and a service credential from another issuer. */
export async function newParties(): Promise<Parties> {
  const callers = await newIssuer('https://op.review.example');
  const services = await newIssuer('https://services.review.example');
  const alice = await newKey('ES256');
  const serviceKey = await newKey('ES256');
  return { callers, services, alice, aliceIct: await callers.mint(alice, { lifetime: 3000 }), serviceKey, serviceIct: await services.mint(serviceKey, { subject: 'service', lifetime: 3000 }) };
}

/** The options every adapter under review gets: alice's issuer trusted, the service's own URL as audience, a credential. */
export function serviceOptions(parties: Parties, extra: Partial<Oidc2Options> = {}): (url: string) => Oidc2Options {
  return (url) => ({
    issuers: [{ issuer: parties.callers.issuer, jwks: parties.callers.jwks }],
    audiences: [url],
    credential: { ict: parties.serviceIct, privateKey: parties.serviceKey.privateJwk },
    ...extra,
  });
}

/** Starts every adapter with the same options. */
export async function startAll(options: (url: string) => Oidc2Options): Promise<Record<Framework, FrameworkService>> {
  const started = await Promise.all(FRAMEWORKS.map((f) => startFramework(f, options)));
  return Object.fromEntries(started.map((s) => [s.framework, s])) as Record<Framework, FrameworkService>;
}

/** What {@link startedForFile} starts: the parties and the three adapters, set once `beforeAll` ran. */
export interface Started {
  parties: Parties;
  services: Record<Framework, FrameworkService>;
}

/** Mints the parties and starts every adapter before a file's tests (`extra` added to the options), and stops them after. */
export function startedForFile(extra: Partial<Oidc2Options> = {}): Started {
  const started = {} as Started;
  beforeAll(async () => {
    started.parties = await newParties();
    started.services = await startAll(serviceOptions(started.parties, extra));
  });
  afterAll(() => closeAll(started.services));
  return started;
}

export async function closeAll(services: Record<Framework, FrameworkService> | undefined): Promise<void> {
  if (services) await Promise.all(Object.values(services).map((s) => s.close()));
}

/** A request as it goes on the wire: `target` is the request line's target as written. */
export interface WireRequest {
  method: string;
  target: string;
  /** Field lines in order; a name given twice is sent as two lines. */
  lines: Array<[string, string]>;
  body?: Uint8Array | undefined;
}

/** An answer as received, with its problem `code` when it is one. */
export interface WireResponse extends HttpResponse {
  body: Uint8Array;
  code: string | undefined;
}

/** The field lines of a signed request (every value of a repeated field on its own line). */
export function linesOf(headers: Fields): Array<[string, string]> {
  return Object.entries(headers).flatMap(([name, values]) => values.map((v) => [name, v] as [string, string]));
}

/** Sends `request` to the service at `origin` on a new connection and reads the whole answer. */
export function send(origin: string, request: WireRequest): Promise<WireResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    // Node writes `path` into the request line as given (an absolute URL too) and each raw pair as its own line.
    const rawHeaders = request.lines.flat();
    const hasLength = request.lines.some(([n]) => n.toLowerCase() === 'content-length' || n.toLowerCase() === 'transfer-encoding');
    if (request.body && !hasLength) rawHeaders.push('content-length', String(request.body.length));
    if (!request.lines.some(([n]) => n.toLowerCase() === 'host')) rawHeaders.push('host', new URL(origin).host);
    const req = httpRequest({ hostname, port, method: request.method, path: request.target, headers: rawHeaders, agent: false, setHost: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers: Fields = {};
        for (const [name, values] of Object.entries(res.headersDistinct)) headers[name] = values ?? [];
        const type = headers['content-type']?.[0] ?? '';
        const code = type.startsWith('application/problem+json') && body.length > 0 ? (JSON.parse(body.toString('utf8')) as { code?: string }).code : undefined;
        resolve({ status: res.statusCode ?? 0, headers, body, code });
      });
    });
    req.end(request.body ? Buffer.from(request.body) : undefined);
  });
}

/** Signs `method url` for alice and returns it as a wire request to the origin-form target. */
export async function signedWire(parties: Parties, method: string, url: string, init: { headers?: Record<string, string>; body?: Uint8Array; options?: Partial<SignRequestOptions> } = {}): Promise<WireRequest> {
  const signed = await signRequest({ method, url, headers: init.headers, body: init.body }, { ict: parties.aliceIct, key: parties.alice.signer, ...init.options });
  const u = new URL(url);
  return { method, target: u.pathname + u.search, lines: linesOf(signed.headers), body: signed.body };
}

/** The JSON body of a success. */
export function json(response: WireResponse): Record<string, unknown> {
  return JSON.parse(Buffer.from(response.body).toString('utf8')) as Record<string, unknown>;
}

/** What {@link handSigned} signs: everything a test may set that {@link signRequest} decides itself. */
export interface HandSigned {
  method?: string;
  /** Path and query. Default `/echo`. */
  target?: string;
  /** A JSON body, sent with `Content-Type` and `Content-Digest` (`contentDigest`, else its sha-256). */
  body?: string;
  contentDigest?: string;
  /** Further fields, covered by the signature. */
  headers?: Fields;
  /** The covered components. Default `@method`, `@path`, `@query` and every field. */
  components?: string[];
  /** Sign `@request-target` as an absolute-form request line carries it, and send it so. Default false. */
  absoluteForm?: boolean;
  /** Rewrites the `Signature-Input` member after signing (what a proxy changes on the way). */
  rewriteInput?: (input: string, params: { created: number; nonce: string }) => string;
}

/**
 * A request alice signs under the OIDC² profile with the fields, components and digest as given
 * (so a test can sign what {@link signRequest} never would), as a wire request to `origin`.
 */
export async function handSigned(parties: Parties, origin: string, o: HandSigned = {}): Promise<WireRequest> {
  const method = o.method ?? 'POST';
  const target = o.target ?? '/echo';
  const body = o.body === undefined ? undefined : new TextEncoder().encode(o.body);
  const url = `${origin}${target}`;
  const headers: Fields = {
    'identity-certification-token': [parties.aliceIct],
    ...(body ? { 'content-type': ['application/json'], 'content-digest': [o.contentDigest ?? (await createContentDigest(body))] } : {}),
    ...o.headers,
  };
  const created = Math.floor(Date.now() / 1000);
  const params = { created, expires: created + 60, nonce: createNonce(), tag: 'oidc2-ict', 'oidc2-aud': url.split('?', 1)[0]! };
  const message: HttpRequest = { method, url, absoluteForm: o.absoluteForm === true, headers, body };
  const signed = await signMessage(message, { label: 'sig', components: o.components ?? ['@method', '@path', '@query', ...Object.keys(headers)], params, key: parties.alice.signer });
  const input = o.rewriteInput ? o.rewriteInput(signed.signatureInput, params) : signed.signatureInput;
  return { method, target: o.absoluteForm ? url : target, lines: linesOf({ ...headers, 'signature-input': [input], signature: [signed.signature] }), body };
}
