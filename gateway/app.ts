/**
 * The gateway's express app: request ids, access log and latency metrics, security headers and
 * CORS, the route groups, then ROUTE_NOT_FOUND and the one error handler ({code, message} from the
 * registry).
 */
import { randomUUID } from 'node:crypto';
import { createUiRouter } from './ui/router';
import { publishedPolicyFile } from './ui/published-policy';
import express, { type Express, type RequestHandler } from 'express';
import { TeegateError } from '../attestation/errors';
import { createContext, type GatewayContext, type GatewayDeps } from './context';
import { errorHandler, sendError } from './http/errors';
import { cors, securityHeaders } from './http/security-headers';
import { registerAttestationRoutes } from './routes/attestation';
import { registerEnclaveRoutes } from './routes/enclaves';
import { registerJwksRoutes } from './routes/jwks';
import { registerMetricsRoutes } from './routes/metrics';
import { registerOipRoutes } from './routes/oip';
import { registerOpenApiRoutes } from './routes/openapi';

export type { GatewayDeps } from './context';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function outcome(status: number, gatewayError: boolean): string {
  if (status < 400) return 'ok';
  if (status < 500) return 'client_error';
  return gatewayError ? 'gateway_error' : 'enclave_error';
}

/** Access log line and latency observation when the answer is finished (never bodies or keys). */
function observe(ctx: GatewayContext): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.locals.receivedAt = started; // for the inference answer's Server-Timing
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    res.on('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      // The route's pattern, with the mount point of a router (`/v1/log`, `/ui`) in front.
      const route = req.route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : 'unmatched';
      const model = typeof res.locals.model === 'string' ? res.locals.model : '';
      ctx.metrics.requestDuration.observe({ route, method: req.method, model, status: String(res.statusCode) }, seconds);
      if (typeof res.locals.mode === 'string') {
        ctx.metrics.inferences.inc({ model, mode: res.locals.mode, outcome: outcome(res.statusCode, res.locals.errorCode !== undefined) });
      }
      ctx.logger.info(
        {
          requestId,
          method: req.method,
          route,
          status: res.statusCode,
          ms: Math.round(seconds * 1e6) / 1e3,
          ...(res.locals.keyId ? { keyId: res.locals.keyId } : {}),
          ...(model ? { model } : {}),
          ...(res.locals.mode ? { mode: res.locals.mode } : {}),
          ...(res.locals.enclave ? { enclave: res.locals.enclave } : {}),
          ...(res.locals.errorCode ? { code: res.locals.errorCode } : {}),
        },
        'request',
      );
    });
    next();
  };
}

function refuseWhileShuttingDown(ctx: GatewayContext): RequestHandler {
  return (_req, res, next) => {
    if (!ctx.isShuttingDown?.()) return next();
    res.setHeader('Connection', 'close');
    sendError(res, new TeegateError('GATEWAY_SHUTTING_DOWN', 'the gateway is shutting down'));
  };
}

export function createGatewayApp(deps: GatewayDeps): Express {
  const ctx = createContext(deps);
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  // req.ip: the socket's address, or, from a configured reverse proxy, the client X-Forwarded-For names.
  app.set('trust proxy', deps.config.trustProxies.length > 0 ? [...deps.config.trustProxies] : false);
  app.use(observe(ctx));
  app.use(refuseWhileShuttingDown(ctx));
  app.use(securityHeaders());
  app.use(cors(deps.config.cors.origins));
  registerOipRoutes(app, ctx);
  registerAttestationRoutes(app, ctx);
  registerEnclaveRoutes(app, ctx);
  registerJwksRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerOpenApiRoutes(app);
  // The measurement policy this gateway enforces, in the policy file format: the web explorer and
  // clients may start from it (a careful client pins its own).
  const policyFile = publishedPolicyFile(deps.config.attestation);
  app.get('/v1/policy', (_req, res) => {
    res.json(policyFile);
  });
  app.use('/ui', createUiRouter());
  for (const { path, router } of deps.routers ?? []) app.use(path, router);
  app.use((req, _res, next) => next(new TeegateError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(
    errorHandler((err) => deps.logger.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'unhandled error')),
  );
  return app;
}
