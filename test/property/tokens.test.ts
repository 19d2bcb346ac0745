// Properties of every token a caller can send: ICTs, DPoP proofs, WITs, WPTs, Txn-Tokens and
// session tokens, and the JWKs inside them. Each verifier fails only with its coded errors, never
// accepts a valid token changed in any byte (flip, drop, duplicate, swap, re-case, re-space), and
// agrees with jose on what a JWK is.
import fc from 'fast-check';
import { SignJWT, calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { createIctVerifier } from '../../packages/core/src/ict';
import { createDpopProof, verifyDpopProof } from '../../packages/core/src/dpop';
import { createWitVerifier, createWpt, verifyWpt } from '../../packages/core/src/wimse';
import { createTxnTokenVerifier } from '../../packages/core/src/txn-token';
import { createSessionTokens } from '../../packages/core/src/e2ee/session-token';
import { MemorySessionKeyStore } from '../../packages/core/src/e2ee/session-keys';
import { MemoryReplayStore } from '../../packages/core/src/replay-store';
import { jwkThumbprint, parsePublicJwk } from '../../packages/core/src/lib/jwk';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { newTrustDomain } from '../../packages/core/test/support/wit';
import { MUTATIONS, mutate, outcomeAsync, runs, type Mutation } from './support';

const T = 1_790_000_000;
const now = () => T;
const b64u = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

const mutation = fc.tuple(fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7));
type MutationArgs = [Mutation, number, number];

/** JWS-shaped strings with arbitrary JSON in the header and payload, and garbage. */
const json = fc.jsonValue({ maxDepth: 3 });
const header = fc.oneof(
  json,
  fc.record({ alg: fc.constantFrom('none', 'HS256', 'ES256', 'EdDSA', 'RS256', 'ES256K', ''), typ: fc.constantFrom('ict+jwt', 'dpop+jwt', 'wit+jwt', 'wpt+jwt', 'txntoken+jwt', 'JWT'), kid: fc.string({ maxLength: 8 }), jwk: json, crit: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }) }, { requiredKeys: [] }),
);
const jwsLike = fc.oneof(
  fc.tuple(header, json, fc.uint8Array({ maxLength: 70 })).map(([h, p, s]) => `${b64u(h)}.${b64u(p)}.${Buffer.from(s).toString('base64url')}`),
  fc.string({ maxLength: 120 }),
  fc.array(fc.stringMatching(/^[A-Za-z0-9_=+/-]{0,30}$/), { maxLength: 6 }).map((p) => p.join('.')),
);

let op: TestIssuer;
let alice: TestKey;
let ict: string;
beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  ict = await op.mint(alice, { now: T - 10 });
});

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Every other spelling of `token` whose segments decode to the same bytes: the last character of a
 * segment carries spare bits (RFC 4648 section 3.5), and a lenient decoder ignores them.
 */
function padBitVariants(token: string): string[] {
  const out: string[] = [];
  const parts = token.split('.');
  parts.forEach((part, i) => {
    const spare = [0, 0, 4, 2][part.length % 4]!; // 6 * (len % 4) bits carry 8 * floor(...) bits
    if (spare === 0) return;
    const v = B64U.indexOf(part[part.length - 1]!);
    for (let low = 1; low < 1 << spare; low++) {
      const changed = [...parts];
      changed[i] = part.slice(0, -1) + B64U[(v & ~((1 << spare) - 1)) | low];
      out.push(changed.join('.'));
    }
  });
  return out;
}

async function neverAccepted(valid: string, verify: (token: string) => Promise<unknown>, codes: readonly string[], numRuns = 200): Promise<void> {
  await expect(verify(valid)).resolves.toBeDefined();
  for (const token of padBitVariants(valid)) {
    const result = await outcomeAsync(() => verify(token));
    expect(result).toHaveProperty('code');
    expect(codes).toContain((result as { code: string }).code);
  }
  await fc.assert(
    fc.asyncProperty(mutation, async ([m, at, bit]: MutationArgs) => {
      const token = mutate(valid, m, at, bit);
      if (token === valid) return;
      const result = await outcomeAsync(() => verify(token));
      expect(result).toHaveProperty('code');
      expect(codes).toContain((result as { code: string }).code);
    }),
    runs(numRuns),
  );
  await fc.assert(
    fc.asyncProperty(jwsLike, async (token) => {
      const result = await outcomeAsync(() => verify(token));
      expect(result).toHaveProperty('code');
      expect(codes).toContain((result as { code: string }).code);
    }),
    runs(numRuns),
  );
}

describe('ICT', () => {
  it('a changed ICT is never accepted, and anything JWS-like fails with an ict_* code', async () => {
    const verifier = createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });
    const codes = ['ict_malformed', 'ict_invalid', 'ict_expired', 'ict_not_yet_valid', 'ict_lifetime_exceeded', 'ict_untrusted_issuer', 'ict_unknown_key', 'ict_alg_not_allowed', 'ict_typ_invalid', 'ict_cnf_invalid', 'ict_claim_missing', 'ict_audience_mismatch', 'header_too_large'];
    await neverAccepted(ict, (t) => verifier.verify(t), codes, 300);
  });
});

describe('DPoP proof', () => {
  it('a changed proof is never accepted, and anything JWS-like fails with dpop_invalid', async () => {
    const proof = await createDpopProof({ method: 'POST', url: 'https://api.example.com/orders', key: alice.signer, jwk: alice.publicJwk, accessToken: ict, now });
    const verify = (p: string) =>
      verifyDpopProof(p, { method: 'POST', htu: 'https://api.example.com/orders', accessToken: ict, expectedThumbprint: alice.thumbprint, now: T, replayStore: new MemoryReplayStore() });
    await neverAccepted(proof, verify, ['dpop_invalid', 'header_too_large'], 60);
  });
});

