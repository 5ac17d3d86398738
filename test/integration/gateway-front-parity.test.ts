/**
 * Parity of inference served in front of express (gateway/front.ts) with what the express route
 * answered before (6537c34), and of the shared admission and error answers (gateway/http/exchange.ts,
 * gateway/http/errors.ts) on every route: status, headers, access-log line and metrics `route`
 * label, on success and on each refusal, over real loopback HTTP (raw sockets where fetch would not
 * send the request). Where the earlier gateway itself was wrong the test says so.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import type { RunningEnclave } from '../../enclave/main';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { parseRawAnswer, rawExchange, rawRequest, type RawAnswer } from '../support/raw-http';
import { affineRequest } from '../support/tiny-models';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs, type TestKeys } from '../support/gateway-harness';

jest.setTimeout(60_000);

const REPO = join(__dirname, '../..');
const ORIGIN = 'https://app.example.com';
const SECURITY = ['x-content-type-options', 'x-frame-options', 'referrer-policy', 'content-security-policy', 'cross-origin-opener-policy', 'cache-control'];

let ca: DevCa;
let enclave: RunningEnclave;
let keys: TestKeys;
let keyConfig: unknown[];
let gateway: RunningGateway;
let logs: () => string[];
const BODY = JSON.stringify(affineRequest());

/** Header name → value of a raw answer (raw-http lower-cases names and values; the status line dropped). */
function headersOf(answer: RawAnswer): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of answer.headers.split('\r\n').slice(1)) {
    const at = line.indexOf(':');
    out.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return out;
}

/** A request with `extra` header lines and, unless `body` is null, the affine model's JSON body. */
const request = (method: string, target: string, extra: string[] = [], body: string | null = BODY): string => rawRequest(method, target, extra, body);

const auth = (key = keys.infer) => `Authorization: Bearer ${key}`;

/** The access-log lines ('request') written while `body` ran, after the answers were finished. */
async function accessLogOf(body: () => Promise<unknown>, read = () => logs()): Promise<Record<string, unknown>[]> {
  const before = read().length;
  await body();
  await new Promise((r) => setTimeout(r, 50));
  return read()
    .slice(before)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'request');
}

