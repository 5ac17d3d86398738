import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { logRouter } from '../../gateway/log/routes';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { TransparencyLog } from '../../gateway/log/transparency-log';
import { createUiRouter } from '../../gateway/ui/router';
import type { Express } from 'express';
import { createGatewayApp } from '../../gateway/app';
import { parseGatewayConfig } from '../../gateway/config';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { createLogger } from '../../gateway/observability/logger';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { buildOpenApi } from '../../gateway/openapi';
import { INFER_ROUTES } from '../../gateway/routes/oip';
import { EnclavePool } from '../../gateway/pool/enclave-pool';

type RouteLayer = { route?: { path: string | RegExp; methods: Record<string, boolean> } };

/** Routes a router registers, as "METHOD /openapi/{path}" under `prefix` (`:name` and `*name` become `{name}`). */
function routesOf(stack: readonly RouteLayer[], prefix = ''): Set<string> {
  const out = new Set<string>();
  for (const layer of stack) {
    if (!layer.route) continue;
    const raw = layer.route.path;
    if (typeof raw !== 'string') throw new Error(`regex route ${String(raw)}: OpenAPI cannot describe it`);
    const path = raw.replace(/[:*]([A-Za-z_]+)/g, '{$1}');
    for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.add(`${method.toUpperCase()} ${prefix}${path}`);
  }
  return out;
}

/** The express app's routes and the front's (inference). */
function registeredRoutes(app: Express): Set<string> {
  const routes = routesOf((app as unknown as { router: { stack: RouteLayer[] } }).router.stack);
  for (const path of INFER_ROUTES) routes.add(`POST ${path.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
  return routes;
}

function documentedRoutes(): Set<string> {
  const out = new Set<string>();
  const paths = buildOpenApi().paths as Record<string, Record<string, unknown>>;
  for (const [path, ops] of Object.entries(paths)) for (const method of Object.keys(ops)) out.add(`${method.toUpperCase()} ${path}`);
  return out;
}

describe('OpenAPI 3.1 document', () => {
  const config = parseGatewayConfig({ file: { attestation: { policy: { pcrs: { 0: '00'.repeat(48) } } }, auth: { disabled: true } } });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const sink = new MemoryReceiptSink();
  const pool = new EnclavePool({ enclaves: [], attestation: config.attestation, sink, healthIntervalMs: 1000, healthTimeoutMs: 1000, selection: 'round-robin', client: { connectTimeoutMs: 100, timeoutMs: 100 }, logger, metrics });
  const { app } = createGatewayApp({ config, pool, sink, logger, metrics });

  it('describes exactly the routes the app serves, the mounted log router and the web explorer entry', async () => {
    const routes = registeredRoutes(app);
    expect(routes.size).toBe(16);
    // Inference is the front's alone: the express app does not register it too.
    expect([...routesOf((app as unknown as { router: { stack: RouteLayer[] } }).router.stack)].filter((r) => r.endsWith('/infer'))).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'teegate-openapi-'));
    const log = await TransparencyLog.open({ storage: await FileLogStorage.open(dir) });
    try {
      const logRoutes = routesOf((logRouter(log) as unknown as { stack: RouteLayer[] }).stack, '/v1/log');
      expect(logRoutes.size).toBe(6);
      const uiEntry = [...routesOf((createUiRouter() as unknown as { stack: RouteLayer[] }).stack, '/ui')].filter((r) => r === 'GET /ui/');
      expect([...documentedRoutes()].sort()).toEqual([...routes, ...logRoutes, ...uiEntry].sort());
    } finally {
      await log.close();
    }
  });

  it('is OpenAPI 3.1 with every $ref resolvable and every path parameter declared', () => {
    const doc = buildOpenApi() as { openapi: string; components: { schemas: Record<string, unknown> }; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    expect(doc.openapi).toBe('3.1.0');
    const text = JSON.stringify(doc);
    for (const [, name] of text.matchAll(/"#\/components\/schemas\/([A-Za-z]+)"/g)) expect(doc.components.schemas).toHaveProperty(name!);
    for (const [path, ops] of Object.entries(doc.paths)) {
      const params = [...path.matchAll(/\{([a-z]+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(ops)) expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)).toEqual(params);
    }
  });
});
