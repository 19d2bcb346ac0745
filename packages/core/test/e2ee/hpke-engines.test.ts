// The facade's two HPKE engines against each other: node:crypto (`hpke-node.ts`, what Node runs for
// x25519 and p256) and the `hpke` package (what browsers run). For random inputs they must give the
// same `enc` and the same exports from the same ephemeral and recipient keys, interoperate in both
// directions from fresh keys, and refuse the same invalid keys with the same code. RFC 9180's own
// vectors run on both engines in rfc9180.test.ts.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2EE_SUITES, hpkeSuite, testing, type E2eeSuiteName, type HpkeEngineName, type HpkeExporter, type HpkeSuite } from '../../src/e2ee/hpke';
import { useWebCrypto } from '../../src/lib/crypto';

const INVALID = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'e2ee', 'key-shares-invalid.json'), 'utf8'));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const invalid = { code: 'e2ee_key_share_invalid', status: 400 };
const SUITES = ['x25519', 'p256'] as const;
const ROUNDS = 24;

interface Inputs {
  info: Uint8Array;
  psk?: { psk: Uint8Array; pskId: Uint8Array };
  contexts: { context: Uint8Array; length: number }[];
}

/** Random setup inputs within the facade's bounds, PSK mode on every other round. */
function randomInputs(round: number): Inputs {
  return {
    info: bytes(randomInt(0, 120)),
    ...(round % 2 === 1 ? { psk: { psk: bytes(randomInt(32, 80)), pskId: bytes(randomInt(1, 40)) } } : {}),
    // Lengths past 32 take HKDF-Expand through more than one block.
    contexts: [{ context: new Uint8Array(0), length: randomInt(1, 100) }, { context: bytes(randomInt(1, 64)), length: 32 }, { context: bytes(16), length: 16 }],
  };
}

const send = (suite: HpkeSuite, pk: Awaited<ReturnType<HpkeSuite['deserializePublicKey']>>, i: Inputs) =>
  i.psk ? suite.setupPSKS(pk, i.info, i.psk.psk, i.psk.pskId) : suite.setupBaseS(pk, i.info);
const receive = (suite: HpkeSuite, enc: Uint8Array, kp: Awaited<ReturnType<HpkeSuite['generateKeyPair']>>, i: Inputs) =>
  i.psk ? suite.setupPSKR(enc, kp, i.info, i.psk.psk, i.psk.pskId) : suite.setupBaseR(enc, kp, i.info);
const exportsOf = async (exporter: HpkeExporter, i: Inputs): Promise<string[]> => Promise.all(i.contexts.map(async (c) => toHex(await exporter.export(c.context, c.length))));

