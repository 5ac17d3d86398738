/** GET /metrics: Prometheus text exposition (admin scope unless metrics.public). */
import type { Express, RequestHandler } from 'express';
import type { GatewayContext } from '../context';

export function registerMetricsRoutes(app: Express, ctx: GatewayContext): void {
  const guard: RequestHandler[] = ctx.config.metrics.public ? [] : [ctx.requireKey('admin')];
  app.get('/metrics', ...guard, async (_req, res) => {
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.end(await ctx.metrics.registry.metrics());
  });
}
