// Streamed end-to-end encrypted bodies, the caller's side (docs/protocol.md section 7.7): a response whose
// signed head carries `Content-Encoding: aes128gcm` and no `Content-Digest` is decrypted record by
// record as it arrives, and a request body given as a stream is encrypted record by record as it is
// sent. Web Streams only, so that Node and browsers run the same code; at most one record and the
// chunk being read are held at a time.
import { Oidc2Error, fieldLines, type Fields } from '@oidc2/core';
import { decryptBodyStream, encryptBodyStream } from '@oidc2/core/adapter';

/** Whether a response head announces a streamed encrypted body: `aes128gcm` its only coding, no `Content-Digest`. */
export function streamsEncryptedBody(headers: Fields): boolean {
  const coding = fieldLines(headers, 'content-encoding');
  return coding !== undefined && coding.join(',').trim().toLowerCase() === 'aes128gcm' && fieldLines(headers, 'content-digest') === undefined;
}

/** Whether `body` is a WHATWG `ReadableStream` (checked by shape: Node and browsers each have their own class). */
export function isReadableStream(body: unknown): body is ReadableStream<Uint8Array> {
  return typeof body === 'object' && body !== null && typeof (body as ReadableStream).getReader === 'function' && typeof (body as ReadableStream).cancel === 'function';
}

/** The chunks of a `ReadableStream` (whose async iteration not every browser has); stopped early, it cancels the stream. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!ended) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** A `ReadableStream` pulled from `source` one chunk at a time (no read-ahead), whose failures pass through `failure`. */
function pulled(source: AsyncGenerator<Uint8Array, void, undefined>, failure: (error: unknown) => unknown): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<Uint8Array, void>;
        try {
          next = await source.next();
        } catch (error) {
          controller.error(failure(error));
          return;
        }
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await source.return().catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/** An abort of the caller's own signal stays what it is; anything else that stops a streamed body is a failed decryption. */
function isAbort(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/**
 * The plaintext of a streamed encrypted response body, decrypted record by record as the caller
 * reads. It errors with `e2ee_response_decrypt_failed` (never ends quietly) when the body ends before
 * its final record, at a record boundary or inside a record, goes on after it, or has a record
 * changed, dropped, repeated or reordered; the connection failing mid-body is the same error, since
 * the caller then has no final record either.
 */
export function decryptResponseStream(key: Uint8Array, body: ReadableStream<Uint8Array> | null): ReadableStream<Uint8Array> {
  const ciphertext = body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  return pulled(decryptBodyStream(key, chunksOf(ciphertext)), (error) =>
    isAbort(error) ? error : new Oidc2Error('e2ee_response_decrypt_failed', 'the streamed response body could not be decrypted', { cause: error }),
  );
}

/**
 * A request body given as a stream, encrypted record by record as it is sent (a record goes out when
 * full, or, the source ended, as the final one). The source's own failure passes through unchanged.
 */
export function encryptRequestStream(key: Uint8Array, body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return pulled(encryptBodyStream(key, chunksOf(body)), (error) => error);
}
