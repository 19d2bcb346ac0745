// The session layer of end-to-end encryption: the Oidc2-Key-Share and Oidc2-Session fields, the
// session token and its keys. Every rejection asserted by code; clocks frozen.
import { CompactEncrypt } from 'jose';
import {
  KEY_SHARE_FIELD,
  parseRequestKeyShares,
  parseResponseKeyShare,
  parseSessionField,
  serializeKeyShares,
  serializeSessionField,
} from '../../src/e2ee/fields';
import { MemorySessionKeyStore, StaticSessionKeyStore, type SessionKeyStore } from '../../src/e2ee/session-keys';
import { assertSessionBinding, issueSessionToken, readSessionToken, sessionExpiry, type SessionClaims } from '../../src/e2ee/session-token';
import { encodeBase64, encodeBase64Url, utf8 } from '../../src/lib/base64';
import { codeOf } from '../../../../test/support/error-code';

const T = 1_790_000_000;
const AUD = 'https://api.example.com';
const times = { epochSeconds: 600, maxAgeSeconds: 3600, clockTolerance: 60 };
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const sf = (b: Uint8Array) => `:${encodeBase64(b)}:`;

function claims(extra: Partial<SessionClaims> = {}): SessionClaims {
  return { v: 1, sid: bytes(16, 1), rk: bytes(32, 2), suite: 'x25519', ep: 0, sat: T, iat: T, exp: T + 600, aud: AUD, iss: 'https://op.example.com', sub: 'alice', jkt: bytes(32, 3), ...extra };
}

describe('Oidc2-Key-Share', () => {
  it('parses one to three shares in the order sent and re-serialises them canonically (KS)', () => {
    const x = bytes(32, 7);
    const p = new Uint8Array(65).fill(9);
    p[0] = 4;
    const parsed = parseRequestKeyShares([`p256=${sf(p)},   x25519=${sf(x)}`]);
    expect(parsed.shares.map((s) => s.suite)).toEqual(['p256', 'x25519']);
    expect(parsed.shares[1]!.key).toEqual(x);
    expect(parsed.canonical).toBe(`p256=${sf(p)}, x25519=${sf(x)}`);
    expect(serializeKeyShares(parsed.shares)).toBe(parsed.canonical);
    // Several field lines are one field.
    expect(parseRequestKeyShares([`p256=${sf(p)}`, `x25519=${sf(x)}`]).canonical).toBe(parsed.canonical);
    expect(parseResponseKeyShare([`x25519=${sf(x)}`])).toEqual({ suite: 'x25519', key: x });
  });

  it.each([
    ['an empty field', ''],
    ['not a dictionary', 'x25519'],
    ['an unknown suite', `x448=${sf(bytes(56, 1))}`],
    ['a string value', 'x25519="abc"'],
    ['member parameters', `x25519=${sf(bytes(32, 1))};v=1`],
    ['a suite twice', `x25519=${sf(bytes(32, 1))}, x25519=${sf(bytes(32, 2))}`],
    ['four members', `x25519=${sf(bytes(32, 1))}, p256=${sf(bytes(65, 4))}, xwing=${sf(bytes(1216, 1))}, x25519=${sf(bytes(32, 2))}`],
    ['a short x25519 share', `x25519=${sf(bytes(31, 1))}`],
    ['a compressed-length p256 share', `p256=${sf(bytes(33, 2))}`],
    ['a huge field', `x25519=${sf(bytes(32, 1))}, ${'a'.repeat(7000)}=?1`],
  ])('refuses %s with e2ee_key_share_invalid', async (_name, field) => {
    expect(await codeOf(() => parseRequestKeyShares([field]))).toBe('e2ee_key_share_invalid');
  });

  it('a response carries exactly one member, of the response length', async () => {
    expect(await codeOf(() => parseResponseKeyShare([`x25519=${sf(bytes(32, 1))}, p256=${sf(bytes(65, 4))}`]))).toBe('e2ee_key_share_invalid');
    expect(await codeOf(() => parseResponseKeyShare([`xwing=${sf(bytes(1216, 1))}`]))).toBe('e2ee_key_share_invalid');
    expect(KEY_SHARE_FIELD).toBe('oidc2-key-share');
  });
});

