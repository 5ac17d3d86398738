/**
 * The answers Node's HTTP server gives by itself, before express sees a request, made into the
 * gateway's JSON `{code, message}` from the one registry: a request line or headers over the size
 * limit (431), a request not sent in time (408), malformed HTTP (400), an `Expect` other than
 * 100-continue (417), and CONNECT (404). Node's own answers to these have no body at all.
 *
 * `Expect: 100-continue` is honoured late: Node would send `100 Continue` before any route ran, so
 * a client without a key, or with a body over the limit, uploaded the whole body to be refused.
 * Here the interim answer goes out only when a route is about to read the body
 * (`continueIfExpected`), after authentication, rate limits and the body's declared size and type
 * passed; a request refused before that gets its final answer without ever being asked to send.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TeegateError } from '../../attestation/errors';

/** The body and headers of every answer here; the connection is closed after it. */
function errorAnswer(err: TeegateError): { body: string; headers: Record<string, string | number> } {
  const body = JSON.stringify(err.toJSON());
  return {
    body,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store', Connection: 'close' },
  };
}

/** A whole HTTP/1.1 answer, for a socket that has no response object. */
function rawAnswer(err: TeegateError): string {
  const { body, headers } = errorAnswer(err);
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`;
}

function clientErrorOf(err: NodeJS.ErrnoException): TeegateError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new TeegateError('REQUEST_HEADERS_TOO_LARGE', 'the request line and headers are larger than the server accepts (16 KiB)');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new TeegateError('REQUEST_TIMEOUT', 'the request was not received in time');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new TeegateError('BODY_TOO_LARGE', 'the chunk extensions are too large');
    default:
      return new TeegateError('REQUEST_INVALID', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
  }
}

/** Ends the connection with `err` as JSON if nothing was written on it yet, else just closes it. */
function endWith(socket: Duplex & { bytesWritten?: number }, err: TeegateError): void {
  if (!socket.writable || (socket.bytesWritten ?? 0) > 0) {
    socket.destroy();
    return;
  }
  socket.end(rawAnswer(err));
  // A client that never reads the answer does not keep the socket.
  setTimeout(() => socket.destroy(), 2_000).unref();
}

/** Requests whose client waits for `100 Continue` before it sends the body. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** Sends `100 Continue` if `req`'s client waits for it; at most once. Call just before reading the body. */
export function continueIfExpected(req: IncomingMessage, res: ServerResponse): void {
  if (!awaitingContinue.delete(req) || res.headersSent) return;
  res.writeContinue();
}

export function answerNodeErrors(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    server.emit('request', req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET') return void socket.destroy();
    endWith(socket, clientErrorOf(err));
  });
  server.on('checkExpectation', (req, res) => {
    const err = new TeegateError('EXPECTATION_UNSUPPORTED', `Expect: ${String(req.headers.expect).slice(0, 64)} is not supported (only 100-continue)`);
    const { body, headers } = errorAnswer(err);
    res.writeHead(err.status, headers).end(body);
  });
  server.on('connect', (_req, socket: Duplex) => endWith(socket, new TeegateError('ROUTE_NOT_FOUND', 'CONNECT is not served here')));
}

/**
 * How often Node checks its requests against `requestTimeout` and `headersTimeout` (by default
 * every 30 s, so a 1 s timeout took up to 31 s): a quarter of the timeout, between 100 ms and 1 s.
 */
export function connectionsCheckingInterval(requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(requestTimeoutMs / 4)));
}
