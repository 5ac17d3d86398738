/**
 * Error answers written straight to a connection, for teegate's two HTTP servers (the enclave's and
 * the gateway's) where Node's HTTP server would answer by itself before any route runs: malformed
 * HTTP, a request line and headers over the limit, a request not sent in time. Node's own answers
 * have no body; these are JSON `{code, message}` from the one registry like every other answer,
 * and the connection is closed after them. One entry point, answerNodeErrors, registers them on a
 * server.
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { utf8 } from './bytes';
import { TeegateError } from './errors';

/** The headers of every such answer (also used where a response object exists). */
function errorAnswer(err: TeegateError): { body: string; headers: Record<string, string | number> } {
  const body = JSON.stringify(err.toJSON());
  return {
    body,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': utf8(body).length, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store', Connection: 'close' },
  };
}

/** A whole HTTP/1.1 answer, with Node's reason phrase for its status. */
function rawErrorAnswer(err: TeegateError): string {
  const { body, headers } = errorAnswer(err);
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`;
}

/** The error of a request Node's HTTP parser or its timeouts refused (its `clientError` event). */
function clientErrorOf(code: string | undefined): TeegateError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new TeegateError('REQUEST_HEADERS_TOO_LARGE', 'the request line and headers are larger than the server accepts (16 KiB)');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new TeegateError('REQUEST_TIMEOUT', 'the request was not received in time');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new TeegateError('BODY_TOO_LARGE', 'the chunk extensions are too large');
    default:
      return new TeegateError('REQUEST_INVALID', `the request is not valid HTTP/1.1 (${code ?? 'parse error'})`);
  }
}

/** What the answers need of a connection (a node:net Socket has it). */
interface AnswerableConnection {
  readonly writable: boolean;
  /**
   * The answer in progress on it, which Node's HTTP server keeps there (as its own default
   * `clientError` handler reads it). An earlier answer on a kept-alive connection is not in progress.
   */
  readonly _httpMessage?: { readonly headersSent?: boolean } | null;
  end(data: string): unknown;
  destroy(): unknown;
}

/**
 * Ends the connection with `err` as JSON unless an answer in progress already sent its head, then
 * just closes it (half an answer followed by another would be worse than none).
 */
function endConnectionWith(socket: AnswerableConnection, err: TeegateError): void {
  if (!socket.writable || socket._httpMessage?.headersSent === true) {
    socket.destroy();
    return;
  }
  socket.end(rawErrorAnswer(err));
  // A client that never reads the answer does not keep the connection.
  const timer = setTimeout(() => socket.destroy(), 2_000) as { unref?: () => void };
  timer.unref?.();
}

/** What answerExpectationUnsupported needs of a response (a node:http ServerResponse has it). */
interface AnswerableResponse {
  writeHead(status: number, headers: Record<string, string | number>): { end(body: string): unknown };
}

/** Node's `checkExpectation` event: an `Expect` other than 100-continue, 417 in JSON. */
function answerExpectationUnsupported(req: { readonly headers: { readonly expect?: string } }, res: AnswerableResponse): void {
  const err = new TeegateError('EXPECTATION_UNSUPPORTED', `Expect: ${String(req.headers.expect).slice(0, 64)} is not supported (only 100-continue)`);
  const { body, headers } = errorAnswer(err);
  res.writeHead(err.status, headers).end(body);
}

/** Requests whose client waits for `100 Continue` before it sends the body (answerNodeErrors). */
const awaitingContinue = new WeakSet<object>();

/** Sends `100 Continue` if `req`'s client waits for it (answerNodeErrors); at most once. Call just before reading the body. */
export function continueIfExpected(req: object, res: { readonly headersSent: boolean; writeContinue(): void }): void {
  if (!awaitingContinue.delete(req) || res.headersSent) return;
  res.writeContinue();
}

/** Node's `connect` event: neither server is a proxy, so CONNECT is 404 in JSON. */
function refuseConnect(socket: AnswerableConnection): void {
  endConnectionWith(socket, new TeegateError('ROUTE_NOT_FOUND', 'CONNECT is not served here'));
}

/** What requestFormRefusal reads of a request (a node:http IncomingMessage has it). */
export interface RequestHead {
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly headers: { readonly host?: string; readonly 'transfer-encoding'?: string };
}

/**
 * The refusal of a request whose head Node's parser lets through but neither server reads, or
 * undefined: an HTTP/1.1 request without Host (RFC 9112 section 3.2; the servers leave this check
 * to here, `requireHostHeader: false`, since Node's own refusal has no body), and a
 * Transfer-Encoding other than `chunked` alone (Node reads `gzip, chunked` as chunked and hands on
 * the still-coded bytes as the body; RFC 9112 section 6.1 asks for 501). The connection is to be
 * closed after the answer.
 */
export function requestFormRefusal(req: RequestHead): TeegateError | undefined {
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
    return new TeegateError('REQUEST_INVALID', 'an HTTP/1.1 request must have a Host header (RFC 9112 section 3.2)');
  }
  const coding = req.headers['transfer-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
    return new TeegateError('TRANSFER_CODING_UNSUPPORTED', `Transfer-Encoding: ${coding.slice(0, 64)} is not supported (only chunked)`);
  }
  return undefined;
}

/** The whole `clientError` handler: a connection reset is closed, anything else answered. */
function answerClientError(err: { readonly code?: string }, socket: AnswerableConnection): void {
  if (err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  endConnectionWith(socket, clientErrorOf(err.code));
}

/**
 * How often Node checks its requests against `requestTimeout` and `headersTimeout` (by default
 * every 30 s, so a 1 s timeout took up to 31 s): a quarter of the timeout, between 100 ms and 1 s.
 */
export function connectionsCheckingInterval(requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(requestTimeoutMs / 4)));
}

/**
 * The answers Node's HTTP server gives by itself, before any route runs, made JSON `{code, message}`
 * from the one registry, for both servers: malformed HTTP (400), a request line or headers over the
 * size limit (431), a request not sent in time (408), an `Expect` other than 100-continue (417),
 * CONNECT (404); Node's own answers to these have no body.
 *
 * And `Expect: 100-continue` honoured late: Node would send `100 Continue` before any route ran, so
 * a client whose request is refused anyway (no key, a body over the limit, a busy enclave, a wrong
 * media type) would upload the whole body to be refused. Here the request is served as any other
 * and the interim answer goes out only when a route is about to read the body
 * (continueIfExpected); a request refused before that gets its final answer without ever being
 * asked to send.
 */
export function answerNodeErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
  server.on('checkContinue', (req, res) => {
    awaitingContinue.add(req);
    server.emit('request', req, res);
  });
  server.on('checkExpectation', answerExpectationUnsupported);
  server.on('connect', (_req, socket: Duplex) => refuseConnect(socket));
}
