/** GET /openapi.json: the OpenAPI 3.1 description of this gateway. */
import type { Express } from 'express';
import { buildOpenApi } from '../openapi';

export function registerOpenApiRoutes(app: Express): void {
  const doc = JSON.stringify(buildOpenApi());
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(doc);
  });
}