/** The `route` labels of the request-duration histogram with `status`. */
async function routeLabels(metrics: GatewayMetrics, status: string): Promise<string[]> {
  const { values } = await metrics.requestDuration.get();
  return [...new Set(values.filter((v) => v.metricName?.endsWith('_count') && v.labels.status === status).map((v) => String(v.labels.route)))].sort();
}

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/v2/health/ready`)).ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the gateway never became ready');
}

async function gatewayWith(extra: Record<string, unknown>, sink = new MemoryReceiptSink()) {
  const capture = captureLogger();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const gw = await startGateway(
    testGatewayConfig({
      enclaves: [enclave.url],
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) },
      auth: { keys: keyConfig },
      limits: { bodyBytes: 4096 },
      cors: { origins: [ORIGIN] },
      ...extra,
    }),
    { sink, logger: capture.logger, metrics },
  );
  await ready(gw.url);
  return { gateway: gw, logs: capture.lines, metrics };
}

beforeAll(async () => {
  ca = await createDevCa();
  enclave = await startTestEnclave(ca, testModelConfigs());
  const k = testKeys();
  keys = k.keys;
  keyConfig = k.config;
  const g = await gatewayWith({});
  gateway = g.gateway;
  logs = g.logs;
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
});

describe('answers and refusals on the inference routes', () => {
  it('a refusal on the front carries exactly the headers of the same refusal on an express route (401 AUTH_REQUIRED)', async () => {
    const infer = await rawExchange(gateway.url, [request('POST', '/v2/models/affine/infer', [`Origin: ${ORIGIN}`, 'X-Request-Id: parity-1'])]);
    expect([infer.status, JSON.parse(infer.body)]).toEqual([401, { code: 'AUTH_REQUIRED', message: 'this route needs an API key: send Authorization: Bearer <key>' }]);
    // The same refusal from an express route (GET /metrics needs an admin key), its body unread too.
    const get = await rawExchange(gateway.url, [request('GET', '/metrics', [`Origin: ${ORIGIN}`, 'X-Request-Id: parity-1'], BODY)]);
    expect(get.status).toBe(401);
    const a = headersOf(infer);
    const b = headersOf(get);
    a.delete('date');
    b.delete('date');
    // Same names in the same order, same values but for the body's length.
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, value] of a) if (name !== 'content-length') expect([name, value]).toEqual([name, b.get(name)]);
    expect(a.get('content-type')).toBe('application/json; charset=utf-8');
    expect(a.get('content-length')).toBe(String(Buffer.byteLength(infer.body)));
    expect(a.get('www-authenticate')).toBe('bearer realm="teegate"');
    expect(a.get('x-request-id')).toBe('parity-1');
    expect(a.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(a.get('vary')).toBe('origin');
    for (const name of SECURITY) expect(a.has(name)).toBe(true);
  });

  it('a successful inference carries the admission headers, one access-log line and the inference counter', async () => {
    let answer: RawAnswer | undefined;
    const lines = await accessLogOf(async () => {
      answer = await rawExchange(gateway.url, [request('POST', '/v2/models/affine/infer', [auth(), `Origin: ${ORIGIN}`, 'X-Request-Id: ok-1'])]);
    });
    const h = headersOf(answer!);
    expect(answer!.status).toBe(200);
    expect([h.get('x-request-id'), h.get('vary'), h.get('access-control-allow-origin'), h.get('timing-allow-origin'), h.get('content-type')]).toEqual(['ok-1', 'origin', ORIGIN, ORIGIN, 'application/json']);
    expect(h.get('content-length')).toBe(String(Buffer.byteLength(answer!.body)));
    expect(h.get('teegate-log-index')).toMatch(/^\d+$/);
    for (const name of SECURITY) expect(h.has(name)).toBe(true);
    expect(lines).toEqual([expect.objectContaining({ requestId: 'ok-1', method: 'POST', route: '/v2/models/:model/infer', status: 200, keyId: 'app', model: 'affine', mode: 'plain' })]);
    expect(await gateway.metrics.registry.getSingleMetricAsString('teegate_gateway_inferences_total')).toMatch(/model="affine",mode="plain",outcome="ok"\} [1-9]/);
  });

  it('HEAD, GET, PUT and OPTIONS (not a preflight) on an inference path reach express: ROUTE_NOT_FOUND, route "unmatched"', async () => {
    // Note: the earlier gateway labelled the HEAD one with the inference route (router 2 lets HEAD
    // into a POST-only route, which then sets req.route and falls through); "unmatched" is right.
    const answers: RawAnswer[] = [];
    const lines = await accessLogOf(async () => {
      for (const method of ['HEAD', 'GET', 'PUT', 'OPTIONS']) answers.push(await rawExchange(gateway.url, [request(method, '/v2/models/affine/infer', [auth()], method === 'PUT' ? BODY : null)]));
    });
    expect(answers.map((a) => a.status)).toEqual([404, 404, 404, 404]);
    expect(answers[0]!.body).toBe('');
    expect(headersOf(answers[0]!).get('content-length')).toBe(String(Buffer.byteLength(answers[1]!.body.replace('GET', 'HEAD'))));
    expect(answers.slice(1).map((a) => (JSON.parse(a.body) as { code: string }).code)).toEqual(['ROUTE_NOT_FOUND', 'ROUTE_NOT_FOUND', 'ROUTE_NOT_FOUND']);
    expect(lines.map((l) => [l.method, l.route, l.code])).toEqual([
      ['HEAD', 'unmatched', 'ROUTE_NOT_FOUND'],
      ['GET', 'unmatched', 'ROUTE_NOT_FOUND'],
      ['PUT', 'unmatched', 'ROUTE_NOT_FOUND'],
      ['OPTIONS', 'unmatched', 'ROUTE_NOT_FOUND'],
    ]);
  });

  it('a CORS preflight of an inference path is answered 204 by the admission, for an allowed origin only', async () => {
    const preflight = (origin: string) =>
      rawExchange(gateway.url, [request('OPTIONS', '/v2/models/affine/infer', [`Origin: ${origin}`, 'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: authorization, content-type'], null)]);
    const allowed = headersOf(await preflight(ORIGIN));
    expect([allowed.get('access-control-allow-origin'), allowed.get('access-control-allow-methods'), allowed.get('access-control-max-age'), allowed.get('vary')]).toEqual([ORIGIN, 'get, post, options', '600', 'origin']);
    const other = await preflight('https://evil.example');
    expect([other.status, headersOf(other).has('access-control-allow-origin'), headersOf(other).get('vary')]).toEqual([204, false, 'origin']);
  });

  it('odd request targets are routed as express routed them (%2F and %00 decoded into the name; //, dot segments, *, a bad port: not inference)', async () => {
    const answer = async (target: string) => {
      const a = await rawExchange(gateway.url, [request('POST', target, [auth()])]);
      return [target, a.status, (JSON.parse(a.body) as { code: string; message: string }).message];
    };
    expect(await answer('/v2/models/aff%2Fine/infer')).toEqual(['/v2/models/aff%2Fine/infer', 404, 'no attested enclave serves model aff/ine']);
    expect(await answer('/v2/models/aff%00ine/infer')).toEqual(['/v2/models/aff%00ine/infer', 404, 'no attested enclave serves model aff\u0000ine']);
    expect(await answer('/v2/models/affine/versions/../infer')).toEqual(['/v2/models/affine/versions/../infer', 404, 'no attested enclave serves model affine version ..']);
    for (const target of ['//v2/models/affine/infer', '/v2//models/affine/infer', '/v2/models/affine/./infer', '/v2/models/x/../affine/infer', '*']) {
      expect(await answer(target)).toEqual([target, 404, `no route POST ${target}`]);
    }
    // url.parse reads a non-numeric port as part of the path.
    expect(await answer('http://g:xx/v2/models/affine/infer')).toEqual(['http://g:xx/v2/models/affine/infer', 404, 'no route POST /:xx/v2/models/affine/infer']);
  });

  it('a bad percent-escape is REQUEST_INVALID with the admission headers, logged and counted as "unmatched" as on express routes', async () => {
    let infer: RawAnswer | undefined;
    let ready: RawAnswer | undefined;
    const lines = await accessLogOf(async () => {
      infer = await rawExchange(gateway.url, [request('POST', '/v2/models/%zz/infer', [`Origin: ${ORIGIN}`])]);
      ready = await rawExchange(gateway.url, [request('GET', '/v2/models/%zz/ready', [`Origin: ${ORIGIN}`], null)]);
    });
    expect([infer!.status, JSON.parse(infer!.body)]).toEqual([400, { code: 'REQUEST_INVALID', message: 'the request path holds an invalid percent-escape' }]);
    expect([ready!.status, headersOf(ready!).get('access-control-allow-origin'), headersOf(infer!).get('access-control-allow-origin')]).toEqual([400, ORIGIN, ORIGIN]);
    // Express never matched a route for either (the router's decoding failed): so did the earlier
    // gateway label both. The front labels its own with the inference pattern.
    expect(lines.map((l) => [l.method, l.route, l.status, l.code])).toEqual([
      ['POST', 'unmatched', 400, 'REQUEST_INVALID'],
      ['GET', 'unmatched', 400, 'REQUEST_INVALID'],
    ]);
    expect(await routeLabels(gateway.metrics, '400')).not.toContain('/v2/models/:model/infer');
  });

  it('Expect: 100-continue on the front: a refusal comes without 100 Continue, an accepted request gets it and then its answer', async () => {
    const refused = await rawExchange(gateway.url, [`POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\nExpect: 100-continue\r\n\r\n`]);
    expect([refused.status, refused.headers.includes('100 continue'), headersOf(refused).get('connection')]).toEqual([401, false, 'close']);
    const text = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1', () =>
        socket.write(`POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\n${auth()}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString('utf8');
        if (got.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !got.includes('200 OK')) socket.write(BODY);
      });
      socket.on('close', () => resolve(got));
    });
    expect(text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
  });
});

