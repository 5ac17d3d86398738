/**
 * Issue 6 with real gateway processes: two gateways (gateway/main.ts, each its own process) serve
 * inference from one enclave and append every receipt to ONE PostgreSQL-backed transparency log.
 * One gateway is killed with SIGKILL under load and restarted. Every receipt a client got with a
 * log index must be in the log at that index, and every checkpoint published before the kill must
 * be a prefix of the log afterwards (checked by recomputing the tree and by the log's own proofs).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBase64, toHex } from '../../attestation/bytes';
import { importDevCa, type DevCaJson } from '../../attestation/dev/dev-ca';
import { openCheckpoint } from '../../attestation/log/checkpoint';
import { decodeEntry } from '../../attestation/log/entry';
import { MerkleTree, verifyConsistency } from '../../attestation/log/merkle';
import { generateNoteKey, parseVerifierKey } from '../../attestation/log/signed-note';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { REPO_ROOT } from '../../enclave/measurement';
import { PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { nodeSha256 } from '../../gateway/log/transparency-log';
import { startChildService, type ChildService } from '../../infra/dev-stack/child-service';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(180_000);

const RUN_TS = join(REPO_ROOT, 'bin', 'run-ts');
const PG_URL = process.env.TEEGATE_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = () => undefined;
const services: ChildService[] = [];

afterAll(async () => {
  for (const s of services) await s.stop(2000).catch(() => undefined);
});

function leaf(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(Buffer.from([0])).update(bytes).digest();
}

/** Keeps `concurrency` inferences in flight through `gateway`; records index → receipt of every 200. */
function inferenceLoad(url: string, concurrency: number): { acked: Map<number, string>; stop: () => Promise<void> } {
  const acked = new Map<number, string>();
  const body = JSON.stringify(affineRequest());
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        if (res.status !== 200) continue;
        const out = (await res.json()) as { parameters: { log_index: number; receipt: string } };
        acked.set(out.parameters.log_index, out.parameters.receipt);
      } catch {
        await sleep(5); // the gateway was killed: its requests fail; nothing is acknowledged
      }
    }
  });
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

function watchCheckpoints(url: string): { notes: string[]; stop: () => void } {
  const notes: string[] = [];
  const timer = setInterval(() => {
    fetch(`${url}/v1/log/checkpoint`)
      .then(async (r) => {
        const note = await r.text();
        if (r.status === 200 && notes[notes.length - 1] !== note) notes.push(note);
      })
      .catch(() => undefined);
  }, 25);
  return { notes, stop: () => clearInterval(timer) };
}

test('two gateway processes share one PostgreSQL log; SIGKILL of one under load loses no acknowledged receipt and forks no checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-gw-crash-'));
  const modelsFile = join(dir, 'models.json');
  writeFileSync(modelsFile, JSON.stringify(tinyModelConfigs(dir)));
  const enclave = await startChildService('enclave', [RUN_TS, join(REPO_ROOT, 'enclave', 'cli.ts'), '--port', '0', '--data', dir, '--models', modelsFile], { onLog: quiet, readyTimeoutMs: 120_000 });
  services.push(enclave);
  const ca = await importDevCa(JSON.parse(readFileSync(join(dir, 'dev-ca.json'), 'utf8')) as DevCaJson);
  const boot = (await (await fetch(`${enclave.url}/attestation`)).json()) as { document: string };
  const pcr0 = toHex((await verifyAttestation(fromBase64(boot.document), { rootCertificates: [ca.rootPem] })).pcrs.get(0)!);

  const schema = `teegate_gw_crash_${process.pid}_${Date.now() % 100000}`;
  const { signerKey, verifierKey } = await generateNoteKey('crash.teegate/log');
  const configFile = join(dir, 'gateway.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      port: 0,
      enclaves: [enclave.url],
      attestation: { rootCertificates: [ca.rootPem], policy: { pcrs: { 0: pcr0 } } },
      auth: { disabled: true },
      limits: { rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 } },
      log: { store: 'postgres', postgresUrl: PG_URL, postgresSchema: schema, signerKey, origin: 'crash.teegate/log' },
      logLevel: 'warn',
    }),
  );
  const startGatewayProcess = async (name: string) => {
    const g = await startChildService(name, [RUN_TS, join(REPO_ROOT, 'gateway', 'main.ts'), '--config', configFile], { onLog: quiet, readyTimeoutMs: 60_000 });
    services.push(g);
    return g;
  };
  try {
    const [one, two] = await Promise.all([startGatewayProcess('gateway-1'), startGatewayProcess('gateway-2')]);
    const loadOne = inferenceLoad(one!.url, 8);
    const loadTwo = inferenceLoad(two!.url, 8);
    const watch = watchCheckpoints(one!.url);
    await sleep(2500);
    one!.process.kill('SIGKILL');
    await loadOne.stop();
    await sleep(500);
    await loadTwo.stop();
    watch.stop();
    expect(loadOne.acked.size).toBeGreaterThan(20);
    expect(loadTwo.acked.size).toBeGreaterThan(20);
    expect(watch.notes.length).toBeGreaterThan(1);
    // One log: the two gateways never acknowledged the same index.
    for (const i of loadOne.acked.keys()) expect(loadTwo.acked.has(i)).toBe(false);
    const acked = new Map([...loadOne.acked, ...loadTwo.acked]);

    // The killed gateway restarts on the same log.
    const again = await startGatewayProcess('gateway-1-restarted');
    const key = await parseVerifierKey(verifierKey);
    const needed = Math.max(...acked.keys()) + 1;
    let now = (await openCheckpoint(await (await fetch(`${again.url}/v1/log/checkpoint`)).text(), key)).checkpoint;
    for (let i = 0; now.size < needed && i < 300; i++) {
      await sleep(100);
      now = (await openCheckpoint(await (await fetch(`${again.url}/v1/log/checkpoint`)).text(), key)).checkpoint;
    }
    expect(now.size).toBeGreaterThanOrEqual(needed);

    const entries: Uint8Array[] = [];
    for (let start = 0; start < now.size; start += 256) {
      const r = await fetch(`${two!.url}/v1/log/entries?start=${start}&count=${Math.min(256, now.size - start)}`);
      expect(r.status).toBe(200);
      for (const e of ((await r.json()) as { entries: string[] }).entries) entries.push(new Uint8Array(Buffer.from(e, 'base64')));
    }
    for (const [index, jws] of acked) expect(decodeEntry(entries[index]!)).toEqual({ type: 'receipt', jws });

    const tree = new MerkleTree(nodeSha256);
    await tree.appendAll(entries.map(leaf));
    expect(Buffer.from(await tree.root(now.size))).toEqual(Buffer.from(now.rootHash));
    for (const note of watch.notes) {
      const { checkpoint: old } = await openCheckpoint(note, key);
      expect(Buffer.from(await tree.root(old.size))).toEqual(Buffer.from(old.rootHash));
      const r = await fetch(`${again.url}/v1/log/proof/consistency?from=${old.size}&to=${now.size}`);
      const proof = ((await r.json()) as { proof: string[] }).proof.map((p) => new Uint8Array(Buffer.from(p, 'base64')));
      await verifyConsistency(old.size, now.size, proof, old.rootHash, now.rootHash);
    }
  } finally {
    const storage = await PostgresLogStorage.open({ url: PG_URL, schema });
    await storage.dropSchema();
    await storage.close();
  }
});
