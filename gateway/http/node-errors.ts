/**
 * The answers Node's HTTP server gives by itself, before express sees a request, made into the
 * gateway's JSON `{code, message}` from the one registry: a request line or headers over the size
 * limit (431), a request not sent in time (408), malformed HTTP (400), an `Expect` other than
 * 100-continue (417), and CONNECT (404). Node's own answers to these have no body at all. (An
 * HTTP/1.1 request without Host is refused by the admission step, gateway/http/exchange.ts.)
 *
 * `Expect: 100-continue` is honoured late (attestation/http-error-answer.ts deferContinue): the
 * interim answer goes out only when a route is about to read the body, after authentication, rate
 * limits and the body's declared size and type passed.
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { answerClientError, answerExpectationUnsupported, deferContinue, refuseConnect } from '../../attestation/http-error-answer';

export function answerNodeErrors(server: Server): void {
  const reasonOf = (status: number) => STATUS_CODES[status];
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, reasonOf));
  deferContinue(server);
  server.on('checkExpectation', answerExpectationUnsupported);
  server.on('connect', (_req, socket: Duplex) => refuseConnect(socket, reasonOf));
}
