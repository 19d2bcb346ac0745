// Properties of a whole signed request as the authenticator sees it, and of the audience match:
// no change to what a request means (a covered field's value, the method, path or query, a field
// dropped or repeated) is ever accepted, and every refusal is a coded 4xx; the audience match agrees
// with the WHATWG URL parser.
import fc from 'fast-check';
import { createAuthenticator, signRequest, type HttpRequest } from '../../packages/core/src/index';
import { parseSignature, parseSignatureInput } from '../../packages/core/src/rfc9421/index';
import { audienceMatcher } from '../../packages/core/src/lib/audience';
import { isOidc2Error } from '../../packages/core/src/errors';
import { parseDictionary, serializeDictionary } from 'structured-headers';
import { utf8 } from '../../packages/core/src/lib/base64';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { MUTATIONS, mutate, runs, type Mutation } from './support';

const T = 1_790_000_000;
const BASE = 'https://api.example.com';

let op: TestIssuer;
let alice: TestKey;
let request: HttpRequest;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  const ict = await op.mint(alice, { now: T - 10 });
  const signed = await signRequest(
    { method: 'POST', url: `${BASE}/orders?id=7&x=a+b`, headers: { 'content-type': 'application/json' }, body: utf8('{"order":42}') },
    { ict, key: alice.signer, now: () => T },
  );
  request = { method: signed.method, url: '/orders?id=7&x=a+b', headers: signed.headers, body: signed.body };
});

// Every changed request reuses the original's nonce, so a replay store would refuse the second
// one of them that got through and hide it. This one records nothing: each changed request is
// judged by its proof alone, which is the subject here (replay has its own tests).
const forgetful = { checkAndRecord: () => true };
let authenticator: ReturnType<typeof createAuthenticator>;
beforeAll(() => {
  authenticator = createAuthenticator({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE], now: () => T, replayStore: forgetful });
});

/** The outcome of authenticating `r`: 'accepted' or the coded refusal. */
async function verdict(r: HttpRequest): Promise<string> {
  try {
    await authenticator.authenticate(r);
    return 'accepted';
  } catch (error) {
    if (!isOidc2Error(error)) throw error;
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(500);
    return error.code;
  }
}

const SIGNATURE_FIELDS = ['signature', 'signature-input'];

/** True when a changed Signature or Signature-Input still parses to the very same signature: the RFC 9651 grammar ignores some whitespace, repeated keys and base64 pad bits. */
function sameSignature(a: HttpRequest, b: HttpRequest): boolean {
  try {
    const [ia, ib] = [parseSignatureInput(a.headers['signature-input']), parseSignatureInput(b.headers['signature-input'])];
    const [sa, sb] = [parseSignature(a.headers['signature']), parseSignature(b.headers['signature'])];
    return JSON.stringify([...ia].map(([l, e]) => [l, e.signatureParams])) === JSON.stringify([...ib].map(([l, e]) => [l, e.signatureParams])) &&
      JSON.stringify([...sa].map(([l, s]) => [l, Buffer.from(s).toString('hex')])) === JSON.stringify([...sb].map(([l, s]) => [l, Buffer.from(s).toString('hex')]));
  } catch {
    return false;
  }
}

