// The session token: exact header and claims, the checks of docs/protocol.md in their order, and
// the attacks on tokens (forging, editing, zip, other algorithms, other keys, expiry, lifetime
// inflation, future iat, another audience, another caller, STEK rotation and deletion). Tokens the
// service would never make are minted here with node:crypto under a known test STEK. Clocks are frozen.
import { createCipheriv } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { checkSessionBinding, createSessionTokens, type SessionTokenInput } from '../../src/e2ee/session-token';
import * as coreCrypto from '../../src/lib/crypto';
import { MemorySessionKeyStore, StaticSessionKeyStore, type SessionKeyStore } from '../../src/e2ee/session-keys';
import { codeOf, syncCodeOf } from '../../../../test/support/error-code';

const T = 1_790_000_400;
const AUD = 'https://api.example';
const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const jkt = new Uint8Array(32).fill(0xaa);
const caller = { iss: 'https://op.example', sub: 'alice', jkt };
const sid = new Uint8Array(16).fill(0x5a);
const rk = new Uint8Array(32).fill(0x11);
const input: SessionTokenInput = { sid, rk, suite: 'x25519', epoch: 0, audience: AUD, caller };

const staticKeys = () => new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'k1', k: b64u(K1) }, { kty: 'oct', kid: 'k2', k: b64u(K2) }] });

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: 1, sid: b64u(sid), rk: b64u(rk), suite: 'x25519', ep: 0, sat: T, iat: T, exp: T + 600, aud: AUD, iss: caller.iss, sub: caller.sub, cnf: { jkt: b64u(jkt) }, ...overrides };
}

/** A compact JWE made by hand: any header, any payload, under `key`. */
function mint(payload: unknown, options: { key?: Uint8Array; header?: Record<string, unknown>; raw?: Buffer } = {}): string {
  const header = b64u(JSON.stringify(options.header ?? { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'oidc2-session+jwt' }));
  const iv = Buffer.alloc(12, 9);
  const cipher = createCipheriv('aes-256-gcm', options.key ?? K1, iv);
  cipher.setAAD(Buffer.from(header, 'ascii'));
  const ct = Buffer.concat([cipher.update(options.raw ?? Buffer.from(JSON.stringify(payload))), cipher.final()]);
  return `${header}..${b64u(iv)}.${b64u(ct)}.${b64u(cipher.getAuthTag())}`;
}

function tokens(now: () => number = () => T, keys: SessionKeyStore = staticKeys()) {
  return createSessionTokens({ keys, now });
}

