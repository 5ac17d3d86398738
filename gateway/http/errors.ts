/**
 * Every error answer of the gateway: JSON {code, message} with the status of the code in the one
 * registry (attestation/errors.ts). Unknown failures become INTERNAL without internal detail.
 */
import type { ErrorRequestHandler, Response } from 'express';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { RateLimitedError } from '../limits/rate-limit';

export function sendError(res: Response, err: TeegateError): void {
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
  res.status(err.status).type('application/json').send(JSON.stringify(err.toJSON()));
}

/**
 * Express's final error handler: typed errors as they are, the router's URIError as 400, the rest
 * INTERNAL (logged, without internal detail in the answer). The gateway reads bodies itself
 * (read-body.ts), so no body-parser errors reach here.
 */
export function errorHandler(onInternal: (err: unknown) => void): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    void _next;
    if (isTeegateError(err)) return sendError(res, err);
    // The router decodes path parameters and throws URIError (status 400) on a bad percent-escape.
    if (err instanceof URIError) return sendError(res, new TeegateError('REQUEST_INVALID', 'the request path holds an invalid percent-escape'));
    onInternal(err);
    return sendError(res, new TeegateError('INTERNAL', 'the gateway failed to handle the request'));
  };
}
