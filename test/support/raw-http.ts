/** A hand-written HTTP/1.1 exchange over a raw socket, for what fetch would never send. */
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** The status line and headers, lower-cased. */
  headers: string;
  body: string;
  /** Milliseconds from the first byte sent to the connection's close. */
  closedAfterMs: number;
}

/**
 * A request's text with `Host` and `Connection: close`, then the `headers` lines; a `body` comes
 * with its JSON Content-Type and Content-Length.
 */
export function rawRequest(method: string, target: string, headers: readonly string[] = [], body: string | null = null): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: gateway', ...headers, 'Connection: close'];
  if (body !== null) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

/** Sends `parts` to `url`'s host and port (waiting `gapMs` before each after the first) and reads until the server closes. */
export async function rawExchange(url: string, parts: readonly string[], gapMs = 0): Promise<RawAnswer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(Number(port), '127.0.0.1', () => {
      void (async () => {
        for (const [i, part] of parts.entries()) {
          if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
          if (socket.destroyed) return;
          socket.write(part);
        }
      })();
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the answer is fine: the answer is what counts
    socket.on('close', () => {
      try {
        resolve(parseRawAnswer(Buffer.concat(chunks).toString('utf8'), started));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** The answer in `text` (all a connection received), for an exchange that began at `started` and just closed. */
export function parseRawAnswer(text: string, started: number): RawAnswer {
  const split = text.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  if (!status) throw new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`);
  return { status: Number(status[1]), headers: text.slice(0, split).toLowerCase(), body: text.slice(split + 4), closedAfterMs: Date.now() - started };
}
