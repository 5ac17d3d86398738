/**
 * docs/gateway-api.md's route table against the OpenAPI document the gateway serves (which
 * gateway-openapi.test.ts keeps in step with the registered routes): every route documented, no
 * route documented that does not exist.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOpenApi } from '../../gateway/openapi';

const doc = readFileSync(join(__dirname, '../../docs/gateway-api.md'), 'utf8');

/** "METHOD /path" of each row of the Routes table, the query string left out. */
function documentedRoutes(): string[] {
  const section = doc.slice(doc.indexOf('## Routes'), doc.indexOf('\n## ', doc.indexOf('## Routes') + 1));
  return [...section.matchAll(/^\| `(GET|POST) ([^`?\s]+)(?:\?[^`]*)?` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
}

function servedRoutes(): string[] {
  const paths = buildOpenApi().paths as Record<string, Record<string, unknown>>;
  return Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`));
}

test('the route table lists exactly the routes of /openapi.json, each once', () => {
  const documented = documentedRoutes();
  expect(documented.length).toBeGreaterThan(20);
  expect(new Set(documented).size).toBe(documented.length);
  expect([...documented].sort()).toEqual(servedRoutes().sort());
});

test('every header, metric and setting the page names exists in the code', () => {
  const code = ['gateway/observability/metrics.ts', 'attestation/headers.ts', 'gateway/config.ts'].map((f) => readFileSync(join(__dirname, '../..', f), 'utf8')).join('\n');
  for (const [name] of doc.matchAll(/teegate_gateway_[a-z_]+/g)) expect(code).toContain(`'${name}'`);
  for (const [name] of doc.matchAll(/teegate-(?:receipt|log-index|enclave|seal-kid)/g)) expect(code).toContain(`'${name}'`);
  for (const [, name] of doc.matchAll(/`((?:limits|auth|cors|metrics)\.[A-Za-z]+)`/g)) expect(code).toContain(`path: '${name}'`);
});
