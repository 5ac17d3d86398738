/**
 * What reaches the gateway below express, over raw sockets: answers Node's HTTP server gives by
 * itself (oversized headers, malformed HTTP, an unsupported Expect, CONNECT, a request not sent in
 * time) come as JSON from the one registry; `Expect: 100-continue` is answered only after the checks
 * that need no body; `limits.requestTimeoutMs` holds below Node's 30 s check
 * interval; a body refused before it was read is not drained; and an enclave's address never
 * reaches clients (errors name the member id).
 */
import { connect } from 'node:net';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import type { RunningEnclave } from '../../enclave/main';
import { parseRawAnswer, rawExchange, type RawAnswer } from '../support/raw-http';
import { affineRequest } from '../support/tiny-models';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs } from '../support/gateway-harness';

jest.setTimeout(60_000);

let ca: DevCa;
let enclave: RunningEnclave;
let gateway: RunningGateway;
let inferKey: string;
let logLines: () => string[];
let sink: MemoryReceiptSink;

beforeAll(async () => {
  ca = await createDevCa();
  enclave = await startTestEnclave(ca, testModelConfigs());
  const keys = testKeys();
  inferKey = keys.keys.infer;
  const capture = captureLogger();
  logLines = capture.lines;
  gateway = await startGateway(
    testGatewayConfig({
      enclaves: [enclave.url],
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) },
      auth: { keys: keys.config },
      limits: { requestTimeoutMs: 1000 },
      pool: { healthIntervalMs: 60_000 },
    }),
    { sink: (sink = new MemoryReceiptSink()), logger: capture.logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
  );
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
});

/** Sends `parts` to the gateway (waiting `gapMs` before each after the first) and reads until it closes. */
const raw = (parts: readonly string[], gapMs = 0): Promise<RawAnswer> => rawExchange(gateway.url, parts, gapMs);

describe('answers Node gives before any route runs are JSON from the registry', () => {
  it.each<[string, string, number, string]>([
    ['a URL longer than the header limit', `GET /v2/models/${'m'.repeat(20_000)} HTTP/1.1\r\nHost: g\r\n\r\n`, 431, 'REQUEST_HEADERS_TOO_LARGE'],
    ['3,000 headers', `GET /v2 HTTP/1.1\r\nHost: g\r\n${Array.from({ length: 3000 }, (_, i) => `x-h${i}: v\r\n`).join('')}\r\n`, 431, 'REQUEST_HEADERS_TOO_LARGE'],
    ['a Content-Length that is not a number', 'POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nContent-Length: abc\r\n\r\n', 400, 'REQUEST_INVALID'],
    ['Content-Length with Transfer-Encoding', 'POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'REQUEST_INVALID'],
    ['a header name with a space', 'GET /v2 HTTP/1.1\r\nHost: g\r\nbad name: v\r\n\r\n', 400, 'REQUEST_INVALID'],
    ['Expect: foo', 'GET /v2 HTTP/1.1\r\nHost: g\r\nExpect: foo\r\n\r\n', 417, 'EXPECTATION_UNSUPPORTED'],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 404, 'ROUTE_NOT_FOUND'],
    ['an HTTP/1.1 request without Host', 'GET /v2 HTTP/1.1\r\n\r\n', 400, 'REQUEST_INVALID'],
    ['Transfer-Encoding "gzip, chunked"', 'POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n', 501, 'TRANSFER_CODING_UNSUPPORTED'],
    ['an HTTP/1.1 inference without Host', 'POST /v2/models/affine/infer HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', 400, 'REQUEST_INVALID'],
  ])('%s', async (_what, request, status, code) => {
    const answer = await raw([request]);
    expect(answer.status).toBe(status);
    expect(answer.headers).toContain('content-type: application/json');
    expect(JSON.parse(answer.body)).toEqual({ code, message: expect.any(String) });
  });
});

it('a request refused for its form (an HTTP/1.1 request without Host) closes its connection: a request sent after it is not answered', async () => {
  const answer = await new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1', () => socket.write('GET /v2/health/live HTTP/1.1\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n'));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  expect([...answer.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => m[1])).toEqual(['400']);
  const refusal = parseRawAnswer(answer, Date.now());
  expect(refusal.headers).toContain('connection: close');
  expect(JSON.parse(refusal.body)).toEqual({ code: 'REQUEST_INVALID', message: 'an HTTP/1.1 request must have a Host header (RFC 9112 section 3.2)' });
});

it('chunk extensions over Node\'s limit in a body being read are 413 BODY_TOO_LARGE as JSON', async () => {
  const head = `POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${inferKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const answer = await raw([head, `1;${'x'.repeat(20_000)}=y\r\n{\r\n0\r\n\r\n`]);
  expect([answer.status, JSON.parse(answer.body)]).toEqual([413, { code: 'BODY_TOO_LARGE', message: 'the chunk extensions are too large' }]);
});

describe('limits.requestTimeoutMs (1 s here)', () => {
  it('a client that goes silent mid-body gets 408 REQUEST_TIMEOUT within a few checks of the timeout, not after Node\'s 30 s interval', async () => {
    const head = `POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${inferKey}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const answer = await raw([`${head}{"inputs":`]);
    expect([answer.status, JSON.parse(answer.body)]).toEqual([408, { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' }]);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(answer.closedAfterMs).toBeLessThan(5_000);
  });

  it('so do headers that never end', async () => {
    const answer = await raw(['GET /v2 HTTP/1.1\r\nHost: g\r\nX-Slow: ']);
    expect([answer.status, JSON.parse(answer.body).code]).toEqual([408, 'REQUEST_TIMEOUT']);
    expect(answer.closedAfterMs).toBeLessThan(5_000);
  });
});

/**
 * Sends `head` with `Expect: 100-continue`, sends `body` only once the gateway answers `100 Continue`
 * (as curl does for large bodies), and reads until the gateway closes.
 */
async function expectingContinue(head: string, body: string): Promise<{ continued: boolean; answer: RawAnswer }> {
  const { port } = new URL(gateway.url);
  const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let continued = false;
    let text = '';
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(head));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (!continued && text.startsWith(interim)) {
        continued = true;
        text = text.slice(interim.length);
        socket.write(body);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      try {
        resolve({ continued, answer: parseRawAnswer(text, started) });
      } catch (err) {
        reject(err);
      }
    });
  });
}