describe('shutdown refusal (GATEWAY_SHUTTING_DOWN) on an inference path and on an express route', () => {
  const answers: RawAnswer[] = [];
  let lines: Record<string, unknown>[] = [];
  let metrics: GatewayMetrics;

  beforeAll(async () => {
    const g = await gatewayWith({});
    metrics = g.metrics;
    const port = Number(new URL(g.gateway.url).port);
    // Each connection holds an inference in flight (half its body sent), so that close() leaves it
    // open; the request that follows it arrives while the gateway shuts down.
    const follow = [request('POST', '/v2/models/affine/infer', [auth(), `Origin: ${ORIGIN}`, 'X-Request-Id: s-1']), request('GET', '/v2/health/live', [`Origin: ${ORIGIN}`, 'X-Request-Id: s-2'], null)];
    const sockets = follow.map(() => {
      const socket: Socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      const started = Date.now();
      const done = new Promise<string>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8'))));
      return { socket, done, started };
    });
    const half = BODY.length >> 1;
    for (const { socket } of sockets) socket.write(`POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\n${auth()}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY.slice(0, half)}`);
    await new Promise((r) => setTimeout(r, 300));
    lines = await accessLogOf(
      async () => {
        const closed = g.gateway.close();
        await new Promise((r) => setTimeout(r, 50));
        sockets.forEach(({ socket }, i) => socket.write(BODY.slice(half) + follow[i]!));
        await closed;
        for (const { done, started } of sockets) {
          const text = await done;
          answers.push(parseRawAnswer(text.slice(text.lastIndexOf('HTTP/1.1 ')), started));
        }
      },
      () => g.logs(),
    );
  });

  it('answers 503 with Connection: close, Retry-After, the request id and the security headers, alike on both', () => {
    // Note: the earlier gateway refused before its securityHeaders middleware, so its 503 had none of
    // them; every answer should have them ("security headers on every answer"), as it has now.
    expect(answers.map((a) => [a.status, (JSON.parse(a.body) as { code: string }).code])).toEqual([
      [503, 'GATEWAY_SHUTTING_DOWN'],
      [503, 'GATEWAY_SHUTTING_DOWN'],
    ]);
    const [infer, express] = answers.map(headersOf) as [Map<string, string>, Map<string, string>];
    for (const h of [infer, express]) {
      expect([h.get('connection'), h.get('retry-after'), h.get('content-type')]).toEqual(['close', '1', 'application/json; charset=utf-8']);
      for (const name of SECURITY) expect([name, h.has(name)]).toEqual([name, true]);
      expect(h.has('access-control-allow-origin')).toBe(false); // refused before CORS, as before
    }
    expect([infer.get('x-request-id'), express.get('x-request-id')]).toEqual(['s-1', 's-2']);
  });

  it('logs and counts the refusal as "unmatched" on both, as the earlier gateway did (no route ran)', async () => {
    const refusals = lines.filter((l) => l.code === 'GATEWAY_SHUTTING_DOWN').map((l) => [l.method, l.route]);
    expect(refusals).toEqual([
      ['POST', 'unmatched'],
      ['GET', 'unmatched'],
    ]);
    expect(await routeLabels(metrics, '503')).toEqual(['unmatched']);
  });
});

