/**
 * Acceptance: two enclave processes (enclave/cli.ts, dev NSM, one dev CA) behind the gateway under
 * constant load. One is killed with SIGKILL: requests fail over, none hangs, the only failures are
 * the requests in flight on the killed process (502 UPSTREAM_OUTCOME_UNKNOWN). It is restarted on
 * the same port: the gateway re-attests it, logs its new boot attestation, and only then sends it
 * traffic again; its receipts verify against that new attestation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { DevCa } from '../../attestation/dev/dev-ca';
import { verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt } from '../../attestation/receipt';
import { receiptIssuer } from '../../attestation/client/infer';
import type { InferTensor } from '../../attestation/tensors';
import { loadOrCreateDevCa } from '../../enclave/main';
import { measureDevEnclave } from '../../enclave/measurement';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { createLogger } from '../../gateway/observability/logger';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { toHex } from '../../attestation/bytes';
import { testGatewayConfig, testModelConfigs } from '../support/gateway-harness';
import { affineRequest } from '../support/tiny-models';

jest.setTimeout(120_000);

const REPO = join(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'teegate-failover-'));
let ca: DevCa;
let modelsFile: string;
const children = new Set<ChildProcess>();
let gateway: RunningGateway;
let sink: MemoryReceiptSink;

async function spawnEnclave(port = 0): Promise<{ child: ChildProcess; url: string; bootId: string }> {
  const child = spawn(process.execPath, [join(REPO, 'bin/run-ts'), join(REPO, 'enclave/cli.ts'), '--port', String(port), '--host', '127.0.0.1', '--data', dir, '--models', modelsFile], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.stderr!.resume();
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('enclave did not start')), 60_000);
    child.once('exit', (code) => reject(new Error(`enclave exited with ${code}`)));
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { event: string; url: string; boot_id: string };
      if (event.event === 'ready') {
        clearTimeout(timer);
        resolve({ child, url: event.url, bootId: event.boot_id });
      }
    });
  });
}

interface Outcome {
  readonly start: number;
  readonly status: number | 'hung' | 'error';
  readonly code?: string;
  readonly enclave?: string | null;
  readonly receipt?: string;
  readonly logIndex?: number;
  readonly outputs?: InferTensor[];
  readonly salt?: string;
}

async function one(url: string): Promise<Outcome> {
  const start = Date.now();
  try {
    const res = await fetch(`${url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()), signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { code?: string; outputs?: InferTensor[]; parameters?: { receipt: string; salt: string; log_index: number } };
    return { start, status: res.status, ...(body.code ? { code: body.code } : {}), enclave: res.headers.get('teegate-enclave'), ...(body.parameters ? { receipt: body.parameters.receipt, logIndex: body.parameters.log_index, salt: body.parameters.salt, outputs: body.outputs! } : {}) };
  } catch (err) {
    return { start, status: (err as Error).name === 'TimeoutError' ? 'hung' : 'error', code: String(err) };
  }
}

/** `workers` clients sending back to back until `stop()` resolves. */
function load(url: string, workers: number): { outcomes: Outcome[]; stop: () => Promise<void> } {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) outcomes.push(await one(url));
  });
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function enclaveList(): Promise<{ id: string; state: string; boot_id?: string }[]> {
  return ((await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { id: string; state: string; boot_id?: string }[] }).enclaves;
}

beforeAll(async () => {
  ca = await loadOrCreateDevCa(join(dir, 'dev-ca.json'));
  const models = testModelConfigs(dir);
  modelsFile = join(dir, 'models.json');
  writeFileSync(modelsFile, JSON.stringify(models));
  const pcrs = await measureDevEnclave(models);
  sink = new MemoryReceiptSink();
  const [a, b] = await Promise.all([spawnEnclave(), spawnEnclave()]);
  gateway = await startGateway(
    testGatewayConfig({
      enclaves: [a.url, b.url],
      attestation: { rootCertificates: [ca.rootPem], policy: { pcrs: { 0: toHex(pcrs.get(0)!), 1: toHex(pcrs.get(1)!), 2: toHex(pcrs.get(2)!) } } },
      auth: { disabled: true },
      limits: { rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } },
      pool: { healthIntervalMs: 200, healthTimeoutMs: 2000 },
    }),
    { sink, metrics: new GatewayMetrics({ defaultMetrics: false }), logger: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) },
  );
  (globalThis as { enclaveA?: { child: ChildProcess; url: string; bootId: string } }).enclaveA = a;
});

