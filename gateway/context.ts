/**
 * What every route group needs: configuration, the enclave pool, the log sink, auth and limits,
 * logging and metrics. Built once by `createGatewayApp`.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import proxyaddr from 'proxy-addr';
import { isTeegateError } from '../attestation/errors';
import { ApiKeyStore } from './auth/api-keys';
import type { ApiKeyScope, GatewayConfig } from './config';
import { clientSubject } from './limits/client-subject';
import { RateLimiter } from './limits/rate-limit';
import type { ReceiptSink } from './log/receipt-sink';
import type { GatewayResponse } from './http/exchange';
import type { GatewayLogger } from './observability/logger';
import type { GatewayMetrics } from './observability/metrics';
import type { EnclavePool } from './pool/enclave-pool';

export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly pool: EnclavePool;
  readonly sink: ReceiptSink;
  readonly logger: GatewayLogger;
  readonly metrics: GatewayMetrics;
  /** True once graceful shutdown started: new requests get GATEWAY_SHUTTING_DOWN. */
  readonly isShuttingDown?: () => boolean;
  /** Routers mounted at their paths before the not-found handler (transparency log, web explorer). */
  readonly routers?: readonly { readonly path: string; readonly router: import('express').RequestHandler }[];
}

export interface GatewayContext extends GatewayDeps {
  /**
   * Requires an API key with `scope` (unless auth is disabled) and takes a rate-limit token; throws
   * the refusal (AUTH_*, RATE_LIMITED). Notes the key's id for the access log.
   */
  readonly authorize: (req: IncomingMessage, res: GatewayResponse, scope: ApiKeyScope) => void;
  /** `authorize` as express middleware. */
  readonly requireKey: (scope: ApiKeyScope) => RequestHandler;
  /** Rate limit per client address (an IPv6 client's /64; behind a trusted proxy, the one it names), for routes that take no key. */
  readonly limitAnonymous: RequestHandler;
}

export function createContext(deps: GatewayDeps): GatewayContext {
  const keys = new ApiKeyStore(deps.config.auth.keys);
  const limiter = new RateLimiter(deps.config.limits.rateLimit);
  const anonymous = new RateLimiter(deps.config.limits.anonymousRateLimit);
  // Keys that are not valid, per client address at the anonymous rate. Once an address has used up
  // its failures, its requests with a key are refused before the key is checked, valid or not:
  // otherwise the one key that is not refused would be the one guessed right.
  const failures = new RateLimiter(deps.config.limits.anonymousRateLimit);
  // The client's address: the socket's, or, from a configured reverse proxy, the one its
  // X-Forwarded-For names (proxy-addr, as express computes req.ip).
  const trusted = proxyaddr.compile([...deps.config.trustProxies]);
  const clientOf = (req: IncomingMessage) => clientSubject(proxyaddr(req, trusted));
  const authorize = (req: IncomingMessage, res: GatewayResponse, scope: ApiKeyScope): void => {
    if (deps.config.auth.disabled) {
      res.locals.keyId = 'anonymous';
      limiter.take(`ip:${clientOf(req)}`);
      return;
    }
    const subject = clientOf(req);
    if (req.headers.authorization !== undefined) failures.check(subject);
    let key;
    try {
      key = keys.authenticate(req.headers.authorization);
    } catch (err) {
      if (isTeegateError(err, 'AUTH_INVALID')) failures.take(subject);
      throw err;
    }
    res.locals.keyId = key.id;
    ApiKeyStore.requireScope(key, scope);
    limiter.take(`key:${key.id}`, key.rateLimit);
  };
  const requireKey = (scope: ApiKeyScope): RequestHandler => (req, res, next) => {
    authorize(req, res, scope);
    next();
  };
  const limitAnonymous: RequestHandler = (req, _res, next) => {
    anonymous.take(clientOf(req));
    next();
  };
  return { ...deps, authorize, requireKey, limitAnonymous };
}