describe('issuing', () => {
  it('makes the exact header and claims, with exp and rekey for the field', async () => {
    const issued = await tokens().issue(input);
    expect(issued).toEqual({ token: expect.any(String), exp: T + 600, rekey: T + 480, iat: T });
    expect(Object.keys(decodeProtectedHeader(issued.token))).toEqual(['alg', 'enc', 'kid', 'typ']);
    const [header] = issued.token.split('.');
    expect(Buffer.from(header!, 'base64url').toString()).toBe('{"alg":"dir","enc":"A256GCM","kid":"k1","typ":"oidc2-session+jwt"}');
    const { plaintext } = await compactDecrypt(issued.token, K1);
    expect(JSON.parse(Buffer.from(plaintext).toString())).toEqual(claims());
  });

  it('is deterministic with an injected IV (for the worked example only)', async () => {
    const iv = new Uint8Array(12).fill(3);
    const a = await tokens().issue(input, { iv });
    const b = await tokens().issue(input, { iv });
    expect(a.token).toBe(b.token);
    expect(a.token.split('.')[2]).toBe(b64u(iv));
    expect(await codeOf(() => tokens().issue(input, { iv: new Uint8Array(16) }))).toBe('TypeError');
  });

  it('bounds exp by the session maximum age, and refuses a session past it', async () => {
    const late = await tokens().issue({ ...input, epoch: 5, sessionStart: T - 3300 });
    expect(late.exp).toBe(T + 300);
    expect(late.rekey).toBe(T + 300);
    expect(await codeOf(() => tokens().issue({ ...input, sessionStart: T - 3600 }))).toBe('session_expired');
    expect(await codeOf(() => tokens().issue({ ...input, sessionStart: T + 1 }))).toBe('TypeError');
  });

  it('in symmetric mode, bounds exp by the credential and carries mac, ctx and ctyp', async () => {
    const issued = await tokens().issue({ ...input, mac: { ctx: ['acr:mfa'], ctyp: 'ict', credentialExpiresAt: T + 100 } });
    expect(issued.exp).toBe(T + 100);
    const session = await tokens().verify(issued.token, AUD);
    expect(session.mac).toEqual({ ctx: ['acr:mfa'], ctyp: 'ict' });
    expect(await codeOf(() => tokens().issue({ ...input, mac: { ctx: [], ctyp: 'ict', credentialExpiresAt: T } }))).toBe('session_expired');
    expect(await codeOf(() => tokens().issue({ ...input, mac: { ctx: [], ctyp: 'jwt' as never, credentialExpiresAt: T + 5 } }))).toBe('TypeError');
  });

  it('fails closed with session_keys_unavailable when the store fails', async () => {
    const broken: SessionKeyStore = { current: async () => { throw new Error('down'); }, get: async () => { throw new Error('down'); } };
    expect(await codeOf(() => tokens(() => T, broken).issue(input))).toBe('session_keys_unavailable');
    const token = (await tokens().issue(input)).token;
    expect(await codeOf(() => tokens(() => T, broken).verify(token, AUD))).toBe('session_keys_unavailable');
  });

  it('never puts the root, the key or the token into an error', async () => {
    const token = (await tokens().issue(input)).token;
    const edited = token.slice(0, -2) + (token.endsWith('AA') ? 'AB' : 'AA');
    const error = await tokens().verify(edited, AUD).catch((e: Error) => e);
    const text = `${String(error)} ${JSON.stringify((error as { toProblem?: () => unknown }).toProblem?.())}`;
    expect(text).not.toContain(b64u(rk));
    expect(text).not.toContain(token.split('.')[3]!);
  });
});

