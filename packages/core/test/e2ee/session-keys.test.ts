// STEK stores: rotation per period, retention then real deletion, the static JWK set, and
// failing closed. Clocks are frozen and moved by hand.
import { MemorySessionKeyStore, StaticSessionKeyStore, fromStore, isSessionKey, type SessionKey } from '../../src/e2ee/session-keys';
import { codeOf, syncCodeOf } from '../../../../test/support/error-code';

const T0 = 1_790_000_400; // a multiple of 600 (period start)

describe('MemorySessionKeyStore', () => {
  let now = T0;
  const clock = () => now;
  beforeEach(() => {
    now = T0;
  });

  it('keeps one STEK per rotation period and makes a new one when the period changes', async () => {
    const store = new MemorySessionKeyStore({ now: clock });
    const a = await store.current();
    expect(a.key).toHaveLength(32);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    now = T0 + 599;
    expect(await store.current()).toBe(a);
    now = T0 + 600;
    const b = await store.current();
    expect(b.kid).not.toBe(a.kid);
    expect(Buffer.from(b.key).equals(Buffer.from(a.key))).toBe(false);
    expect(await store.get(a.kid)).toBe(a);
    expect(await store.get(b.kid)).toBe(b);
    expect(store.size).toBe(2);
    store.close();
  });

  it('deletes a STEK at period start + retention: its octets are zeroed and it is gone', async () => {
    const store = new MemorySessionKeyStore({ now: clock });
    const a = await store.current();
    const copy = Uint8Array.from(a.key);
    now = T0 + 1259;
    expect((await store.get(a.kid))?.key).toEqual(copy);
    now = T0 + 1260;
    expect(await store.get(a.kid)).toBeUndefined();
    expect(a.key.every((b) => b === 0)).toBe(true);
    expect(store.size).toBe(0);
    store.close();
  });

  it('holds at most ceil(retention / rotation) + 1 keys however long it runs', async () => {
    const store = new MemorySessionKeyStore({ now: clock, stekRotationSeconds: 60, stekRetentionSeconds: 150 });
    for (let i = 0; i < 100; i++) {
      now = T0 + i * 60;
      await store.current();
      expect(store.size).toBeLessThanOrEqual(4);
    }
    store.close();
  });

  it('deletes on a timer without any call', async () => {
    const store = new MemorySessionKeyStore({ now: () => Date.now() / 1000, stekRotationSeconds: 1, stekRetentionSeconds: 1 });
    const a = await store.current();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(store.size).toBe(0);
    expect(a.key.every((b) => b === 0)).toBe(true);
    store.close();
  });

  it('after close, holds nothing and refuses to make keys', async () => {
    const store = new MemorySessionKeyStore({ now: clock });
    const a = await store.current();
    store.close();
    expect(a.key.every((b) => b === 0)).toBe(true);
    expect(await store.get(a.kid)).toBeUndefined();
    expect(await codeOf(() => store.current())).toBe('session_keys_unavailable');
  });

  it('rejects unknown and bad options', () => {
    expect((() => { try { new MemorySessionKeyStore({ stekRotation: 5 } as never); } catch (e) { return (e as { code: string }).code; } })()).toBe('ERR_UNKNOWN_OPTION');
    for (const options of [{ stekRotationSeconds: 0 }, { stekRotationSeconds: 1.5 }, { stekRetentionSeconds: 599 }, { now: 5 }]) {
      expect(syncCodeOf(() => new MemorySessionKeyStore(options as never))).toBe('TypeError');
    }
  });
});

describe('StaticSessionKeyStore', () => {
  const k = (fill: number) => Buffer.alloc(32, fill).toString('base64url');

  it('encrypts with the first key (or currentKid) and decrypts with every key', async () => {
    const store = new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'k1', k: k(1) }, { kty: 'oct', kid: 'k2', k: k(2), alg: 'dir', use: 'enc' }] });
    expect((await store.current()).kid).toBe('k1');
    expect((await store.get('k2'))?.key).toEqual(new Uint8Array(32).fill(2));
    expect(await store.get('k3')).toBeUndefined();
    const second = new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'k1', k: k(1) }, { kty: 'oct', kid: 'k2', k: k(2) }], currentKid: 'k2' });
    expect((await second.current()).kid).toBe('k2');
  });

  it.each([
    ['no keys', { keys: [] }],
    ['a short k', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(16).toString('base64url') }] }],
    ['a long k', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(33).toString('base64url') }] }],
    ['padded base64', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(32).toString('base64') }] }],
    ['a repeated kid', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(32).toString('base64url') }, { kty: 'oct', kid: 'a', k: Buffer.alloc(32, 1).toString('base64url') }] }],
    ['an empty kid', { keys: [{ kty: 'oct', kid: '', k: Buffer.alloc(32).toString('base64url') }] }],
    ['another kty', { keys: [{ kty: 'EC', kid: 'a', k: Buffer.alloc(32).toString('base64url') }] }],
    ['another alg', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(32).toString('base64url'), alg: 'A256GCM' }] }],
    ['an unknown currentKid', { keys: [{ kty: 'oct', kid: 'a', k: Buffer.alloc(32).toString('base64url') }], currentKid: 'b' }],
  ])('refuses %s', (_name, options) => {
    expect(syncCodeOf(() => new StaticSessionKeyStore(options as never))).toBe('TypeError');
  });

  it('rejects unknown option keys, also inside a JWK', () => {
    const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as { code: string }).code; } return undefined; };
    expect(code(() => new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'a', k: k(1) }], current: 'a' } as never))).toBe('ERR_UNKNOWN_OPTION');
    expect(code(() => new StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'a', k: k(1), d: 'x' }] } as never))).toBe('ERR_UNKNOWN_OPTION');
  });
});

describe('calling a store', () => {
  it('maps any failure or a malformed key to session_keys_unavailable', async () => {
    const good: SessionKey = { kid: 'a', key: new Uint8Array(32) };
    expect(await fromStore(async () => good, isSessionKey)).toBe(good);
    expect(await codeOf(() => fromStore(async () => { throw new Error('down'); }, isSessionKey))).toBe('session_keys_unavailable');
    expect(await codeOf(() => fromStore(() => { throw new Error('sync'); }, isSessionKey))).toBe('session_keys_unavailable');
    expect(await codeOf(() => fromStore(async () => ({ kid: 'a', key: new Uint8Array(16) }), isSessionKey))).toBe('session_keys_unavailable');
    expect(await codeOf(() => fromStore(async () => ({ kid: 'a b', key: new Uint8Array(32) }), isSessionKey))).toBe('session_keys_unavailable');
  });
});