it('a failure that is not a TeegateError is INTERNAL (500, Retry-After, no detail), logged once as unhandled', async () => {
  class FailingSink extends MemoryReceiptSink {
    override appendReceipt(): Promise<{ index: number }> {
      return Promise.reject(new Error('disk on fire'));
    }
  }
  const g = await gatewayWith({}, new FailingSink());
  try {
    let answer: RawAnswer | undefined;
    const lines = await accessLogOf(async () => {
      answer = await rawExchange(g.gateway.url, [request('POST', '/v2/models/affine/infer', [auth()])]);
    }, () => g.logs());
    const h = headersOf(answer!);
    expect([answer!.status, JSON.parse(answer!.body), h.get('retry-after'), h.get('content-type')]).toEqual([500, { code: 'INTERNAL', message: 'the gateway failed to handle the request' }, '1', 'application/json; charset=utf-8']);
    expect(lines).toEqual([expect.objectContaining({ route: '/v2/models/:model/infer', status: 500, code: 'INTERNAL', keyId: 'app', mode: 'plain' })]);
    const unhandled = g.logs().filter((l) => l.includes('"unhandled error"'));
    expect(unhandled).toHaveLength(1);
    expect(unhandled[0]).toContain('disk on fire');
    expect(await g.metrics.registry.getSingleMetricAsString('teegate_gateway_inferences_total')).toMatch(/model="affine",mode="plain",outcome="gateway_error"\} 1/);
  } finally {
    await g.gateway.close();
  }
});