describe('verifying', () => {
  it('returns the session a token states', async () => {
    const { token } = await tokens().issue(input);
    const session = await tokens().verify(token, AUD);
    expect(session).toEqual({ sid, rk, suite: 'x25519', epoch: 0, sessionStart: T, issuedAt: T, expiresAt: T + 600, audience: AUD, caller: { iss: caller.iss, sub: caller.sub, jkt } });
    expect(await tokens().verify(mint(claims()), AUD)).toEqual(session);
  });

  describe('decrypt, header and claims: session_invalid', () => {
    const cases: [string, () => Promise<string> | string][] = [
      ['a forged token (random bytes)', () => `${b64u('{"alg":"dir","enc":"A256GCM","kid":"k1","typ":"oidc2-session+jwt"}')}..${b64u(Buffer.alloc(12))}.${b64u(Buffer.alloc(40, 1))}.${b64u(Buffer.alloc(16))}`],
      ['an edited ciphertext', async () => {
        const parts = (await tokens().issue(input)).token.split('.');
        const ct = Buffer.from(parts[3]!, 'base64url');
        ct[5]! ^= 1;
        parts[3] = b64u(ct);
        return parts.join('.');
      }],
      ['an edited tag', async () => {
        const parts = (await tokens().issue(input)).token.split('.');
        const tag = Buffer.from(parts[4]!, 'base64url');
        tag[0]! ^= 0x80;
        parts[4] = b64u(tag);
        return parts.join('.');
      }],
      ['an edited header (kid of another existing key)', async () => {
        const parts = (await tokens().issue(input)).token.split('.');
        parts[0] = b64u('{"alg":"dir","enc":"A256GCM","kid":"k2","typ":"oidc2-session+jwt"}');
        return parts.join('.');
      }],
      ['a token made under another key with its kid', () => mint(claims(), { key: K2 })],
      ['an unknown kid', () => mint(claims(), { header: { alg: 'dir', enc: 'A256GCM', kid: 'k9', typ: 'oidc2-session+jwt' } })],
      ['zip', () => mint(claims(), { header: { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'oidc2-session+jwt', zip: 'DEF' } })],
      ['alg other than dir', () => mint(claims(), { header: { alg: 'A256GCMKW', enc: 'A256GCM', kid: 'k1', typ: 'oidc2-session+jwt' } })],
      ['enc other than A256GCM', () => mint(claims(), { header: { alg: 'dir', enc: 'A128GCM', kid: 'k1', typ: 'oidc2-session+jwt' } })],
      ['another typ', () => mint(claims(), { header: { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'JWT' } })],
      ['an extra header member', () => mint(claims(), { header: { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'oidc2-session+jwt', cty: 'JWT' } })],
      ['a crit header', () => mint(claims(), { header: { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'oidc2-session+jwt', crit: ['exp'] } })],
      ['an encrypted key segment', async () => (await tokens().issue(input)).token.replace('..', '.AAAA.')],
      ['a JWS instead of a JWE', () => `${b64u('{"alg":"HS256"}')}.${b64u(JSON.stringify(claims()))}.sig`],
      ['more than 4 KiB', () => mint(claims({ sub: 'x'.repeat(4000) }))],
      ['claims that are not JSON', () => mint(null, { raw: Buffer.from('not json') })],
      ['version 2', () => mint(claims({ v: 2 }))],
      ['an unknown claim', () => mint(claims({ admin: true }))],
      ['a short rk', () => mint(claims({ rk: b64u(new Uint8Array(16)) }))],
      ['a padded sid', () => mint(claims({ sid: Buffer.from(sid).toString('base64') }))],
      ['an unknown suite', () => mint(claims({ suite: 'x448' }))],
      ['a string exp', () => mint(claims({ exp: String(T + 600) }))],
      ['a fractional iat', () => mint(claims({ iat: T + 0.5 }))],
      ['cnf with an extra member', () => mint(claims({ cnf: { jkt: b64u(jkt), jwk: {} } }))],
      ['mac without ctyp', () => mint(claims({ mac: true, ctx: [] }))],
      ['ctx without mac', () => mint(claims({ ctx: [], ctyp: 'ict' }))],
      ['mac false', () => mint(claims({ mac: false, ctx: [], ctyp: 'ict' }))],
    ];
    it.each(cases)('%s', async (_name, make) => {
      expect(await codeOf(async () => tokens().verify(await make(), AUD))).toBe('session_invalid');
    });
  });

  it('checks exp with leeway: session_expired', async () => {
    const token = mint(claims());
    expect(await codeOf(() => tokens(() => T + 659).verify(token, AUD))).toBeUndefined();
    expect(await codeOf(() => tokens(() => T + 660).verify(token, AUD))).toBe('session_expired');
  });

  it('checks expiry before consistency and audience', async () => {
    expect(await codeOf(() => tokens(() => T + 5000).verify(mint(claims({ exp: T + 700, aud: 'https://other.example' })), AUD))).toBe('session_expired');
  });

  it.each([
    ['lifetime inflation (exp - iat > epochSeconds)', claims({ exp: T + 601 })],
    ['iat in the future', claims({ sat: T + 61, iat: T + 61, exp: T + 661 })],
    ['exp past sat + maxAgeSeconds', claims({ sat: T - 3500, iat: T, exp: T + 101 })],
    ['sat after iat', claims({ sat: T + 1 })],
    ['another audience', claims({ aud: 'https://other.example' })],
    ['an audience that differs only by a trailing slash', claims({ aud: AUD + '/' })],
  ])('refuses %s with session_invalid', async (_name, c) => {
    expect(await codeOf(() => tokens().verify(mint(c), AUD))).toBe('session_invalid');
  });

  it('accepts iat up to the leeway ahead and the exact limits', async () => {
    expect(await codeOf(() => tokens().verify(mint(claims({ sat: T + 60, iat: T + 60, exp: T + 660 })), AUD))).toBeUndefined();
    expect(await codeOf(() => tokens().verify(mint(claims({ sat: T - 3000, iat: T, exp: T + 600 })), AUD))).toBeUndefined();
  });
});

