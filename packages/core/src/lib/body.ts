// Reads a fetch Response body once, with a bound, without trusting its declared size.

/**
 * Reads the whole body of a fetch `Response`, or cancels it and throws `tooLarge()` as soon as it
 * exceeds `maxBytes` (by `Content-Length` or by the bytes actually received).
 */
export async function readBoundedBody(response: Response, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const body = response.body;
  if (!body) return new Uint8Array(0);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await body.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