describe('Oidc2-Session', () => {
  const jwe = 'eyJhbGciOiJkaXIifQ..aaaa.bbbb.cccc';

  it('round-trips a request token and a response token with exp and rekey', () => {
    expect(parseSessionField([serializeSessionField({ token: jwe })], 'request')).toEqual({ token: jwe });
    const response = serializeSessionField({ token: jwe, exp: T + 600, rekey: T + 480 });
    expect(response).toBe(`${jwe};exp=${T + 600};rekey=${T + 480}`);
    expect(parseSessionField([response], 'response')).toEqual({ token: jwe, exp: T + 600, rekey: T + 480 });
  });

  it.each([
    ['a string', [`"${jwe}"`], 'request'],
    ['parameters in a request', [`${jwe};exp=1`], 'request'],
    ['a response without rekey', [`${jwe};exp=1`], 'response'],
    ['a non-integer exp', [`${jwe};exp=1.5;rekey=1`], 'response'],
    ['a JWS instead of a JWE', ['a.b.c'], 'request'],
    ['two items', [jwe, jwe], 'request'],
    ['more than 4 KiB', [`${jwe}${'a'.repeat(4096)}`], 'request'],
  ] as const)('refuses %s with session_invalid', async (_name, lines, side) => {
    expect(await codeOf(() => parseSessionField([...lines], side))).toBe('session_invalid');
  });
});

describe('session token', () => {
  let store: MemorySessionKeyStore;
  beforeEach(() => {
    store = new MemorySessionKeyStore();
  });

  it('round-trips every claim and sets the profile header exactly', async () => {
    const token = await issueSessionToken(claims({ mac: { ctx: ['mfa'], ctyp: 'ict' } }), store, T);
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
    expect(Object.keys(header)).toEqual(['alg', 'enc', 'kid', 'typ']);
    expect(header).toMatchObject({ alg: 'dir', enc: 'A256GCM', typ: 'oidc2-session+jwt' });
    const read = await readSessionToken(token, store, AUD, T + 10, times);
    expect(read).toEqual(claims({ mac: { ctx: ['mfa'], ctyp: 'ict' } }));
    assertSessionBinding(read, { iss: 'https://op.example.com', sub: 'alice', jkt: bytes(32, 3) });
  });

  it('caps exp at the epoch, the session age and a given credential expiry', () => {
    expect(sessionExpiry(T, T, times)).toBe(T + 600);
    expect(sessionExpiry(T + 3300, T, times)).toBe(T + 3600);
    expect(sessionExpiry(T, T, times, T + 100.7)).toBe(T + 100);
  });

  async function tokenWith(payload: Record<string, unknown>, header: Record<string, unknown> = {}, s: SessionKeyStore = store): Promise<string> {
    const stek = await s.current(T);
    return new CompactEncrypt(utf8(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: stek.kid, typ: 'oidc2-session+jwt', ...header })
      .encrypt(stek.key);
  }
  const base = () => ({
    v: 1,
    sid: encodeBase64Url(bytes(16, 1)),
    rk: encodeBase64Url(bytes(32, 2)),
    suite: 'x25519',
    ep: 0,
    sat: T,
    iat: T,
    exp: T + 600,
    aud: AUD,
    iss: 'i',
    sub: 's',
    cnf: { jkt: encodeBase64Url(bytes(32, 3)) },
  });

  it('refuses edited, forged and foreign tokens with session_invalid', async () => {
    const read = (token: string, aud = AUD) => codeOf(() => readSessionToken(token, store, aud, T, times));
    const good = await tokenWith(base());
    const parts = good.split('.');
    const flipped = [...parts];
    flipped[3] = flipped[3]!.slice(0, -2) + (flipped[3]!.endsWith('AA') ? 'BA' : 'AA');
    expect(await read(flipped.join('.'))).toBe('session_invalid');
    expect(await read(good, 'https://other.example.com')).toBe('session_invalid');
    expect(await read(await tokenWith(base(), { zip: 'DEF' }))).toBe('session_invalid');
    expect(await read(await tokenWith(base(), { typ: 'JWT' }))).toBe('session_invalid');
    expect(await read(await tokenWith(base(), { cty: 'x' }))).toBe('session_invalid');
    expect(await read(await tokenWith({ ...base(), v: 2 }))).toBe('session_invalid');
    expect(await read(await tokenWith({ ...base(), rk: encodeBase64Url(bytes(16, 1)) }))).toBe('session_invalid');
    expect(await read(await tokenWith({ ...base(), suite: 'rsa' }))).toBe('session_invalid');
    expect(await read('a.b.c')).toBe('session_invalid');
    // Another service's key store, same kid scheme: the key is unknown here.
    expect(await read(await tokenWith(base(), {}, new MemorySessionKeyStore()))).toBe('session_invalid');
  });

  it('refuses lifetime inflation and a future iat with session_invalid, an old token with session_expired', async () => {
    const r = async (payload: Record<string, unknown>, at = T) => codeOf(async () => readSessionToken(await tokenWith(payload), store, AUD, at, times));
    expect(await r({ ...base(), exp: T + 601 })).toBe('session_invalid');
    expect(await r({ ...base(), iat: T + 100, exp: T + 200 })).toBe('session_invalid');
    expect(await r({ ...base(), sat: T + 1 })).toBe('session_invalid');
    expect(await r({ ...base(), sat: T - 3500, iat: T, exp: T + 600 })).toBe('session_invalid');
    expect(await r(base(), T + 661)).toBe('session_expired');
    expect(await codeOf(async () => readSessionToken(await tokenWith(base()), store, AUD, T + 659, times))).toBeUndefined();
  });

  it('binds a token to its caller: another subject, issuer or key is session_binding_mismatch', async () => {
    const read = await readSessionToken(await issueSessionToken(claims(), store, T), store, AUD, T, times);
    for (const other of [
      { iss: 'https://op.example.com', sub: 'bob', jkt: bytes(32, 3) },
      { iss: 'https://rogue.example.com', sub: 'alice', jkt: bytes(32, 3) },
      { iss: 'https://op.example.com', sub: 'alice', jkt: bytes(32, 4) },
    ]) {
      expect(await codeOf(() => assertSessionBinding(read, other))).toBe('session_binding_mismatch');
    }
  });
});

