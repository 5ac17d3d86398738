/**
 * What every request of the gateway goes through before its route (`createAdmission`), written on
 * Node's own request and response so that express routes and the inference front (front.ts) share
 * it: a request id, security headers, the refusal while shutting down, CORS; and when the answer is
 * finished, the latency histogram, the inference counter and one access-log line (never bodies or
 * keys). Routes note what the line needs in `res.locals` (express's own, or the front's).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TeegateError } from '../../attestation/errors';
import { requestFormRefusal } from '../../attestation/http-error-answer';
import type { GatewayDeps } from '../context';
import type { GatewayLogger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import { sendError } from './errors';
import { cors, setSecurityHeaders } from './security-headers';

/** What a route notes about its request for the access log, metrics and Server-Timing. */
export interface ExchangeNotes {
  /** `performance.now()` when the gateway took the request. */
  receivedAt?: number;
  model?: string;
  mode?: 'plain' | 'sealed';
  keyId?: string;
  enclave?: string;
  /** The error code of an error answer. */
  errorCode?: string;
  /** The matched route's pattern, where the route itself says it (the front; express has req.route). */
  route?: string;
}

/** Node's response with the notes (an express Response is one). */
export type GatewayResponse = ServerResponse & { locals: ExchangeNotes };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function outcome(status: number, gatewayError: boolean): string {
  if (status < 400) return 'ok';
  if (status < 500) return 'client_error';
  return gatewayError ? 'gateway_error' : 'enclave_error';
}

/**
 * Starts the exchange: the request id (the client's, if it is a plain token, else a new one) and,
 * on 'finish', the observations. `route` names the matched route's pattern when the answer is done.
 */
function beginExchange(
  obs: { readonly metrics: GatewayMetrics; readonly logger: GatewayLogger },
  req: IncomingMessage,
  res: GatewayResponse,
  route: () => string,
): void {
  const started = performance.now();
  res.locals.receivedAt = started;
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  res.on('finish', () => {
    const seconds = (performance.now() - started) / 1000;
    const notes = res.locals;
    const name = route();
    const model = notes.model ?? '';
    obs.metrics.requestDuration.observe({ route: name, method: req.method ?? '', model, status: String(res.statusCode) }, seconds);
    if (notes.mode !== undefined) {
      obs.metrics.inferences.inc({ model, mode: notes.mode, outcome: outcome(res.statusCode, notes.errorCode !== undefined) });
    }
    if (!obs.logger.isLevelEnabled('info')) return;
    obs.logger.info(
      {
        requestId,
        method: req.method,
        route: name,
        status: res.statusCode,
        ms: Math.round(seconds * 1e6) / 1e3,
        ...(notes.keyId ? { keyId: notes.keyId } : {}),
        ...(model ? { model } : {}),
        ...(notes.mode ? { mode: notes.mode } : {}),
        ...(notes.enclave ? { enclave: notes.enclave } : {}),
        ...(notes.errorCode ? { code: notes.errorCode } : {}),
      },
      'request',
    );
  });
}

/**
 * The steps every request takes before its route, in order: the exchange (request id,
 * observations), the security headers, the refusal of an HTTP/1.1 request without Host or in a
 * transfer coding other than chunked, the refusal while shutting down, CORS. Returns false when
 * the request has been answered here (a refusal, a CORS preflight).
 */
export type Admission = (req: IncomingMessage, res: GatewayResponse, route: () => string) => boolean;

export function createAdmission(deps: Pick<GatewayDeps, 'config' | 'metrics' | 'logger' | 'isShuttingDown'>): Admission {
  const applyCors = cors(deps.config.cors.origins);
  return (req, res, route) => {
    beginExchange(deps, req, res, route);
    setSecurityHeaders(res);
    const refusal = requestFormRefusal(req);
    if (refusal) {
      res.setHeader('Connection', 'close');
      sendError(res, refusal);
      return false;
    }
    if (deps.isShuttingDown?.()) {
      res.setHeader('Connection', 'close');
      sendError(res, new TeegateError('GATEWAY_SHUTTING_DOWN', 'the gateway is shutting down'));
      return false;
    }
    return applyCors(req, res);
  };
}