describe.each(SUITES)('%s: node:crypto and hpke engines', (name: E2eeSuiteName) => {
  const engines = { node: (o: { ikmE?: Uint8Array } = {}) => testing.suite(name, { ...o, engine: 'node' }), hpke: (o: { ikmE?: Uint8Array } = {}) => testing.suite(name, { ...o, engine: 'hpke' }) };

  it('each engine makes keys of its own kind', async () => {
    expect((await engines.node().generateKeyPair()).node).toBeDefined();
    expect((await engines.hpke().generateKeyPair()).pair).toBeDefined();
  });

  it(`same ephemeral and recipient keys: the same keys, enc and exports (${ROUNDS} random rounds, Base and PSK)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const ikmE = bytes(32 + randomInt(0, 32));
      const ikmR = bytes(32 + randomInt(0, 32));
      const inputs = randomInputs(round);
      const results = await Promise.all(
        (['node', 'hpke'] as const).map(async (engine) => {
          const suite = engines[engine]({ ikmE });
          const kpR = await suite.deriveKeyPair(ikmR);
          const pkRm = await suite.serializePublicKey(kpR.publicKey);
          const sent = await send(suite, await suite.deserializePublicKey(pkRm), inputs);
          const received = await receive(suite, sent.enc, kpR, inputs);
          return { pkRm: toHex(pkRm), skRm: toHex(await testing.serializePrivateKey(name, kpR)), enc: toHex(sent.enc), sent: await exportsOf(sent.exporter, inputs), received: await exportsOf(received, inputs) };
        }),
      );
      const [node, hpke] = results;
      expect(node!.sent).toEqual(node!.received);
      expect(node).toEqual(hpke);
      expect(node!.enc).toHaveLength(2 * E2EE_SUITES[name].encLength);
    }
  });

  it.each([
    ['node', 'hpke'],
    ['hpke', 'node'],
  ] as const)(`fresh keys, %s sender and %s recipient: equal exports (${ROUNDS} random rounds)`, async (from, to) => {
    for (let round = 0; round < ROUNDS; round++) {
      const inputs = randomInputs(round);
      const sender = engines[from]();
      const recipient = engines[to]();
      const kpR = await recipient.generateKeyPair();
      const sent = await send(sender, await sender.deserializePublicKey(await recipient.serializePublicKey(kpR.publicKey)), inputs);
      const received = await receive(recipient, sent.enc, kpR, inputs);
      expect(await exportsOf(received, inputs)).toEqual(await exportsOf(sent.exporter, inputs));
      // Another info (or another PSK) gives other exports on the recipient's engine too.
      const changed = { ...inputs, info: Uint8Array.of(...inputs.info, 0) };
      expect(await exportsOf(await receive(recipient, sent.enc, kpR, changed), changed)).not.toEqual(await exportsOf(sent.exporter, inputs));
    }
  });

  // Refusals: the same invalid keys fail on both engines, with the same code, at the same step.
  const fixtures: [string, string][] =
    name === 'x25519'
      ? [...INVALID.x25519.wrongLength, ...INVALID.x25519.smallOrder].map((c: { case: string; share: string }) => [c.case, c.share])
      : INVALID.p256.invalid.map((c: { case: string; share: string }) => [c.case, c.share]);

  it.each(fixtures)('%s: refused alike by both engines', async (_case, share) => {
    const verdicts: string[] = [];
    for (const engine of ['node', 'hpke'] as const) {
      const suite = engines[engine]();
      const kp = await suite.generateKeyPair();
      const step = async (): Promise<string> => {
        let pk;
        try {
          pk = await suite.deserializePublicKey(hex(share));
        } catch (error) {
          expect(error).toMatchObject(invalid);
          return 'deserialize';
        }
        await expect(suite.setupBaseS(pk, new Uint8Array(0))).rejects.toMatchObject(invalid);
        await expect(suite.setupPSKS(pk, new Uint8Array(0), new Uint8Array(32), Uint8Array.of(1))).rejects.toMatchObject(invalid);
        return 'setup';
      };
      verdicts.push(await step());
      // As the service's enc, on the caller's side, whatever the step of the share.
      await expect(suite.setupBaseR(hex(share), kp, new Uint8Array(0))).rejects.toMatchObject(invalid);
      await expect(suite.setupPSKR(hex(share), kp, new Uint8Array(0), new Uint8Array(32), Uint8Array.of(1))).rejects.toMatchObject(invalid);
    }
    expect(verdicts[0]).toBe(verdicts[1]);
  });

  it(`random shares: both engines accept or refuse each alike (${ROUNDS * 4} shares)`, async () => {
    const size = E2EE_SUITES[name].publicKeyLength;
    for (let round = 0; round < ROUNDS * 4; round++) {
      // P-256: a random x with the uncompressed prefix is on the curve about half the time only for a
      // matching y; so also take valid points with one flipped bit in y, nearly always off the curve.
      let share = bytes(size);
      if (name === 'p256') {
        if (round % 2 === 0) share[0] = 0x04;
        else {
          share = await engines.node().serializePublicKey((await engines.node().generateKeyPair()).publicKey);
          share[64]! ^= 1 << randomInt(0, 8);
        }
      }
      const verdict = async (engine: HpkeEngineName): Promise<string> =>
        engines[engine]()
          .deserializePublicKey(share)
          .then(
            () => 'accepted',
            (error: { code?: string }) => String(error.code),
          );
      const [node, hpke] = [await verdict('node'), await verdict('hpke')];
      expect(`${toHex(share)} ${node}`).toBe(`${toHex(share)} ${hpke}`);
      if (name === 'p256' && round % 2 === 1) expect(node).toBe('e2ee_key_share_invalid');
    }
  });
});

describe('which engine the production suites use', () => {
  afterEach(() => {
    useWebCrypto(false);
    testing.engine(undefined);
  });

  it.each(SUITES)('%s: node:crypto on the node:crypto path, hpke on the WebCrypto path or when forced', async (name) => {
    expect((await hpkeSuite(name).generateKeyPair()).node).toBeDefined();
    useWebCrypto(true);
    expect((await hpkeSuite(name).generateKeyPair()).pair).toBeDefined();
    useWebCrypto(false);
    testing.engine('hpke');
    expect((await hpkeSuite(name).generateKeyPair()).pair).toBeDefined();
  });

  it('xwing runs on the hpke engine on either path', async () => {
    expect((await hpkeSuite('xwing').generateKeyPair()).pair).toBeDefined();
    testing.engine('node');
    expect((await hpkeSuite('xwing').generateKeyPair()).pair).toBeDefined();
  });

  it.each(SUITES)('%s: a key pair made before the path is switched completes its exchange on its own engine', async (name) => {
    const suite = hpkeSuite(name);
    const nodePair = await suite.generateKeyPair();
    const share = await suite.serializePublicKey(nodePair.publicKey);
    useWebCrypto(true);
    const info = Uint8Array.of(1, 2, 3);
    const sent = await suite.setupBaseS(await suite.deserializePublicKey(share), info);
    const received = await suite.setupBaseR(sent.enc, nodePair, info);
    expect(await received.export(new Uint8Array(0), 32)).toEqual(await sent.exporter.export(new Uint8Array(0), 32));
  });
});
