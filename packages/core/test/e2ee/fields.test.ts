// Oidc2-Key-Share and Oidc2-Session: the rules of docs/protocol.md for each, asserted by code.
import {
  assertKeyShareLength,
  parseRequestKeyShare,
  parseRequestSession,
  parseResponseKeyShare,
  parseResponseSession,
  serializeRequestKeyShare,
  serializeResponseKeyShare,
  serializeSession,
  SUITE_LENGTHS,
} from '../../src/e2ee/fields';
import { syncCodeOf } from '../../../../test/support/error-code';

const b64 = (n: number, fill = 7): string => Buffer.alloc(n, fill).toString('base64');
const X = `x25519=:${b64(32)}:`;
const P = `p256=:${b64(65)}:`;
const W = `xwing=:${b64(1216)}:`;
const JWE = 'eyJhbGciOiJkaXIifQ..aXZpdml2aXZpdml2.Y2lwaGVy.dGFndGFndGFndGFndGFn';

describe('Oidc2-Key-Share in a request', () => {
  it('keeps one to three shares in the order sent, with their canonical form KS', () => {
    const parsed = parseRequestKeyShare([`${P},   ${X}`, W]);
    expect(parsed.shares.map((s) => s.suite)).toEqual(['p256', 'x25519', 'xwing']);
    expect(parsed.shares.map((s) => s.key.length)).toEqual([65, 32, 1216]);
    expect(parsed.canonical).toBe(`${P}, ${X}, ${W}`);
    expect(parseRequestKeyShare([X]).shares).toHaveLength(1);
    expect(serializeRequestKeyShare(parsed.shares)).toBe(parsed.canonical);
  });

  it.each([
    ['a repeated suite', [`${X}, ${X}`]],
    ['a repeated suite on two field lines', [X, X]],
    ['a repeated suite that hides a member', [`x25519="a,b", ${X}`]],
    ['four members', [`${X}, ${P}, ${W}, foo=:${b64(32)}:`]],
    ['four members with a repeat', [`${X}, ${P}, ${W}, ${X}`]],
    ['parameters on a member', [`${X};a=1`]],
    ['a boolean parameter on a member', [`${P}, ${X};q`]],
    ['an unknown suite', [`x448=:${b64(56)}:`]],
    ['an upper-case suite', [`X25519=:${b64(32)}:`]],
    ['a wrong x25519 length', [`x25519=:${b64(33)}:`]],
    ['a wrong p256 length (compressed point)', [`p256=:${b64(33)}:`]],
    ['a response-length xwing share', [`xwing=:${b64(1120)}:`]],
    ['a Token instead of a Byte Sequence', ['x25519=abc']],
    ['a String', ['x25519="abc"']],
    ['an inner list', [`x25519=(:${b64(32)}:)`]],
    ['a bare key (Boolean true)', ['x25519']],
    ['no member', ['']],
    ['no field line', []],
    ['not a Dictionary', ['x25519=:not base64!:']],
    ['more than 4 KiB', [`${X}, p256=:${b64(3100)}:`]],
  ])('refuses %s with e2ee_key_share_invalid', (_name, lines) => {
    expect(syncCodeOf(() => parseRequestKeyShare(lines))).toBe('e2ee_key_share_invalid');
  });

  it('refuses an absent field', () => {
    expect(syncCodeOf(() => parseRequestKeyShare(undefined))).toBe('e2ee_key_share_invalid');
  });

  it('serialises only what it would accept', () => {
    const x = { suite: 'x25519' as const, key: new Uint8Array(32) };
    expect(syncCodeOf(() => serializeRequestKeyShare([]))).toBe('TypeError');
    expect(syncCodeOf(() => serializeRequestKeyShare([x, x]))).toBe('TypeError');
    expect(syncCodeOf(() => serializeRequestKeyShare([{ suite: 'x25519', key: new Uint8Array(31) }]))).toBe('TypeError');
    expect(syncCodeOf(() => serializeRequestKeyShare([{ suite: 'x448' as never, key: new Uint8Array(56) }]))).toBe('TypeError');
  });
});

