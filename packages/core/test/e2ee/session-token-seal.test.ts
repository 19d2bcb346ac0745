// Session tokens are sealed on Node with one synchronous AES-256-GCM (lib/crypto.ts) and elsewhere by
// jose on WebCrypto. Both must make the same compact JWE: with the IV fixed, the two paths give the
// same token byte for byte, jose opens the node-made token, and the core reads what either made.
import { randomBytes } from 'node:crypto';
import { compactDecrypt } from 'jose';
import { createSessionTokens } from '../../src/e2ee/session-token';
import { StaticSessionKeyStore } from '../../src/e2ee/session-keys';
import { useWebCrypto } from '../../src/lib/crypto';

const STEK = { kty: 'oct' as const, kid: 'stek-seal-test', k: randomBytes(32).toString('base64url') };
const AUDIENCE = 'https://api.example';
const caller = { iss: 'https://op.example', sub: 'alice', jkt: new Uint8Array(randomBytes(32)) };
const NOW = 1_790_000_000;

function tokens() {
  return createSessionTokens({ keys: new StaticSessionKeyStore({ keys: [STEK] }), now: () => NOW });
}
const input = { sid: new Uint8Array(randomBytes(16)), rk: new Uint8Array(randomBytes(32)), suite: 'x25519' as const, epoch: 0, audience: AUDIENCE, caller };

afterEach(() => useWebCrypto(false));

describe('session token sealing on both crypto paths', () => {
  it('makes the same token on node:crypto and through jose for the same IV', async () => {
    for (let i = 0; i < 8; i++) {
      const iv = new Uint8Array(randomBytes(12));
      const node = await tokens().issue(input, { iv });
      useWebCrypto(true);
      const web = await tokens().issue(input, { iv });
      useWebCrypto(false);
      expect(node.token).toBe(web.token);
      expect(node.exp).toBe(web.exp);
    }
  });

  it('a node-made token opens with jose and with the core on either path; fresh IVs differ', async () => {
    const a = await tokens().issue(input);
    const b = await tokens().issue(input);
    expect(a.token.split('.')[2]).not.toBe(b.token.split('.')[2]);
    const { plaintext, protectedHeader } = await compactDecrypt(a.token, Buffer.from(STEK.k, 'base64url'));
    expect(protectedHeader).toEqual({ alg: 'dir', enc: 'A256GCM', kid: STEK.kid, typ: 'oidc2-session+jwt' });
    expect(JSON.parse(Buffer.from(plaintext).toString('utf8'))).toMatchObject({ v: 1, suite: 'x25519', ep: 0, aud: AUDIENCE, sub: 'alice' });
    expect((await tokens().verify(a.token, AUDIENCE)).rk).toEqual(input.rk);
    useWebCrypto(true);
    expect((await tokens().verify(a.token, AUDIENCE)).sid).toEqual(input.sid);
    const web = await tokens().issue(input);
    useWebCrypto(false);
    expect((await tokens().verify(web.token, AUDIENCE)).rk).toEqual(input.rk);
  });
});