it('behind a trusted proxy, X-Forwarded-For names the client for the rate limits of inference (front) and of express routes alike', async () => {
  const limit = { requestsPerSecond: 0.01, burst: 1 };
  const g = await gatewayWith({ trustProxies: ['127.0.0.1'], auth: { disabled: true }, limits: { bodyBytes: 4096, rateLimit: limit, anonymousRateLimit: limit } });
  try {
    const infer = async (xff: string) => (await rawExchange(g.gateway.url, [request('POST', '/v2/models/affine/infer', [`X-Forwarded-For: ${xff}`])])).status;
    const attestation = async (xff: string) => (await rawExchange(g.gateway.url, [request('GET', '/v1/attestation', [`X-Forwarded-For: ${xff}`], null)])).status;
    expect([await infer('10.0.0.1'), await infer('10.0.0.1'), await infer('10.0.0.2'), await infer('10.0.0.3, 127.0.0.1'), await infer('10.0.0.3')]).toEqual([200, 429, 200, 200, 429]);
    // /v1/attestation without a nonce is refused (400) after its anonymous limit is taken.
    expect([await attestation('10.0.0.1'), await attestation('10.0.0.1'), await attestation('10.0.0.2')]).toEqual([400, 429, 400]);
  } finally {
    await g.gateway.close();
  }
});

it('a request whose absolute-form target url.parse cannot parse is refused in JSON, and the gateway keeps serving', async () => {
  // Before, express's router caught parseurl's throw (its getPathname) and finalhandler answered
  // 404 (HTML, not the gateway's JSON: itself a flaw). The front's first version called parseurl
  // for every POST outside any try: the throw escaped the request listener and ended the process.
  // Now any method gets 400 REQUEST_INVALID with the admission's headers.
  const child = spawn(process.execPath, [join(REPO, 'bin/run-ts'), join(REPO, 'gateway/main.ts')], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', TEEGATE_POLICY: JSON.stringify({ pcrs: { 0: 'ab'.repeat(48) } }), TEEGATE_AUTH_DISABLED: 'true', TEEGATE_PORT: '0', TEEGATE_LOG_LEVEL: 'warn', TEEGATE_LOG_STORE: 'memory' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const m = /^teegate gateway listening on (http:\S+)$/.exec(line);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening: ${stderr}`)));
    });
    const answer = await rawExchange(url, [request('POST', 'http://[/v2/models/affine/infer')]).catch((err: unknown) => ({ status: 0, headers: '', body: String(err), closedAfterMs: 0 }));
    await new Promise((r) => setTimeout(r, 300));
    expect([exited, stderr.includes('Invalid URL')]).toEqual([false, false]);
    expect([answer.status, JSON.parse(answer.body)]).toEqual([400, { code: 'REQUEST_INVALID', message: 'the request target is not a valid URL' }]);
    const get = await rawExchange(url, [request('GET', 'http://a[b/v2', [], null)]);
    expect([get.status, JSON.parse(get.body).code, headersOf(get).get('x-content-type-options'), headersOf(get).has('x-request-id')]).toEqual([400, 'REQUEST_INVALID', 'nosniff', true]);
    expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);
  } finally {
    child.kill('SIGKILL');
  }
});

