/**
 * Reads an HTTP answer's body as it streams in, up to a limit: whoever answers (a gateway, a log
 * server) is untrusted, and a body checked only once fully read could exhaust memory first (a
 * chunked answer declares no length, and a declared one can lie). Browser-safe (WHATWG streams).
 */
import { concatByteList } from './bytes';

/** What the readers need of a fetch answer: its body stream or, from a test's stub, arrayBuffer. */
export interface BodySource {
  readonly body?: ReadableStream<Uint8Array> | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** The body, or undefined once it passes `limit` bytes (the stream is then cancelled, not drained). */
export async function readLimitedBody(res: BodySource, limit: number): Promise<Uint8Array | undefined> {
  if (!res.body) {
    const whole = new Uint8Array(await res.arrayBuffer());
    return whole.length > limit ? undefined : whole;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return concatByteList(chunks);
}
