/**
 * The gateway's HTTP handling: the express app (admission: request ids, security headers, the
 * refusal while shutting down, CORS, access log and latency metrics; the route groups; then
 * ROUTE_NOT_FOUND and the one error handler, {code, message} from the registry), and in front of
 * it the listener that serves inference on Node's own request and response (front.ts) with the
 * same admission, authorization and error answers.
 */
import type { RequestListener } from 'node:http';
import { createUiRouter } from './ui/router';
import { publishedPolicyFile } from './ui/published-policy';
import express, { type Express, type Request } from 'express';
import { TeegateError } from '../attestation/errors';
import { createContext, type GatewayDeps } from './context';
import { createFront } from './front';
import { errorHandler } from './http/errors';
import { createAdmission } from './http/exchange';
import { registerAttestationRoutes } from './routes/attestation';
import { registerEnclaveRoutes } from './routes/enclaves';
import { registerJwksRoutes } from './routes/jwks';
import { registerMetricsRoutes } from './routes/metrics';
import { registerOipRoutes } from './routes/oip';
import { registerOpenApiRoutes } from './routes/openapi';

export type { GatewayDeps } from './context';

/** The matched route's pattern, with the mount point of a router (`/v1/log`, `/ui`) in front. */
function routeOf(req: Request): string {
  return req.route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : 'unmatched';
}

export interface GatewayHandlers {
  /** The express app: every route but inference. */
  readonly app: Express;
  /** What the HTTP server runs: inference (front.ts), then the app. */
  readonly listener: RequestListener;
}

export function createGatewayApp(deps: GatewayDeps): GatewayHandlers {
  const ctx = createContext(deps);
  const admission = createAdmission(deps);
  const onInternal = (err: unknown) => deps.logger.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'unhandled error');
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    if (admission(req, res, () => routeOf(req))) next();
  });
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
  app.use(errorHandler(onInternal));
  return { app, listener: createFront(ctx, admission, app, onInternal) };
}
