/**
 * Property test (fast-check, fixed seed, bounded runs): arbitrary methods and request targets,
 * with and without a key and a body, sent over raw sockets to a real gateway. Every request gets
 * one HTTP answer; every error answer is JSON {code, message} with a code of the registry and that
 * code's status; the gateway keeps serving. (A target Node accepts and url.parse cannot read once
 * threw out of the request listener and ended the process: gateway/front.ts.)
 */
import fc from 'fast-check';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { ERROR_REGISTRY, isErrorCode } from '../../attestation/errors';
import type { RunningEnclave } from '../../enclave/main';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs } from '../support/gateway-harness';
import { rawExchange, rawRequest } from '../support/raw-http';
import { affineRequest } from '../support/tiny-models';

jest.setTimeout(120_000);

const SEED = 20261125;
const RUNS = 600;

let enclave: RunningEnclave;
let gateway: RunningGateway;
let key: string;
let logs: () => string[];

beforeAll(async () => {
  const ca = await createDevCa();
  enclave = await startTestEnclave(ca, testModelConfigs());
  const k = testKeys();
  key = k.keys.infer;
  const capture = captureLogger();
  logs = capture.lines;
  gateway = await startGateway(
    testGatewayConfig({
      enclaves: [enclave.url],
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) },
      auth: { keys: k.config },
      limits: { bodyBytes: 4096, rateLimit: { requestsPerSecond: 100_000, burst: 100_000 }, anonymousRateLimit: { requestsPerSecond: 100_000, burst: 100_000 } },
      cors: { origins: ['https://app.example.com'] },
    }),
    { sink: new MemoryReceiptSink(), logger: capture.logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
  );
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
});

/** Pieces request targets are made of: the routes' own words, escapes, URL syntax, and bytes Node may refuse. */
const piece = fc.constantFrom(
  '/', '//', 'v2', 'models', 'affine', 'versions', '1', 'infer', 'ready', 'v1', 'log', 'tile', 'ui', 'attestation', 'enclaves', '.well-known', 'jwks.json',
  '%', '%2', '%2F', '%2f', '%25', '%00', '%zz', '%E0%A4%A', '%C0%80', '%ff', '.', '..', '?', '#', '&', '=', '*', ';', ':', '@', '[', ']', '\\', '~', '+', ',', '!', '$', "'", '(', ')',
  'http://', 'https://', 'http://[', 'http://a[b', 'gateway:8080', ':99999', 'x'.repeat(300), 'é', '\u0001', '\u007f',
);
const target = fc.oneof(
  fc.array(piece, { minLength: 1, maxLength: 10 }).map((parts) => parts.join('')),
  { arbitrary: fc.array(piece, { minLength: 0, maxLength: 8 }).map((parts) => `/v2/models/${parts.join('')}/infer`), weight: 2 },
  fc.string({ maxLength: 40 }).map((s) => `/${s}`),
  // The inference route itself, spelled as express would still route it, or nearly.
  {
    arbitrary: fc
      .tuple(fc.constantFrom('/v2/models/affine', '/V2/Models/affine', '/v2/models/aff%69ne', '/v2/models/affine/versions/1'), fc.constantFrom('/infer', '/INFER', '/infer/', '/infer?x=1', '/infer//', '/infer/x', '/infer%2F'))
      .map(([a, b]) => a + b),
    weight: 3,
  },
);
const method = fc.oneof({ arbitrary: fc.constant('POST'), weight: 4 }, fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'X-CUSTOM'));

function requestText(m: string, t: string, withKey: boolean, body: string | null, origin: boolean): string {
  const headers = [...(withKey ? [`Authorization: Bearer ${key}`] : []), ...(origin ? ['Origin: https://app.example.com', 'Access-Control-Request-Method: POST'] : [])];
  return rawRequest(m, t, headers, body);
}

it('every request target gets one answer: JSON {code, message} from the registry on every error, and the gateway keeps serving', async () => {
  const seen = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(method, target, fc.boolean(), fc.boolean(), fc.boolean(), async (m, t, withKey, withBody, origin) => {
      const body = withBody ? JSON.stringify(affineRequest()) : null;
      const answer = await rawExchange(gateway.url, [requestText(m, t, withKey, body, origin)]);
      seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
      if (answer.status >= 400) {
        const parsed = JSON.parse(answer.body === '' ? 'null' : answer.body) as { code?: unknown; message?: unknown } | null;
        // HEAD answers carry no body; everything else says what went wrong in the registry's words.
        if (m !== 'HEAD') {
          expect(parsed).toEqual({ code: expect.any(String), message: expect.any(String) });
          expect(isErrorCode(parsed!.code)).toBe(true);
          expect(answer.status).toBe(ERROR_REGISTRY[parsed!.code as keyof typeof ERROR_REGISTRY].status);
        }
      } else {
        expect([200, 204]).toContain(answer.status);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
  // Both answered and refused requests were generated, and nothing was left unhandled.
  expect(seen.get(200) ?? 0).toBeGreaterThan(10);
  expect([...seen.keys()].filter((s) => s >= 400).length).toBeGreaterThan(3);
  expect(logs().filter((l) => l.includes('unhandled'))).toEqual([]);
  expect((await fetch(`${gateway.url}/v2/health/live`)).status).toBe(200);
});
