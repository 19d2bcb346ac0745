// Invalid key shares in the style of Project Wycheproof: every one is `e2ee_key_share_invalid`,
// whether it fails at deserialisation (length, encoding, off the curve) or at setup (an X25519 point
// of small order, whose DH result is all zero, RFC 9180 section 7.1.4), on both the service side
// (SetupBaseS/SetupPSKS with the caller's share) and the caller side (SetupBaseR with the service's enc).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hpkeSuite } from '../src/e2ee/hpke';

const V = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'e2ee', 'key-shares-invalid.json'), 'utf8'));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const INFO = new TextEncoder().encode('oidc2-e2ee-v1 handshake\0');
const PSK = new Uint8Array(32).fill(3);
const PSK_ID = new TextEncoder().encode('oidc2-e2ee-v1 psk');
type Case = { case: string; share: string };
const rows = (cases: Case[]): [string, string][] => cases.map((c) => [c.case, c.share]);
const invalid = { code: 'e2ee_key_share_invalid', status: 400 };

describe('x25519 key shares', () => {
  const suite = hpkeSuite('x25519');

  it.each(rows(V.x25519.wrongLength))('%s: refused at deserialisation and as enc', async (_c, share) => {
    await expect(suite.deserializePublicKey(hex(share))).rejects.toMatchObject(invalid);
    await expect(suite.setupBaseR(hex(share), await suite.generateKeyPair(), INFO)).rejects.toMatchObject(invalid);
  });

  it.each(rows(V.x25519.smallOrder))('%s: the all-zero DH result is refused on both sides, Base and PSK', async (_c, share) => {
    const pk = await suite.deserializePublicKey(hex(share));
    await expect(suite.setupBaseS(pk, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKS(pk, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
    const kp = await suite.generateKeyPair();
    await expect(suite.setupBaseR(hex(share), kp, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKR(hex(share), kp, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
  });

  it('the error names no key material', async () => {
    const pk = await suite.deserializePublicKey(hex(V.x25519.smallOrder[2].share));
    const error = await suite.setupBaseS(pk, INFO).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject(invalid);
    expect(error!.message).not.toMatch(/[0-9a-f]{16}/i);
  });
});

describe('p256 key shares', () => {
  const suite = hpkeSuite('p256');

  it('the valid point of the fixture is accepted (the invalid ones are derived from it)', async () => {
    const pk = await suite.deserializePublicKey(hex(V.p256.valid));
    const { enc } = await suite.setupBaseS(pk, INFO);
    expect(enc).toHaveLength(65);
    expect(enc[0]).toBe(0x04);
  });

  it.each(rows(V.p256.invalid))('%s: refused at deserialisation and as enc', async (_c, share) => {
    await expect(suite.deserializePublicKey(hex(share))).rejects.toMatchObject(invalid);
    const kp = await suite.generateKeyPair();
    await expect(suite.setupBaseR(hex(share), kp, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKR(hex(share), kp, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
  });

  it('a share of the other suite is refused by length', async () => {
    const x = await hpkeSuite('x25519').generateKeyPair();
    const bytes = await hpkeSuite('x25519').serializePublicKey(x.publicKey);
    await expect(suite.deserializePublicKey(bytes)).rejects.toMatchObject(invalid);
  });
});
