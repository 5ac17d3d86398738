/**
 * The answers Node's HTTP server gives by itself, before express sees a request, made into the
 * gateway's JSON `{code, message}` from the one registry: a request line or headers over the size
 * limit (431), a request not sent in time (408), malformed HTTP (400), an `Expect` other than
 * 100-continue (417), and CONNECT (404). Node's own answers to these have no body at all. (An
 * HTTP/1.1 request without Host is refused by the admission step, gateway/http/exchange.ts.)
 *
 * `Expect: 100-continue` is honoured late: Node would send `100 Continue` before any route ran, so
 * a client without a key, or with a body over the limit, uploaded the whole body to be refused.
 * Here the interim answer goes out only when a route is about to read the body
 * (`continueIfExpected`), after authentication, rate limits and the body's declared size and type
 * passed; a request refused before that gets its final answer without ever being asked to send.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { answerClientError, answerExpectationUnsupported, refuseConnect } from '../../attestation/http-error-answer';

/** Requests whose client waits for `100 Continue` before it sends the body. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** Sends `100 Continue` if `req`'s client waits for it; at most once. Call just before reading the body. */
export function continueIfExpected(req: IncomingMessage, res: ServerResponse): void {
  if (!awaitingContinue.delete(req) || res.headersSent) return;
  res.writeContinue();
}

export function answerNodeErrors(server: Server): void {
  const reasonOf = (status: number) => STATUS_CODES[status];
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, reasonOf));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    server.emit('request', req, res);
  });
  server.on('checkExpectation', answerExpectationUnsupported);
  server.on('connect', (_req, socket: Duplex) => refuseConnect(socket, reasonOf));
}
