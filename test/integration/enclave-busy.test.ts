/**
 * Backpressure: an enclave holds at most `maxPendingBytes` of request bodies at once (from the
 * declared length until the answer). Past it a request is 429 ENCLAVE_BUSY before anything is read
 * or run, no receipt number is spent, and the connection is closed; the bytes come back once the
 * holder is answered. The gateway takes ENCLAVE_BUSY as "not run here" and tries another enclave;
 * when none can take the request, the client gets the 429.
 *
 * The budget is held deterministically by a request that declares its length and sends only part
 * of its body, on a raw socket.
 */
import { connect, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { captureLogger, policyFor, testGatewayConfig } from '../support/gateway-harness';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(60_000);

const BUDGET = 100_000;
/** A valid affine request padded with JSON whitespace to this many bytes: two do not fit the budget. */
const SIZE = 60_000;
const padded = (): string => JSON.stringify(affineRequest()).padEnd(SIZE, ' ');

let ca: DevCa;
let small: RunningEnclave;
const sockets: Socket[] = [];

beforeAll(async () => {
  ca = await createDevCa();
  small = await startEnclave({ models: tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-busy-'))), devCa: ca, host: '127.0.0.1', http: { maxPendingBytes: BUDGET, maxBodyBytes: 64_000 } });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await small?.close();
});

async function issued(enclave: RunningEnclave): Promise<number> {
  return ((await (await fetch(`${enclave.url}/health`)).json()) as { receipts_issued: number }).receipts_issued;
}

/**
 * Opens a request to `enclave` of SIZE bytes and sends `sent` of them, with the length declared or
 * (`chunked`) in a first chunk; `rest()` sends the others and reads the answer's status.
 */
async function holding(enclave: RunningEnclave, sent: number, chunked = false): Promise<{ rest: () => Promise<number> }> {
  const { port } = new URL(enclave.url);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  await new Promise((r) => socket.once('connect', r));
  const body = padded();
  const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
  const head = `POST /v2/models/affine/infer HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${SIZE}`}\r\n\r\n`;
  socket.write(head + (chunked ? chunk(body.slice(0, sent)) : body.slice(0, sent)));
  // The enclave has read the head (and taken the declared bytes) once it answers a request after it.
  await fetch(`${enclave.url}/health`);
  await new Promise((r) => setTimeout(r, 100));
  return {
    rest: () =>
      new Promise<number>((resolve) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
          if (m) resolve(Number(m[1]));
        });
        socket.write(chunked ? `${chunk(body.slice(sent))}0\r\n\r\n` : body.slice(sent));
      }),
  };
}

async function postTo(url: string): Promise<{ status: number; code?: string; connection: string | null; receipt: string | null }> {
  const res = await fetch(`${url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: padded() });
  const text = await res.text();
  return { status: res.status, ...(res.status !== 200 ? { code: (JSON.parse(text) as { code: string }).code } : {}), connection: res.headers.get('connection'), receipt: res.headers.get('teegate-receipt') };
}

it('refuses a request past the held bytes with 429 ENCLAVE_BUSY, spends no number, and takes it once the holder is answered', async () => {
  const before = await issued(small);
  const holder = await holding(small, 10);
  expect(await postTo(small.url)).toEqual({ status: 429, code: 'ENCLAVE_BUSY', connection: 'close', receipt: null });
  expect(await issued(small)).toBe(before);
  expect(await holder.rest()).toBe(200);
  const after = await postTo(small.url);
  expect({ status: after.status, receipt: typeof after.receipt }).toEqual({ status: 200, receipt: 'string' });
  expect(await issued(small)).toBe(before + 2);
});

it('takes a request that exactly fills what the budget has left, and refuses one a byte larger', async () => {
  const holder = await holding(small, 10);
  const post = async (size: number): Promise<[number, string | null]> => {
    const res = await fetch(`${small.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()).padEnd(size, ' ') });
    const text = await res.text();
    return [res.status, res.status === 200 ? null : (JSON.parse(text) as { code: string }).code];
  };
  expect(await post(BUDGET - SIZE + 1)).toEqual([429, 'ENCLAVE_BUSY']);
  expect(await post(BUDGET - SIZE)).toEqual([200, null]);
  expect(await holder.rest()).toBe(200);
});

it('counts a chunked body as it arrives: the bytes already read are held', async () => {
  const before = await issued(small);
  const holder = await holding(small, 50_000, true);
  expect(await postTo(small.url)).toEqual({ status: 429, code: 'ENCLAVE_BUSY', connection: 'close', receipt: null });
  expect(await holder.rest()).toBe(200);
  expect((await postTo(small.url)).status).toBe(200);
  expect(await issued(small)).toBe(before + 2);
});

it('starts with a limit equal to the body limit, and refuses one a byte below it or not a whole number', async () => {
  const models = () => tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-busy-')));
  await expect(startEnclave({ models: models(), devCa: ca, host: '127.0.0.1', http: { maxPendingBytes: 63_999, maxBodyBytes: 64_000 } })).rejects.toMatchObject({
    code: 'CONFIG_INVALID',
    message: 'maxPendingBytes (63999) must be a whole number of at least the body limit, 64000 bytes',
  });
  for (const maxPendingBytes of [Number.POSITIVE_INFINITY, 100_000.5]) {
    await expect(startEnclave({ models: models(), devCa: ca, host: '127.0.0.1', http: { maxPendingBytes, maxBodyBytes: 64_000 } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: `maxPendingBytes (${maxPendingBytes}) must be a whole number of at least the body limit, 64000 bytes`,
    });
  }
  const equal = await startEnclave({ models: models(), devCa: ca, host: '127.0.0.1', http: { maxPendingBytes: 64_000, maxBodyBytes: 64_000 } });
  await equal.close();
});

it('refuses to start with a limit below the body limit (a large request would be busy forever)', async () => {
  await expect(startEnclave({ models: tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-busy-'))), devCa: ca, host: '127.0.0.1', http: { maxPendingBytes: 1024, maxBodyBytes: 64_000 } })).rejects.toMatchObject({
    code: 'CONFIG_INVALID',
    message: 'maxPendingBytes (1024) must be a whole number of at least the body limit, 64000 bytes',
  });
});

describe('through the gateway', () => {
  let roomy: RunningEnclave;
  let gateway: RunningGateway | undefined;
  const metrics = new GatewayMetrics({ defaultMetrics: false });

  beforeAll(async () => {
    roomy = await startEnclave({ models: tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-busy-'))), devCa: ca, host: '127.0.0.1' });
  });
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });
  afterAll(async () => {
    await roomy?.close();
  });

  async function gatewayOver(enclaves: RunningEnclave[]): Promise<RunningGateway> {
    const config = testGatewayConfig({
      enclaves: enclaves.map((e) => e.url),
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(small.pcrs) },
      auth: { disabled: true },
      log: { store: 'memory' },
      pool: { selection: 'round-robin', healthIntervalMs: 200, healthTimeoutMs: 2000 },
    });
    gateway = await startGateway(config, { logger: captureLogger().logger, metrics });
    // Both enclaves attested and ready before the requests.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const list = ((await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { state: string }[] }).enclaves;
      if (list.length === enclaves.length && list.every((e) => e.state === 'ready')) return gateway;
      if (Date.now() > deadline) throw new Error(`enclaves not ready: ${JSON.stringify(list)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('a busy enclave is passed over for another (not taken out of rotation); with none other, the client gets the 429', async () => {
    const holder = await holding(small, 10);
    const g = await gatewayOver([small, roomy]);
    const before = await issued(small);
    // Round robin: of two requests, one goes to the busy enclave first and is retried on the other.
    const answers = await Promise.all([postTo(g.url), postTo(g.url)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(await issued(small)).toBe(before);
    expect(await metrics.registry.getSingleMetricAsString('teegate_gateway_upstream_retries_total')).toMatch(/reason="enclave_busy"\} [1-9]/);
    const list = ((await (await fetch(`${g.url}/v1/enclaves`)).json()) as { enclaves: { state: string }[] }).enclaves;
    expect(list.map((e) => e.state)).toEqual(['ready', 'ready']);
    await g.close();
    gateway = undefined;

    const alone = await gatewayOver([small]);
    expect(await postTo(alone.url)).toMatchObject({ status: 429, code: 'ENCLAVE_BUSY', receipt: null });
    expect(await holder.rest()).toBe(200);
    expect((await postTo(alone.url)).status).toBe(200);
  });
});