describe('a signed request', () => {
  it('is accepted as signed', async () => {
    expect(await verdict(request)).toBe('accepted');
  });

  it('is never accepted after any change to a field value, the method or the target', async () => {
    const fields = ['identity-certification-token', 'signature', 'signature-input', 'content-digest', 'content-type'];
    const part = fc.constantFrom(...fields, '@method', '@url');
    await fc.assert(
      fc.asyncProperty(part, fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7), async (where, m: Mutation, at, bit) => {
        const changed: HttpRequest = { ...request, headers: { ...request.headers } };
        if (where === '@method') changed.method = mutate(request.method, m, at, bit);
        else if (where === '@url') changed.url = mutate(request.url, m, at, bit);
        else {
          const value = request.headers[where]![0]!;
          const next = mutate(value, m, at, bit);
          // Leading and trailing whitespace is not part of a field value (RFC 9110 section 5.5).
          if (next.trim() === value) return;
          changed.headers[where] = [next];
        }
        if (changed.method === request.method && changed.url === request.url && JSON.stringify(changed.headers) === JSON.stringify(request.headers)) return;
        const result = await verdict(changed);
        if (result === 'accepted') {
          // Only a spelling of the same signature fields may pass; anything else is a bug.
          expect(SIGNATURE_FIELDS.some((f) => changed.headers[f]![0] !== request.headers[f]![0]) && sameSignature(changed, request)).toBe(true);
        }
      }),
      runs(500),
    );
  });

  it('is never accepted with a covered field dropped or sent twice, or with the body changed', async () => {
    const names = Object.keys(request.headers);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), fc.constantFrom('drop', 'twice', 'body'), fc.nat(), async (name, how, at) => {
        const changed: HttpRequest = { ...request, headers: { ...request.headers } };
        if (how === 'drop') delete changed.headers[name];
        else if (how === 'twice') changed.headers[name] = [...request.headers[name]!, ...request.headers[name]!];
        else changed.body = request.body!.map((b, i) => (i === at % request.body!.length ? b ^ 1 : b));
        const result = await verdict(changed);
        // The same Signature or Signature-Input line twice is the same Dictionary (RFC 9651 section 4.2.2).
        if (result === 'accepted') expect(how === 'twice' && SIGNATURE_FIELDS.includes(name)).toBe(true);
      }),
      runs(150),
    );
  });
});

describe('Accept-Signature (RFC 9421 section 5), the field the service writes', () => {
  it('on every 401 is a Dictionary the reference parser reads back to the same text, asking for the profile tag and components', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(request.headers)), fc.constantFrom(...MUTATIONS), fc.nat(), async (name, m, at) => {
        const changed: HttpRequest = { ...request, headers: { ...request.headers, [name]: [mutate(request.headers[name]![0]!, m, at)] } };
        try {
          await authenticator.authenticate(changed);
        } catch (error) {
          if (!isOidc2Error(error) || error.status !== 401) return;
          const field = error.headers['accept-signature'];
          expect(field).toBeDefined();
          expect(serializeDictionary(parseDictionary(field!))).toBe(field);
          const [, member] = [...parseDictionary(field!)][0]!;
          expect((member[0] as unknown[]).map((item) => (item as [string])[0])).toEqual(expect.arrayContaining(['@method', '@path', '@query', 'identity-certification-token']));
          expect(member[1].get('tag')).toBe('oidc2-ict');
          seen.add(error.code);
        }
      }),
      runs(200),
    );
    expect(seen.size).toBeGreaterThan(1);
  });
});

describe('audience match', () => {
  const host = fc.constantFrom('api.example.com', 'API.Example.com', 'api.example.com:443', 'api.example.com:8443', 'other.example', 'xn--bcher-kva.example');
  const path = fc.array(fc.constantFrom('a', 'B', 'orders', '..', '.', '%41', 'é', '%2F', '', ' ', '~'), { maxLength: 4 }).map((p) => `/${p.join('/')}`);
  const scheme = fc.constantFrom('https', 'HTTPS', 'http');

  it('agrees with the WHATWG URL parser on scheme, host, port and path, and never throws', () => {
    const matcher = audienceMatcher([BASE, 'https://example.com/api/'], 'audiences');
    fc.assert(
      fc.property(scheme, host, path, path, fc.constantFrom('', '?q=1', '#f'), (s, h, requestPath, targetPath, tail) => {
        const target = `${s}://${h}${targetPath}${tail}`;
        const requestUrl = requestPath;
        const got = matcher.matches(target, requestUrl);
        let expected = false;
        if (tail === '') {
          const t = new URL(target);
          for (const base of [BASE, 'https://example.com/api']) {
            const want = new URL(base + requestUrl);
            if (t.origin === want.origin && t.pathname === want.pathname) expected = true;
          }
        }
        expect(got).toBe(expected);
      }),
      runs(3000),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 30 }), (target, requestUrl) => {
        expect(typeof matcher.matches(target, requestUrl)).toBe('boolean');
        matcher.baseOf(target, requestUrl);
        matcher.candidates(requestUrl);
      }),
      runs(2000),
    );
  });
});
