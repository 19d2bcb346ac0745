// Transaction Tokens (draft-ietf-oauth-transaction-tokens) beside the caller's proof: verified
// against the configured Transaction Token Service, exposed on the identity, never recorded first.
import { SignJWT, importJWK, type JWK } from 'jose';
import { createAuthenticator, createDpopProof, isOidc2Error, signRequest, MemoryReplayStore, type AuthenticatorOptions, type HttpRequest, type Oidc2Error } from '../src/index';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';

const T = 1_790_000_000;
const BASE = 'https://api.example.com';
const DOMAIN = 'trust-domain.example';

let op: TestIssuer;
let alice: TestKey;
let ict: string;
let tts: TestKey;
let ttsJwks: { keys: JWK[] };

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  ict = await op.mint(alice, { now: T, subject: 'orders-service' });
  tts = await newKey('ES256');
  ttsJwks = { keys: [{ ...tts.publicJwk, kid: 'tts-1', alg: 'ES256' }] };
});

async function txnToken(over: { typ?: string; aud?: string; iat?: number; exp?: number; sub?: string | null; key?: TestKey; kid?: string } = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    aud: over.aud ?? DOMAIN,
    iat: over.iat ?? T - 5,
    exp: over.exp ?? T + 60,
    txn: '97053963-771d-49cc-a4e3-20aad399c312',
    scope: 'trade.stocks',
    tctx: { action: 'BUY', ticker: 'MSFT', quantity: '100' },
    rctx: { req_ip: '69.151.72.123' },
  };
  if (over.sub !== null) claims.sub = over.sub ?? 'user@example.com';
  const key = over.key ?? tts;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: over.typ ?? 'txntoken+jwt', kid: over.kid ?? 'tts-1' }).sign(await importJWK(key.privateJwk, 'ES256'));
}

function options(extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return {
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now: () => T,
    transactionTokens: { trustDomain: DOMAIN, jwks: ttsJwks },
    ...extra,
  };
}

async function request(txn?: string | string[]): Promise<HttpRequest> {
  const headers = txn === undefined ? {} : { 'txn-token': txn };
  const signed = await signRequest({ method: 'GET', url: `${BASE}/orders`, headers }, { ict, key: alice.signer, now: () => T });
  return { method: 'GET', url: '/orders', headers: signed.headers };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (isOidc2Error(error)) return `${(error as Oidc2Error).code}/${(error as Oidc2Error).status}`;
    throw error;
  }
  return 'accepted';
}

describe('Transaction Tokens', () => {
  it('exposes a verified Txn-Token beside the identity', async () => {
    const identity = await createAuthenticator(options()).authenticate(await request(await txnToken()));
    expect(identity.subject).toBe('orders-service');
    expect(identity.transaction).toMatchObject({ subject: 'user@example.com', transactionId: '97053963-771d-49cc-a4e3-20aad399c312', scope: 'trade.stocks' });
    expect(identity.transaction?.claims.tctx).toEqual({ action: 'BUY', ticker: 'MSFT', quantity: '100' });
  });

  it('rejects a Txn-Token for another trust domain, of another type, expired, too long-lived, without sub, or from another service', async () => {
    const auth = createAuthenticator(options());
    const other = await newKey('ES256');
    for (const bad of [
      await txnToken({ aud: 'other-domain.example' }),
      await txnToken({ typ: 'JWT' }),
      await txnToken({ iat: T - 900, exp: T - 600 }),
      await txnToken({ iat: T - 10, exp: T + 3600 }),
      await txnToken({ iat: T - 400 }),
      await txnToken({ sub: null }),
      await txnToken({ key: other }),
      'not-a-jwt',
    ]) {
      expect(await code(auth.authenticate(await request(bad)))).toBe('txn_token_invalid/401');
    }
  });

  it('demands one when required, and exactly one field line', async () => {
    const strict = createAuthenticator(options({ transactionTokens: { trustDomain: DOMAIN, jwks: ttsJwks, required: true } }));
    expect(await code(strict.authenticate(await request()))).toBe('txn_token_missing/401');
    const token = await txnToken();
    expect(await code(strict.authenticate(await request([token, token])))).toBe('request_malformed/400');
    expect(await code(strict.authenticate(await request('a'.repeat(9000))))).toBe('header_too_large/400');
    await expect(createAuthenticator(options()).authenticate(await request())).resolves.not.toHaveProperty('transaction');
  });

  it('must be covered by the request signature', async () => {
    const req = await request();
    const added = { ...req, headers: { ...req.headers, 'txn-token': [await txnToken()] } };
    expect(await code(createAuthenticator(options()).authenticate(added))).toBe('component_not_covered/401');
  });

  it('is not interpreted by a service that does not accept Txn-Tokens', async () => {
    const plain = createAuthenticator(options({ transactionTokens: undefined }));
    const identity = await plain.authenticate(await request('anything, unverified'));
    expect(identity.transaction).toBeUndefined();
  });

  it('does not burn the nonce when the Txn-Token is refused', async () => {
    const store = new MemoryReplayStore();
    const wrongDomain = createAuthenticator(options({ replayStore: store, transactionTokens: { trustDomain: 'elsewhere.example', jwks: ttsJwks } }));
    const right = createAuthenticator(options({ replayStore: store }));
    const req = await request(await txnToken());
    expect(await code(wrongDomain.authenticate(req))).toBe('txn_token_invalid/401');
    await expect(right.authenticate(req)).resolves.toHaveProperty('transaction.subject', 'user@example.com');
    expect(await code(right.authenticate(req))).toBe('replay_detected/401');
  });

  it('works with DPoP proofs', async () => {
    const proof = await createDpopProof({ method: 'GET', url: `${BASE}/orders`, key: alice.signer, jwk: alice.publicJwk, accessToken: ict, now: () => T });
    const req: HttpRequest = { method: 'GET', url: '/orders', headers: { authorization: [`DPoP ${ict}`], dpop: [proof], 'txn-token': [await txnToken()] } };
    await expect(createAuthenticator(options()).authenticate(req)).resolves.toHaveProperty('transaction.scope', 'trade.stocks');
  });

  it('validates its options once', () => {
    expect(() => createAuthenticator(options({ transactionTokens: { trustDomain: '', jwks: ttsJwks } }))).toThrow(/transactionTokens\.trustDomain/);
    expect(() => createAuthenticator(options({ transactionTokens: { trustDomain: DOMAIN } }))).toThrow(/transactionTokens takes exactly one of jwks and jwksUri/);
    expect(() => createAuthenticator(options({ transactionTokens: { trustDomain: DOMAIN, jwks: ttsJwks, maxTokenAge: 0 } }))).toThrow(/maxTokenAge/);
  });
});
