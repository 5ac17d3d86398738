/**
 * The gateway's checkpoint cadence comes from its configuration (`log.publishIntervalMs`,
 * `log.publishEveryEntries`): a gateway with its own file log on loopback, a real enclave, and the
 * checkpoints it serves at /v1/log/checkpoint. With an hour's interval, entries wait for the
 * configured count, and the checkpoint that covers them follows the entry that reaches it.
 */
import { createDevCa } from '../../attestation/dev/dev-ca';
import { parseCheckpoint } from '../../attestation/log/checkpoint';
import { parseNote } from '../../attestation/log/signed-note';
import type { RunningEnclave } from '../../enclave/main';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig } from '../support/gateway-harness';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';
import { tempDir } from './log-fixtures';

jest.setTimeout(60_000);

const EVERY = 3;
let enclave: RunningEnclave;
let gateway: RunningGateway;

beforeAll(async () => {
  const ca = await createDevCa();
  enclave = await startTestEnclave(ca, tinyModelConfigs());
  const config = testGatewayConfig({
    enclaves: [enclave.url],
    attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) },
    auth: { disabled: true },
    log: { store: 'file', dataDir: tempDir('teegate-gw-cadence-'), publishIntervalMs: 3_600_000, publishEveryEntries: EVERY },
  });
  expect(config.log).toMatchObject({ publishIntervalMs: 3_600_000, publishEveryEntries: EVERY });
  gateway = await startGateway(config, { logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) });
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
});

/** The size of the checkpoint the gateway serves, or undefined before the first one. */
async function checkpointSize(): Promise<number | undefined> {
  const res = await fetch(`${gateway.url}/v1/log/checkpoint`);
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return parseCheckpoint(parseNote(await res.text()).text).size;
}

async function until<T>(read: () => Promise<T | undefined>, done: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (v !== undefined && done(v)) return v;
    if (Date.now() > deadline) throw new Error(`not reached within ${ms} ms (last: ${String(v)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function infer(): Promise<number> {
  const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { parameters: { log_index: number } }).parameters.log_index;
}

it('publishes when log.publishEveryEntries entries wait, not on the default 1 s interval', async () => {
  // The first checkpoint is published at start; everything after it waits.
  const first = await until(checkpointSize, () => true, 10_000);
  let index = await infer();
  while (index + 1 - first < EVERY - 1) index = await infer();
  expect(index + 1 - first).toBe(EVERY - 1);
  // One entry short: no checkpoint covers it, well past the default interval (1 s, checked every 100 ms).
  await new Promise((r) => setTimeout(r, 1_600));
  expect(await checkpointSize()).toBe(first);
  // The entry that makes EVERY waiting: a checkpoint covering it follows (the check runs every 100 ms).
  const last = await infer();
  expect(last + 1 - first).toBe(EVERY);
  expect(await until(checkpointSize, (size) => size > first, 10_000)).toBe(last + 1);
});
