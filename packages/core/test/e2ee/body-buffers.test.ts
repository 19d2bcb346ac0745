// On Node, bodies are encrypted and decrypted into outputs that are not zeroed first
// (lib/crypto.ts outputBytes). Nothing of such an output may be left unwritten where a caller can
// reach it: the encoded body is byte for byte the WebCrypto path's (which writes into zeroed
// arrays), and the memory behind a decrypted body past its plaintext is zeros.
import { randomBytes } from 'node:crypto';
import { decryptBody, decryptBodyStream, encryptBody, encryptBodyStream, E2EE_RECORD_SIZE } from '../../src/e2ee/aes128gcm';
import { useWebCrypto } from '../../src/lib/crypto';

const IKM = new Uint8Array(randomBytes(32));
const SALT = new Uint8Array(randomBytes(16));
const PER = E2EE_RECORD_SIZE - 17;
const SIZES = [0, 1, PER - 1, PER, PER + 1, 3 * PER, 3 * PER + 5, 70_000];

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(bytes.length, at + size));
}
async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return parts;
}

afterEach(() => useWebCrypto(false));

describe.each(SIZES)('%i octets', (size) => {
  const plain = new Uint8Array(randomBytes(size));

  it('the node:crypto path encodes exactly what the WebCrypto path does, buffered and streamed', async () => {
    const node = await encryptBody(IKM, plain, { salt: SALT });
    const nodeStream = Buffer.concat(await collect(encryptBodyStream(IKM, chunked(plain, 65_536), { salt: SALT })));
    useWebCrypto(true);
    const web = await encryptBody(IKM, plain, { salt: SALT });
    expect(Buffer.from(node).equals(Buffer.from(web))).toBe(true);
    expect(nodeStream.equals(Buffer.from(web))).toBe(true);
  });

  it('behind a decrypted body there are only zeros', async () => {
    const body = await encryptBody(IKM, plain, { salt: SALT });
    const out = await decryptBody(IKM, body);
    expect(Buffer.from(out).equals(Buffer.from(plain))).toBe(true);
    const behind = new Uint8Array(out.buffer, out.byteOffset + out.length, out.buffer.byteLength - out.byteOffset - out.length);
    expect(behind.every((b) => b === 0)).toBe(true);
    const parts = await collect(decryptBodyStream(IKM, chunked(body, 65_536)));
    expect(Buffer.concat(parts).equals(Buffer.from(plain))).toBe(true);
  });
});