afterAll(async () => {
  await gateway?.close();
  for (const child of children) child.kill('SIGKILL');
});

it('fails over when an enclave process is killed under load, and re-attests it when it comes back', async () => {
  const a = (globalThis as { enclaveA?: { child: ChildProcess; url: string; bootId: string } }).enclaveA!;
  expect((await enclaveList()).map((e) => e.state)).toEqual(['ready', 'ready']);
  const workers = 6;
  const run = load(gateway.url, workers);
  await sleep(1500);
  const killedAt = Date.now();
  a.child.kill('SIGKILL');
  await sleep(1500);
  const port = Number(new URL(a.url).port);
  const restartedAt = Date.now();
  const back = await spawnEnclave(port);
  expect(back.bootId).not.toBe(a.bootId);
  const deadline = Date.now() + 20_000;
  while ((await enclaveList())[0]!.boot_id !== back.bootId || (await enclaveList())[0]!.state !== 'ready') {
    if (Date.now() > deadline) throw new Error(`restarted enclave ${back.bootId} was not re-admitted within 20 s; the gateway lists ${JSON.stringify(await enclaveList())}`);
    await sleep(50);
  }
  await sleep(1500);
  await run.stop();
  const { outcomes } = run;

  if (process.env.TEEGATE_TEST_VERBOSE) process.stderr.write(`${JSON.stringify({ total: outcomes.length, failures: outcomes.filter((o) => o.status !== 200).length, codes: [...new Set(outcomes.map((o) => o.code))] })}\n`);
  // Nothing hung, nothing failed but the requests in flight on the killed process.
  expect(outcomes.filter((o) => o.status === 'hung' || o.status === 'error')).toEqual([]);
  const failures = outcomes.filter((o) => o.status !== 200);
  for (const f of failures) expect(f).toMatchObject({ status: 502, code: 'UPSTREAM_OUTCOME_UNKNOWN' });
  expect(failures.length).toBeLessThanOrEqual(workers);
  for (const f of failures) expect(f.start).toBeLessThan(killedAt + 50);
  expect(outcomes.filter((o) => o.start > killedAt && o.start < restartedAt && o.status === 200).length).toBeGreaterThan(10);
  expect(outcomes.length).toBeGreaterThan(100);

  // While it was down, only enclave-1 served.
  expect(new Set(outcomes.filter((o) => o.start > killedAt + 100 && o.start < restartedAt).map((o) => o.enclave))).toEqual(new Set(['enclave-1']));

  // After the restart, enclave-0 serves again, under its new boot id, only after its new attestation was logged.
  const fromNewBoot = outcomes.filter((o) => o.receipt && receiptIssuer(o.receipt) === back.bootId);
  expect(fromNewBoot.length).toBeGreaterThan(5);
  expect(new Set(fromNewBoot.map((o) => o.enclave))).toEqual(new Set(['enclave-0']));
  const attIndex = sink.entries.findIndex((e) => e.type === 'attestation' && (e.manifest as EnclaveManifest).boot_id === back.bootId);
  expect(attIndex).toBeGreaterThan(0);
  const entry = sink.entries[attIndex] as { document: Uint8Array; manifest: unknown };
  const attestation = await verifyAttestation(entry.document, { rootCertificates: [ca.rootPem] });
  const manifest = await verifyManifestBinding(attestation, entry.manifest);
  for (const o of fromNewBoot.slice(0, 5)) {
    expect(o.logIndex!).toBeGreaterThan(attIndex);
    await verifyReceipt({ receipt: o.receipt!, attestation, manifest, inputs: affineRequest().inputs, outputs: o.outputs!, salt: o.salt!, sealed: false });
  }
  // Every receipt in the log belongs to a boot whose attestation was logged before it.
  const attestedAt = new Map<string, number>();
  for (const e of sink.entries) {
    if (e.type === 'attestation') attestedAt.set((e.manifest as EnclaveManifest).boot_id, e.index);
    else expect(attestedAt.has(receiptIssuer(e.jws) ?? '')).toBe(true);
  }
});