describe('session-token keys', () => {
  it('rotates the in-memory key per period, keeps old ones for the retention, then deletes them', async () => {
    const store = new MemorySessionKeyStore({ rotationSeconds: 600, retentionSeconds: 660 });
    const start = Math.floor(T / 600) * 600;
    const first = store.current(start + 599);
    const token = await issueSessionToken(claims({ iat: start + 599, sat: start + 599, exp: start + 1199 }), store, start + 599);
    const second = store.current(start + 600);
    expect(second.kid).not.toBe(first.kid);
    // Issued just before the rotation, used just after: accepted.
    await expect(readSessionToken(token, store, AUD, start + 601, times)).resolves.toBeDefined();
    expect(store.find(first.kid, start + 1259)).toBe(first);
    // After the retention the key is gone, and with it every token made under it.
    expect(store.find(first.kid, start + 1260)).toBeUndefined();
    expect(await codeOf(() => readSessionToken(token, store, AUD, start + 1260, { ...times, epochSeconds: 10_000, maxAgeSeconds: 10_000, clockTolerance: 10_000 }))).toBe('session_invalid');
  });

  it('serves an operator-supplied key set and validates it', async () => {
    const k = (fill: number) => encodeBase64Url(bytes(32, fill));
    const store = new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'new', k: k(1) }, { kty: 'oct', kid: 'old', k: k(2) }] });
    expect(store.current().kid).toBe('new');
    expect(store.find('old')?.key).toEqual(bytes(32, 2));
    const bad = (jwks: unknown) => codeOf(() => new StaticSessionKeyStore(jwks as never));
    expect(await bad({ keys: [] })).toBe('TypeError');
    expect(await bad({ keys: [{ kty: 'oct', kid: 'a', k: encodeBase64Url(bytes(16, 1)) }] })).toBe('TypeError');
    expect(await bad({ keys: [{ kty: 'oct', kid: 'a', k: k(1) }, { kty: 'oct', kid: 'a', k: k(2) }] })).toBe('TypeError');
  });

  it('rejects unknown option keys, naming them', () => {
    let error: unknown;
    try {
      new MemorySessionKeyStore({ rotation: 60 } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(/options\.rotation\b/) });
  });

  it('a store that cannot be reached is session_keys_unavailable, issuing and reading', async () => {
    const down: SessionKeyStore = {
      current: () => Promise.reject(new Error('ECONNREFUSED')),
      find: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    expect(await codeOf(() => issueSessionToken(claims(), down, T))).toBe('session_keys_unavailable');
    const token = await issueSessionToken(claims(), new MemorySessionKeyStore(), T);
    expect(await codeOf(() => readSessionToken(token, down, AUD, T, times))).toBe('session_keys_unavailable');
  });
});