describe('binding', () => {
  it('accepts the caller the token names, including after an ICT renewal for the same key', async () => {
    const session = await tokens().verify((await tokens().issue(input)).token, AUD);
    expect(syncCodeOf(() => checkSessionBinding(session, { iss: caller.iss, sub: caller.sub, jkt: Uint8Array.from(jkt) }))).toBeUndefined();
  });

  it.each([
    ['another key', { ...caller, jkt: new Uint8Array(32).fill(0xbb) }],
    ['another subject', { ...caller, sub: 'mallory' }],
    ['another issuer', { ...caller, iss: 'https://evil.example' }],
    ['no issuer', { ...caller, iss: '' }],
  ])('refuses %s with session_binding_mismatch', async (_name, other) => {
    const session = await tokens().verify((await tokens().issue(input)).token, AUD);
    expect(syncCodeOf(() => checkSessionBinding(session, other))).toBe('session_binding_mismatch');
  });

  it('refuses a token minted under a known STEK for caller A when caller B presents it', async () => {
    const session = await tokens().verify(mint(claims()), AUD);
    expect(syncCodeOf(() => checkSessionBinding(session, { iss: caller.iss, sub: 'bob', jkt: new Uint8Array(32).fill(0xbb) }))).toBe('session_binding_mismatch');
  });
});

describe('STEK rotation', () => {
  it('accepts a token made just before a rotation just after it, and refuses it once its STEK is deleted', async () => {
    const start = 1_790_000_400; // a period start for 600-second periods
    let now = start + 599;
    const keys = new MemorySessionKeyStore({ now: () => now });
    const sessions = createSessionTokens({ keys, now: () => now });
    const { token, exp } = await sessions.issue(input);
    expect(exp).toBe(start + 1199);
    now = start + 600;
    const next = await sessions.issue(input);
    expect(decodeProtectedHeader(next.token).kid).not.toBe(decodeProtectedHeader(token).kid);
    now = start + 601;
    expect((await sessions.verify(token, AUD)).issuedAt).toBe(start + 599);
    now = start + 1258; // within exp + leeway and within retention
    expect(await codeOf(() => sessions.verify(token, AUD))).toBeUndefined();
    now = start + 1260; // retention over: the STEK is gone, and with it every token made under it
    expect(await codeOf(() => sessions.verify(token, AUD))).toBe('session_invalid');
    expect(keys.size).toBe(1);
    now = start + 1259; // the next period's STEK is still kept
    expect(await codeOf(() => sessions.verify(next.token, AUD))).toBeUndefined();
    keys.close();
  });
});