describe('the exchange every request goes through', () => {
  it('echoes a client\'s X-Request-Id only when it is a plain token of at most 128 characters; anything else gets a fresh id', async () => {
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const idOf = async (id: string) => headersOf(await rawExchange(gateway.url, [request('GET', '/v2/health/live', [`X-Request-Id: ${id}`], null)])).get('x-request-id');
    const plain = `A.b_c:d-${'x'.repeat(120)}`;
    expect(plain).toHaveLength(128);
    expect(await idOf(plain)).toBe(plain.toLowerCase()); // raw-http lower-cases what it reads
    for (const odd of [`${plain}x`, 'two words', 'semi;colon', 'quote"d', 'tag<b>']) {
      const id = await idOf(odd);
      expect([odd, UUID.test(id ?? '')]).toEqual([odd, true]);
    }
  });

  it('counts an inference the enclave refused (400) as a client error, and counts nothing for requests that are not inferences', async () => {
    const g = await gatewayWith({});
    try {
      await rawExchange(g.gateway.url, [request('GET', '/v2/health/live', [], null)]);
      await rawExchange(g.gateway.url, [request('GET', '/v2/models/affine', [auth()], null)]);
      expect(await g.metrics.registry.getSingleMetricAsString('teegate_gateway_inferences_total')).not.toMatch(/outcome=/);
      const refused = await rawExchange(g.gateway.url, [request('POST', '/v2/models/affine/infer', [auth()], JSON.stringify(affineRequest([1, 2, 3])))]);
      expect(refused.status).toBe(400);
      const counted = await g.metrics.registry.getSingleMetricAsString('teegate_gateway_inferences_total');
      expect(counted).toMatch(/model="affine",mode="plain",outcome="client_error"\} 1$/m);
      expect(counted).not.toMatch(/outcome="ok"/);
    } finally {
      await g.gateway.close();
    }
  });

  it('a request refused for its form (no Host) is answered by the admission alone: logged as "unmatched", no route runs', async () => {
    const lines = await accessLogOf(async () => {
      await rawExchange(gateway.url, ['GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n']);
      await rawExchange(gateway.url, [`POST /v2/models/affine/infer HTTP/1.1\r\n${auth()}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`]);
    });
    expect(lines.map((l) => [l.method, l.status, l.route, l.code])).toEqual([
      ['GET', 400, 'unmatched', 'REQUEST_INVALID'],
      ['POST', 400, 'unmatched', 'REQUEST_INVALID'],
    ]);
  });

  it('with cors.origins ["*"], any page may read the answers, under "*" (no origin echoed), and nothing varies by Origin', async () => {
    const g = await gatewayWith({ cors: { origins: ['*'] } });
    try {
      const h = headersOf(await rawExchange(g.gateway.url, [request('GET', '/v2/health/live', ['Origin: https://anyone.example'], null)]));
      expect([h.get('access-control-allow-origin'), h.get('timing-allow-origin'), h.has('vary')]).toEqual(['*', '*', false]);
      const pre = headersOf(await rawExchange(g.gateway.url, [request('OPTIONS', '/v2/models/affine/infer', ['Origin: https://anyone.example', 'Access-Control-Request-Method: POST'], null)]));
      expect([pre.get('access-control-allow-origin'), pre.get('access-control-allow-methods')]).toEqual(['*', 'get, post, options']);
    } finally {
      await g.gateway.close();
    }
  });

  it('a CORS preflight answered by the admission leaves the connection usable: a request sent after it on the same connection is answered', async () => {
    const preflight = `OPTIONS /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nOrigin: ${ORIGIN}\r\nAccess-Control-Request-Method: POST\r\n\r\n`;
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1', () => socket.write(preflight + request('GET', '/v2/health/live', [], null)));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    expect([...answer.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => m[1])).toEqual(['204', '200']);
  });

  it('a failure whose error answer cannot be made (the logger throws) closes the connection rather than leaving the client waiting', async () => {
    class FailingSink extends MemoryReceiptSink {
      override appendReceipt(): Promise<{ index: number }> {
        return Promise.reject(new Error('disk on fire'));
      }
    }
    const capture = captureLogger();
    const logger = capture.logger;
    logger.error = (() => {
      throw new Error('the log is down');
    }) as typeof logger.error;
    const gw = await startGateway(
      testGatewayConfig({ enclaves: [enclave.url], attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) }, auth: { keys: keyConfig }, shutdownGraceMs: 0 }),
      { sink: new FailingSink(), logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await ready(gw.url);
      const outcome = await Promise.race([
        rawExchange(gw.url, [request('POST', '/v2/models/affine/infer', [auth()])]).then(
          (a) => `answered ${a.status}`,
          () => 'closed without an answer',
        ),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still open after 5 s'), 5_000))),
      ]);
      expect(outcome).toBe('closed without an answer');
    } finally {
      clearTimeout(timer);
      await gw.close();
    }
  });
});
