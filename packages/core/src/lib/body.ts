// The one bounded body reader: every body this project reads whole (requests for Content-Digest,
// responses for signing, fetched key sets and issuer answers) goes through `readBounded`.

/** A message body: whole bytes, or a stream of chunks read once. */
export type Body = Uint8Array | AsyncIterable<Uint8Array>;

/** Concatenates chunks into one array (the only chunk itself when there is one). */
export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const size = total ?? chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * What {@link readBounded} found when the body was larger than the bound: the rest of the stream
 * from its first byte (iterate `rest` to continue, or `cancel()` to stop reading).
 */
export interface Overflow {
  /**
   * The whole body from its first byte: the chunks read so far, then the rest of the stream. Each
   * chunk read ahead is let go as soon as it is handed on, so a long stream does not keep the first
   * `maxBytes` referenced while it runs.
   */
  readonly rest: AsyncIterable<Uint8Array>;
  cancel(): Promise<void>;
}

/** Hands on the chunks read ahead, dropping each from `read` as it goes, then the rest of `iterator`. */
async function* drain(read: Uint8Array[], iterator: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (let chunk = read.shift(); chunk !== undefined; chunk = read.shift()) yield chunk;
  for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
}

/**
 * Reads `body` whole, up to `maxBytes`. Past the bound it stops and returns an {@link Overflow}
 * instead, so the caller decides whether to refuse or to pass the body on unread.
 */
export async function readBounded(body: Body, maxBytes: number): Promise<Uint8Array | Overflow> {
  if (body instanceof Uint8Array) {
    if (body.byteLength <= maxBytes) return body;
    const read = [body];
    return { rest: drain(read, (async function* () {})()), cancel: async () => void read.splice(0) };
  }
  const iterator = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    chunks.push(next.value);
    if ((size += next.value.byteLength) > maxBytes) {
      return {
        rest: drain(chunks, iterator),
        cancel: async () => {
          chunks.splice(0);
          await iterator.return?.();
        },
      };
    }
  }
  return concatBytes(chunks, size);
}

/** Reads `body` whole, or stops reading and throws `tooLarge()` past `maxBytes`. */
export async function readBoundedOrThrow(body: Body, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const read = await readBounded(body, maxBytes);
  if (read instanceof Uint8Array) return read;
  await read.cancel().catch(() => undefined);
  throw tooLarge();
}

/** The chunks of a WHATWG `ReadableStream` (whose async iteration not every browser has). */
async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

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
  return readBoundedOrThrow(streamChunks(body), maxBytes, tooLarge);
}