describe('opened tokens are kept, and every check but the decryption still runs on them', () => {
  /** A store over one mutable map, as an operator's own store may be. */
  function mutableStore(entries: Array<[string, Uint8Array]>) {
    const map = new Map(entries.map(([kid, key]) => [kid, { kid, key }]));
    const store: SessionKeyStore = { current: async () => map.get('k1')!, get: async (kid) => map.get(kid) };
    return { store, map };
  }
  const opens = () => jest.spyOn(coreCrypto, 'aes256GcmOpen');
  afterEach(() => jest.restoreAllMocks());

  it('decrypts a token once, then serves it from the cache', async () => {
    const sessions = tokens();
    const { token } = await sessions.issue(input);
    const spy = opens();
    const first = await sessions.verify(token, AUD);
    const second = await sessions.verify(token, AUD);
    expect(second).toBe(first);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('still checks expiry, audience and the age bounds of a kept token', async () => {
    let now = T;
    const sessions = tokens(() => now);
    const { token } = await sessions.issue(input);
    await sessions.verify(token, AUD);
    expect(await codeOf(() => sessions.verify(token, 'https://other.example'))).toBe('session_invalid');
    now = T + 600 + 60;
    expect(await codeOf(() => sessions.verify(token, AUD))).toBe('session_expired');
    now = T;
    // Found expired, it was let go: it is opened again (and is valid again at this earlier clock).
    const spy = opens();
    expect(await codeOf(() => sessions.verify(token, AUD))).toBeUndefined();
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('ends a kept token when its STEK is deleted or replaced under the same kid', async () => {
    const { store, map } = mutableStore([['k1', K1]]);
    const sessions = createSessionTokens({ keys: store, now: () => T });
    const { token } = await sessions.issue(input);
    await sessions.verify(token, AUD);
    map.delete('k1');
    expect(await codeOf(() => sessions.verify(token, AUD))).toBe('session_invalid');
    map.set('k1', { kid: 'k1', key: K2 });
    expect(await codeOf(() => sessions.verify(token, AUD))).toBe('session_invalid');
    // The same key bytes in a new object (a store that copies its keys) keep the token valid.
    map.set('k1', { kid: 'k1', key: new Uint8Array(K1) });
    expect(await codeOf(() => sessions.verify(token, AUD))).toBeUndefined();
  });

  it('never serves an edited token from the cache', async () => {
    const sessions = tokens();
    const { token } = await sessions.issue(input);
    await sessions.verify(token, AUD);
    for (let i = 0; i < token.length; i += 7) {
      const edited = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
      expect(await codeOf(() => sessions.verify(edited, AUD))).toBe('session_invalid');
    }
  });

  it('keeps at most openedCacheSize tokens, and none with 0', async () => {
    const one = createSessionTokens({ keys: staticKeys(), now: () => T, openedCacheSize: 1 });
    const a = (await one.issue(input)).token;
    const b = (await one.issue({ ...input, epoch: 1 })).token;
    const spy = opens();
    await one.verify(a, AUD);
    await one.verify(a, AUD);
    expect(spy).toHaveBeenCalledTimes(1);
    await one.verify(b, AUD);
    await one.verify(a, AUD); // evicted by b
    expect(spy).toHaveBeenCalledTimes(3);
    const none = createSessionTokens({ keys: staticKeys(), now: () => T, openedCacheSize: 0 });
    await none.verify(a, AUD);
    await none.verify(a, AUD);
    expect(spy).toHaveBeenCalledTimes(5);
  });

  it('rejects a bad openedCacheSize', () => {
    for (const openedCacheSize of [-1, 1.5, '8']) {
      expect(syncCodeOf(() => createSessionTokens({ keys: staticKeys(), openedCacheSize } as never))).toBe('TypeError');
    }
  });
});

describe('options', () => {
  const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as { code: string }).code; } return undefined; };

  it('rejects unknown option keys with ERR_UNKNOWN_OPTION', async () => {
    expect(code(() => createSessionTokens({ keys: staticKeys(), epoch: 600 } as never))).toBe('ERR_UNKNOWN_OPTION');
    const codeAsync = (promise: Promise<unknown>) => promise.then(() => undefined, (e: { code?: string }) => e.code);
    expect(await codeAsync(tokens().issue({ ...input, expiresAt: T } as never))).toBe('ERR_UNKNOWN_OPTION');
    expect(await codeAsync(tokens().issue({ ...input, caller: { ...caller, cnf: {} } } as never))).toBe('ERR_UNKNOWN_OPTION');
  });

  it('rejects bad values', () => {
    for (const options of [{}, { keys: {} }, { keys: staticKeys(), epochSeconds: 0 }, { keys: staticKeys(), rekeySeconds: 700 }, { keys: staticKeys(), maxAgeSeconds: 100 }, { keys: staticKeys(), leewaySeconds: -1 }]) {
      expect(syncCodeOf(() => createSessionTokens(options as never))).toBe('TypeError');
    }
    const t = createSessionTokens({ keys: staticKeys() });
    expect([t.epochSeconds, t.maxAgeSeconds, t.rekeySeconds, t.leewaySeconds]).toEqual([600, 3600, 480, 60]);
  });
});

describe('opening tokens on the core crypto layer agrees with jose', () => {
  // Every single-character change of a token jose made: jose's compactDecrypt and the verifier
  // accept exactly the same tokens, on both crypto paths.
  it.each([false, true])('for every one-character edit (WebCrypto: %s)', async (web) => {
    const { useWebCrypto } = await import('../../src/lib/crypto');
    useWebCrypto(web);
    try {
      const issued = (await tokens().issue(input)).token;
      await expect(tokens().verify(issued, AUD)).resolves.toMatchObject({ audience: AUD });
      const alphabet = ['A', 'B', '_', '-', '0', '.', '='];
      for (let i = 0; i < issued.length; i += 3) {
        for (const c of alphabet) {
          if (issued[i] === c) continue;
          const edited = issued.slice(0, i) + c + issued.slice(i + 1);
          const byJose = await compactDecrypt(edited, K1, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] }).then(
            () => true,
            () => false,
          );
          const ours = await tokens()
            .verify(edited, AUD)
            .then(
              () => true,
              () => false,
            );
          // Ours may refuse more (a header that is not exactly the profile's); never accept more.
          if (ours) expect([i, c, byJose]).toEqual([i, c, true]);
        }
      }
    } finally {
      useWebCrypto(false);
    }
  });
});