describe('Expect: 100-continue: the body is asked for only once the request passed every check that needs no body', () => {
  const body = JSON.stringify(affineRequest());
  const head = (headers: string, length = Buffer.byteLength(body)) =>
    `POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n${headers}\r\n`;

  it('a valid request is continued, then answered', async () => {
    const { continued, answer } = await expectingContinue(head(`Authorization: Bearer ${inferKey}\r\nContent-Type: application/json\r\n`), body);
    expect(continued).toBe(true);
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as { outputs: unknown[] }).outputs.length).toBeGreaterThan(0);
  });

  it.each([
    ['no key', 'Content-Type: application/json\r\n', undefined, 401, 'AUTH_REQUIRED'],
    ['an unknown key', 'Authorization: Bearer tg_nottherightkey\r\nContent-Type: application/json\r\n', undefined, 401, 'AUTH_INVALID'],
    // KEY: the valid infer key, known only once beforeAll ran.
    ['a declared length over the limit', 'Authorization: Bearer KEY\r\nContent-Type: application/json\r\n', 999_999_999, 413, 'BODY_TOO_LARGE'],
    ['a media type not relayed', 'Authorization: Bearer KEY\r\nContent-Type: text/plain\r\n', undefined, 415, 'MEDIA_TYPE_UNSUPPORTED'],
  ])('%s: the final answer comes at once, without 100 Continue, and the connection closes', async (_what, headers, length, status, code) => {
    const { continued, answer } = await expectingContinue(head(headers.replace('KEY', inferKey), length), body);
    expect(continued).toBe(false);
    expect([answer.status, (JSON.parse(answer.body) as { code: string }).code]).toEqual([status, code]);
    expect(answer.headers).toContain('connection: close');
  });
});

it('a body that arrives in several pieces is relayed whole, in order', async () => {
  const body = JSON.stringify(affineRequest([4, 3, 2, 1]));
  const head = `POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nConnection: close\r\nAuthorization: Bearer ${inferKey}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const third = Math.floor(body.length / 3);
  const answer = await raw([head, body.slice(0, third), body.slice(third, 2 * third), body.slice(2 * third)], 50);
  expect(answer.status).toBe(200);
  expect((JSON.parse(answer.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([9, 7, 5, 3]);
});

it('a body refused before it was read (no key) is not drained: the connection closes after the 401', async () => {
  const head = 'POST /v2/models/affine/infer HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunk = `1000\r\n${' '.repeat(0x1000)}\r\n`;
  // Keeps sending for up to 4 s unless the gateway closes first.
  const answer = await raw([head, ...Array<string>(200).fill(chunk)], 20);
  expect([answer.status, JSON.parse(answer.body).code]).toEqual([401, 'AUTH_REQUIRED']);
  expect(answer.headers).toContain('connection: close');
  expect(answer.closedAfterMs).toBeLessThan(2_000);
});

it('an unexpected failure is 500 INTERNAL without its detail; the detail goes to the operator\'s log', async () => {
  const append = sink.appendReceipt;
  sink.appendReceipt = () => Promise.reject(new Error('disk on fire at /var/lib/secret'));
  try {
    const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { authorization: `Bearer ${inferKey}`, 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
    expect([res.status, await res.json()]).toEqual([500, { code: 'INTERNAL', message: 'the gateway failed to handle the request' }]);
  } finally {
    sink.appendReceipt = append;
  }
  expect(logLines().some((l) => l.includes('unhandled error') && l.includes('disk on fire at /var/lib/secret'))).toBe(true);
});

it('an enclave that went away is named by its member id, never its address, in answers and /v1/enclaves', async () => {
  const { host } = new URL(enclave.url);
  await enclave.close();
  const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { authorization: `Bearer ${inferKey}`, 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
  const body = (await res.json()) as { code: string; message: string };
  expect([res.status, body.code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
  expect(body.message).toBe('no attested enclave could take the request (enclave-0: ECONNREFUSED)');
  const listed = await (await fetch(`${gateway.url}/v1/enclaves`)).text();
  expect(listed).toContain('enclave-0');
  expect(listed).not.toContain(host);
  // The operator's log keeps the address beside the id.
  expect(logLines().some((l) => l.includes('"enclave":"enclave-0"') && l.includes(`"url":"${enclave.url}"`))).toBe(true);
  // Its manifest still says what it serves: a model it lists is not ready (503), one it does not is
  // not found (404), the same from the infer and the ready routes.
  const codeOf = async (res: Response) => [res.status, ((await res.json()) as { code?: string; ready?: boolean }).code];
  const post = (model: string) => fetch(`${gateway.url}/v2/models/${model}/infer`, { method: 'POST', headers: { authorization: `Bearer ${inferKey}`, 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
  expect(await codeOf(await post('nope'))).toEqual([404, 'MODEL_NOT_FOUND']);
  expect(await codeOf(await fetch(`${gateway.url}/v2/models/nope/ready`))).toEqual([404, 'MODEL_NOT_FOUND']);
  expect(await codeOf(await fetch(`${gateway.url}/v2/models/affine/ready`))).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
});