describe('WIT and WPT', () => {
  it('a changed WIT or WPT is never accepted, and anything JWS-like fails with wit_*/wpt_invalid', async () => {
    const domain = await newTrustDomain('workloads.example');
    const workload = await newKey('ES256');
    const wit = await domain.mint(workload, { now: T - 10 });
    const verifier = createWitVerifier({ trustDomains: [{ trustDomain: domain.trustDomain, jwks: domain.jwks }], now });
    await neverAccepted(wit, (t) => verifier.verify(t), ['wit_missing', 'wit_invalid', 'wit_expired', 'wit_untrusted', 'header_too_large'], 50);

    const verified = await verifier.verify(wit);
    const wpt = await createWpt({ wit, key: workload.signer, audience: 'https://api.example.com/orders', now });
    const verify = (p: string) => verifyWpt(p, { wit: verified, witToken: wit, audience: ['https://api.example.com/orders'], now: T, replayStore: new MemoryReplayStore() });
    await neverAccepted(wpt, verify, ['wpt_invalid', 'header_too_large'], 50);
  });
});

describe('Txn-Token', () => {
  it('a changed Txn-Token is never accepted, and anything JWS-like fails with txn_token_invalid', async () => {
    const tts = await newKey('ES256');
    const signing = await importJWK(tts.privateJwk, 'ES256');
    const token = await new SignJWT({ txn: 't-1', scope: 'orders' })
      .setProtectedHeader({ alg: 'ES256', typ: 'txntoken+jwt', kid: 'tts' })
      .setAudience('example.com')
      .setSubject('alice')
      .setIssuedAt(T - 5)
      .setExpirationTime(T + 60)
      .sign(signing);
    const verifier = createTxnTokenVerifier({ trustDomain: 'example.com', jwks: { keys: [{ ...tts.publicJwk, kid: 'tts', alg: 'ES256' }] } }, { now, clockTolerance: 60 });
    await neverAccepted(token, (t) => verifier.verify(t), ['txn_token_invalid', 'header_too_large'], 200);
  });
});

describe('session token', () => {
  it('a changed session token is never accepted, and anything JWE-like fails with session_invalid', async () => {
    const keys = new MemorySessionKeyStore({ now });
    try {
      const tokens = createSessionTokens({ keys, now });
      const caller = { iss: op.issuer, sub: 'alice', jkt: new Uint8Array(32).fill(7) };
      const { token } = await tokens.issue({ sid: new Uint8Array(16).fill(1), rk: new Uint8Array(32).fill(2), suite: 'x25519', epoch: 0, audience: 'https://api.example.com', caller });
      const verify = (t: string) => tokens.verify(t, 'https://api.example.com');
      await neverAccepted(token, verify, ['session_invalid', 'session_expired'], 200);
      // JWE-shaped: five segments with arbitrary JSON headers.
      await fc.assert(
        fc.asyncProperty(header, fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 4, maxLength: 4 }), async (h, parts) => {
          const jwe = [b64u(h), ...parts.map((p) => Buffer.from(p).toString('base64url'))].join('.');
          expect(await outcomeAsync(() => verify(jwe))).toEqual({ code: 'session_invalid' });
        }),
        runs(150),
      );
    } finally {
      keys.close();
    }
  });
});

describe('JWK', () => {
  const b64 = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64url'));
  const jwkLike = fc.oneof(
    json,
    fc.record(
      {
        kty: fc.constantFrom('EC', 'OKP', 'RSA', 'oct', 'ec', ''),
        crv: fc.constantFrom('P-256', 'P-384', 'P-521', 'Ed25519', 'X25519', 'secp256k1', 'p-256'),
        x: fc.oneof(b64(31, 33), b64(47, 49), b64(65, 67), fc.string({ maxLength: 4 })),
        y: fc.oneof(b64(31, 33), b64(47, 49), fc.constant(undefined)),
        n: fc.oneof(b64(255, 257), b64(0, 8)),
        e: fc.oneof(fc.constant('AQAB'), b64(0, 10)),
        alg: fc.constantFrom('ES256', 'EdDSA', 'RS256', 'HS256', 'none'),
        d: fc.constantFrom(undefined, 'AAAA'),
        k: fc.constantFrom(undefined, 'AAAA'),
      },
      { requiredKeys: ['kty'] },
    ),
  );

  it('parsePublicJwk never throws, returns only public members, and what it returns jose imports with the same thumbprint', async () => {
    await fc.assert(
      fc.asyncProperty(jwkLike, async (value) => {
        const jwk = parsePublicJwk(value);
        if (jwk === undefined) return;
        for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) expect(jwk).not.toHaveProperty(m);
        const imported = await outcomeAsync(async () => importJWK({ ...jwk, alg: undefined, ext: true } as JWK, jwk.kty === 'OKP' ? 'EdDSA' : jwk.kty === 'RSA' ? 'RS256' : jwk.crv === 'P-256' ? 'ES256' : jwk.crv === 'P-384' ? 'ES384' : 'ES512'));
        // Random coordinates are rarely on the curve: jose (WebCrypto) may refuse them, which the
        // signature check then does too; what it accepts must have the thumbprint jose computes.
        if ('value' in imported) expect(await jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk));
      }),
      runs(600),
    );
  });

  it('real keys of every allowed type pass and keep their thumbprint', async () => {
    for (const alg of ['ES256', 'ES384', 'Ed25519', 'PS256'] as const) {
      const k = await newKey(alg);
      const jwk = parsePublicJwk({ ...k.publicJwk, alg });
      expect(jwk).toBeDefined();
      expect(await jwkThumbprint(jwk!)).toBe(k.thumbprint);
      expect(parsePublicJwk(k.privateJwk)).toBeUndefined();
    }
  });
});
