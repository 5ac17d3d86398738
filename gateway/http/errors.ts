/**
 * Every error answer of the gateway: JSON {code, message} with the status of the code in the one
 * registry (attestation/errors.ts). Unknown failures become INTERNAL without internal detail.
 * Written on Node's own response, so express routes and the inference front (front.ts) answer
 * alike.
 */
import type { ErrorRequestHandler } from 'express';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { RateLimitedError } from '../limits/rate-limit';
import type { GatewayResponse } from './exchange';

export function sendError(res: GatewayResponse, err: TeegateError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
  if (err.code === 'AUTH_REQUIRED' || err.code === 'AUTH_INVALID') res.setHeader('WWW-Authenticate', 'Bearer realm="teegate"');
  // The unread rest of an oversized body, or of any body refused before it was read (401, 404,
  // 415, ...), is not worth draining: close the connection after this answer.
  if (err.code === 'BODY_TOO_LARGE' || !res.req.complete) res.setHeader('Connection', 'close');
  if (err.action === 'retry' && err.status >= 500 && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', '1');
  res.locals.errorCode = err.code;
  const body = Buffer.from(JSON.stringify(err.toJSON()), 'utf8');
  res.statusCode = err.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Answers any failure of a route: typed errors as they are, a bad percent-escape in the path
 * (URIError, thrown when path parameters are decoded) as 400, the rest INTERNAL (passed to
 * `onInternal` to be logged, never put in the answer). The gateway reads bodies itself
 * (read-body.ts), so no body-parser errors reach here.
 */
export function answerError(res: GatewayResponse, err: unknown, onInternal: (err: unknown) => void): void {
  if (isTeegateError(err)) return sendError(res, err);
  if (err instanceof URIError) return sendError(res, new TeegateError('REQUEST_INVALID', 'the request path holds an invalid percent-escape'));
  onInternal(err);
  sendError(res, new TeegateError('INTERNAL', 'the gateway failed to handle the request'));
}

/** Express's final error handler: `answerError`. */
export function errorHandler(onInternal: (err: unknown) => void): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    void _next;
    answerError(res, err, onInternal);
  };
}