describe('Oidc2-Key-Share in a response', () => {
  it('holds exactly one enc of the suite\'s length', () => {
    const share = parseResponseKeyShare([`xwing=:${b64(1120)}:`]);
    expect(share.suite).toBe('xwing');
    expect(share.key.length).toBe(1120);
    expect(serializeResponseKeyShare({ suite: 'p256', key: new Uint8Array(65).fill(7) })).toBe(P);
    expect(parseResponseKeyShare([P]).key).toEqual(new Uint8Array(65).fill(7));
  });

  it.each([
    ['two members', [`${X}, ${P}`]],
    ['a request-length xwing share', [W]],
    ['parameters', [`${X};a`]],
    ['an unknown suite', [`x448=:${b64(56)}:`]],
  ])('refuses %s with e2ee_key_share_invalid', (_name, lines) => {
    expect(syncCodeOf(() => parseResponseKeyShare(lines))).toBe('e2ee_key_share_invalid');
  });

  it('checks lengths per suite and side', () => {
    expect(SUITE_LENGTHS).toEqual({ x25519: { share: 32, enc: 32 }, p256: { share: 65, enc: 65 }, xwing: { share: 1216, enc: 1120 } });
    expect(syncCodeOf(() => assertKeyShareLength('xwing', new Uint8Array(1216), 'request'))).toBeUndefined();
    expect(syncCodeOf(() => assertKeyShareLength('xwing', new Uint8Array(1216), 'response'))).toBe('e2ee_key_share_invalid');
    expect(syncCodeOf(() => assertKeyShareLength('p256', new Uint8Array(64), 'request'))).toBe('e2ee_key_share_invalid');
  });
});

describe('Oidc2-Session', () => {
  it('carries a compact JWE as a Token, with exp and rekey in a response only', () => {
    expect(parseRequestSession([JWE])).toEqual({ token: JWE });
    expect(parseResponseSession([`${JWE};exp=1790000600;rekey=1790000480`])).toEqual({ token: JWE, exp: 1790000600, rekey: 1790000480 });
    expect(parseResponseSession([`${JWE};rekey=2;exp=3`])).toEqual({ token: JWE, exp: 3, rekey: 2 });
    expect(serializeSession(JWE)).toBe(JWE);
    expect(serializeSession(JWE, { exp: 1790000600, rekey: 1790000480 })).toBe(`${JWE};exp=1790000600;rekey=1790000480`);
  });

  it.each([
    ['parameters', [`${JWE};exp=1`]],
    ['a String', [`"${JWE}"`]],
    ['a Token that is not a JWE', ['abc.def']],
    ['a JWE of four segments', ['eyJh.aXZ.Y2l.dGFn']],
    ['two field lines', [JWE, JWE]],
    ['an empty field', ['']],
    ['no field line', []],
    ['more than 4 KiB', [`${JWE.slice(0, -4)}${'A'.repeat(4100)}`]],
  ])('refuses in a request %s with session_invalid', (_name, lines) => {
    expect(syncCodeOf(() => parseRequestSession(lines))).toBe('session_invalid');
  });

  it.each([
    ['no parameters', [JWE]],
    ['exp only', [`${JWE};exp=5`]],
    ['a non-Integer exp', [`${JWE};exp="5";rekey=4`]],
    ['a Decimal rekey', [`${JWE};exp=5;rekey=4.5`]],
    ['a negative exp', [`${JWE};exp=-5;rekey=4`]],
    ['an unknown parameter', [`${JWE};exp=5;rekey=4;x=1`]],
  ])('refuses in a response %s with session_invalid', (_name, lines) => {
    expect(syncCodeOf(() => parseResponseSession(lines))).toBe('session_invalid');
  });

  it('serialises only a compact JWE and integer times within the bound', () => {
    expect(syncCodeOf(() => serializeSession('abc'))).toBe('TypeError');
    expect(syncCodeOf(() => serializeSession(JWE, { exp: 1.5, rekey: 1 }))).toBe('TypeError');
    expect(syncCodeOf(() => serializeSession(`${JWE}${'A'.repeat(4100)}`))).toBe('TypeError');
  });
});
