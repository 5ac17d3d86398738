/**
 * The transparency log service over both stores and its HTTP surface: sequencing, integration and
 * publishing as separate steps, tiles and proofs that verify against signed checkpoints, restart
 * from the store, torn-tail recovery, the typed errors of every route, and the `teegate audit` CLI.
 */
import { makePolicyFile } from '../../attestation/policy-file';
import { execFile } from 'node:child_process';
import { appendFileSync, constants, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toBase64 } from '../../attestation/bytes';
import { openCheckpoint } from '../../attestation/log/checkpoint';
import { decodeEntry, encodeEntry } from '../../attestation/log/entry';
import { parseEntryBundle } from '../../attestation/log/entry-bundle';
import { decodeProof, leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../attestation/log/merkle';
import { generateNoteKey, parseVerifierKey } from '../../attestation/log/signed-note';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import type { LogStorage } from '../../gateway/log/storage/log-storage';
import { PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { TransparencyLog } from '../../gateway/log/transparency-log';
import { bootEnclave, devCa, openFileLog, serveLog, tempDir } from './log-fixtures';

jest.setTimeout(60000);
const run = promisify(execFile);

const stores: [string, () => Promise<LogStorage>][] = [
  ['file', () => FileLogStorage.open(tempDir())],
  ['postgres', () => PostgresLogStorage.open({ schema: `teegate_log_svc_${process.pid}_${Math.floor(Math.random() * 1e6)}` })],
];

describe.each(stores)('%s store', (_name, openStorage) => {
  let storage: LogStorage;
  let log: TransparencyLog;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    storage = await openStorage();
    log = await TransparencyLog.open({ storage, origin: 'svc.teegate/log' });
    const served = await serveLog(log);
    url = `${served.url}/v1/log`;
    close = served.close;
  });
  afterAll(async () => {
    await close();
    if (storage instanceof PostgresLogStorage) await storage.dropSchema();
    await log.close();
  });

  test('sequencing, integration and publishing are separate steps', async () => {
    const indexes = await Promise.all(Array.from({ length: 600 }, (_, i) => log.appendReceipt(`r.${i}.s`)));
    expect(indexes.map((x) => x.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(await storage.sequencedSize()).toBe(600);
    expect(await storage.integratedSize()).toBe(0);
    expect((await fetch(`${url}/checkpoint`)).status).toBe(404);
    expect(await log.integrate()).toBe(600);
    expect(await storage.readCheckpoint()).toBeUndefined();
    const note = await log.publish();
    expect((await fetch(`${url}/checkpoint`)).status).toBe(200);
    expect(await (await fetch(`${url}/checkpoint`)).text()).toBe(note);
  });

  test('tiles, bundles and proofs served over HTTP verify against the signed checkpoint', async () => {
    const key = await parseVerifierKey((await (await fetch(`${url}/key`)).text()).trim());
    const { checkpoint } = await openCheckpoint(await (await fetch(`${url}/checkpoint`)).text(), key);
    expect(checkpoint.size).toBe(600);
    // Level-0 tiles 000, 001 (full) and 002.p/88; their hashes are the leaf hashes of the bundles.
    const leaves: Uint8Array[] = [];
    for (const [tile, bundle, width] of [['000', '000', 256], ['001', '001', 256], ['002.p/88', '002.p/88', 88]] as const) {
      const t = new Uint8Array(await (await fetch(`${url}/tile/0/${tile}`)).arrayBuffer());
      const entries = parseEntryBundle(new Uint8Array(await (await fetch(`${url}/tile/entries/${bundle}`)).arrayBuffer()), width);
      expect(t.length).toBe(width * 32);
      for (let i = 0; i < width; i++) {
        expect(await leafHash(entries[i]!)).toEqual(t.subarray(i * 32, (i + 1) * 32));
        leaves.push(t.slice(i * 32, (i + 1) * 32));
      }
    }
    expect(await rootFromLeafHashes(leaves)).toEqual(checkpoint.rootHash);
    // A level-1 partial tile holds the roots of the two full level-0 tiles.
    const l1 = new Uint8Array(await (await fetch(`${url}/tile/1/000.p/2`)).arrayBuffer());
    expect(l1.subarray(0, 32)).toEqual(await rootFromLeafHashes(leaves.slice(0, 256)));
    // Inclusion and consistency proofs.
    const inc = (await (await fetch(`${url}/proof/inclusion?index=300`)).json()) as { size: number; proof: string[] };
    expect(inc.size).toBe(600);
    await verifyInclusion(leaves[300]!, 300, 600, inc.proof.map((p) => Buffer.from(p, 'base64')), checkpoint.rootHash);
    const old = await rootFromLeafHashes(leaves.slice(0, 77));
    const cons = (await (await fetch(`${url}/proof/consistency?from=77&to=600`)).json()) as { proof: string[] };
    await verifyConsistency(77, 600, cons.proof.map((p) => new Uint8Array(Buffer.from(p, 'base64'))), old, checkpoint.rootHash);
    const entries = (await (await fetch(`${url}/entries?start=598&count=2`)).json()) as { start: number; entries: string[] };
    expect(entries.entries.map((e) => decodeEntry(new Uint8Array(Buffer.from(e, 'base64'))))).toEqual([
      { type: 'receipt', jws: 'r.598.s' },
      { type: 'receipt', jws: 'r.599.s' },
    ]);
    // The in-process API gives the same proof bytes.
    expect((await log.inclusionProof(300, 600)).map((p) => Buffer.from(p).toString('base64'))).toEqual(inc.proof);
    expect(decodeProof(new Uint8Array(0))).toEqual([]);
  });

  test.each([
    ['/tile/0/0001', 400, 'LOG_TILE_PATH_INVALID'],
    ['/tile/0/x000/001', 400, 'LOG_TILE_PATH_INVALID'],
    ['/tile/0/002.p/256', 400, 'LOG_TILE_PATH_INVALID'],
    ['/tile/0/003', 404, 'LOG_NOT_FOUND'],
    ['/tile/0/002', 404, 'LOG_NOT_FOUND'],
    ['/tile/0/002.p/89', 404, 'LOG_NOT_FOUND'],
    ['/tile/entries/002.p/89', 404, 'LOG_NOT_FOUND'],
    ['/entries?start=600&count=1', 400, 'LOG_RANGE_INVALID'],
    ['/entries?start=0&count=257', 400, 'LOG_RANGE_INVALID'],
    ['/entries?start=-1', 400, 'LOG_RANGE_INVALID'],
    ['/entries?start=01', 400, 'LOG_RANGE_INVALID'],
    ['/proof/inclusion?index=600', 400, 'LOG_RANGE_INVALID'],
    ['/proof/inclusion?index=1&size=601', 400, 'LOG_RANGE_INVALID'],
    ['/proof/inclusion?index=abc', 400, 'LOG_RANGE_INVALID'],
    ['/proof/consistency?from=601', 400, 'LOG_RANGE_INVALID'],
    ['/proof/consistency?from=10&to=5', 400, 'LOG_RANGE_INVALID'],
  ])('GET %s answers %d %s', async (path, status, code) => {
    const res = await fetch(`${url}${path}`);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { code: string }).code).toBe(code);
  });

  test('oversized entries are refused before sequencing (LOG_ENTRY_TOO_LARGE)', async () => {
    const before = await storage.sequencedSize();
    await expect(log.appendReceipt('x'.repeat(70000))).rejects.toMatchObject({ code: 'LOG_ENTRY_TOO_LARGE' });
    expect(await storage.sequencedSize()).toBe(before);
  });
});

test.each(stores)('%s store: the background loop grows the tree only when a checkpoint is due', async (_name, openStorage) => {
  const storage = await openStorage();
  const log = await TransparencyLog.open({ storage, origin: 'sched.teegate/log', integrateIntervalMs: 10, publishIntervalMs: 60_000, publishEveryEntries: 5 });
  const settle = () => new Promise((r) => setTimeout(r, 150));
  try {
    log.start();
    await settle();
    expect((await log.checkpoint()).size).toBe(0); // the first tick publishes the empty tree
    await Promise.all(Array.from({ length: 3 }, (_, i) => log.appendReceipt(`s.${i}.x`)));
    await settle();
    // 3 waiting, fewer than publishEveryEntries and long before publishIntervalMs: nothing yet.
    expect(await storage.integratedSize()).toBe(0);
    expect((await log.checkpoint()).size).toBe(0);
    await Promise.all(Array.from({ length: 2 }, (_, i) => log.appendReceipt(`t.${i}.x`)));
    await settle();
    expect(await storage.integratedSize()).toBe(5);
    expect((await log.checkpoint()).size).toBe(5);
  } finally {
    if (storage instanceof PostgresLogStorage) await storage.dropSchema();
    await log.close();
  }
});

test('postgres store: a proof request on a replica that lags the shared store syncs incrementally, also when its own integration gets in first', async () => {
  const schema = `teegate_log_replica_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const { signerKey } = await generateNoteKey('replica.teegate/log');
  const storageA = await PostgresLogStorage.open({ schema });
  let tileReads = 0;
  const readTile = storageA.readTile.bind(storageA);
  storageA.readTile = (level, index) => (tileReads++, readTile(level, index));
  const a = await TransparencyLog.open({ storage: storageA, origin: 'replica.teegate/log', signerKey });
  const b = await TransparencyLog.open({ storage: await PostgresLogStorage.open({ schema }), origin: 'replica.teegate/log', signerKey });
  try {
    const n = 256 * 20; // twenty full level-0 tiles in a's tree
    await Promise.all(Array.from({ length: n }, (_, i) => a.appendReceipt(`a.${i}.x`)));
    await a.flush();
    for (let i = 0; i < 300; i++) await b.appendReceipt(`b.${i}.x`);
    await b.flush(); // the store is at n + 300, a's tree at n
    for (let i = 0; i < 10; i++) await b.appendReceipt(`c.${i}.x`); // sequenced, not integrated
    tileReads = 0;
    const integrating = a.integrate(); // first in a's queue: takes its tree to n + 310
    const proof = a.inclusionProof(5, n + 300); // saw n < n + 300, so it queues a sync behind that
    expect(await integrating).toBe(n + 310);
    expect((await proof).length).toBeGreaterThan(0);
    expect(tileReads).toBeLessThanOrEqual(2); // the tile holding n..n+300, not all twenty again
  } finally {
    await a.close();
    await b.close();
    const drop = await PostgresLogStorage.open({ schema });
    await drop.dropSchema();
    await drop.close();
  }
});

(process.platform === 'linux' ? test : test.skip)('file store: entries.log is open for synchronous data writes (O_DSYNC), so an acknowledged append is on disk', async () => {
  const dir = tempDir();
  const storage = await FileLogStorage.open(dir);
  try {
    const path = join(dir, 'entries.log');
    const fd = readdirSync('/proc/self/fd').find((n) => {
      try {
        return readlinkSync(`/proc/self/fd/${n}`) === path;
      } catch {
        return false;
      }
    });
    expect(fd).toBeDefined();
    const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    expect(flags & constants.O_DSYNC).toBe(constants.O_DSYNC);
    expect(flags & constants.O_APPEND).toBe(constants.O_APPEND);
  } finally {
    await storage.close();
  }
});

/** A file log in a new folder holding `count` receipts, integrated and checkpointed, then closed. */
async function closedFileLog(count: number): Promise<{ dir: string; note: string; verifierKey: string }> {
  const dir = tempDir();
  const log = await openFileLog(dir);
  await Promise.all(Array.from({ length: count }, (_, i) => log.appendReceipt(`r.${i}.x`)));
  const note = await log.flush();
  await log.close();
  return { dir, note, verifierKey: log.verifierKey };
}

test('file store: a damaged record below the integrated size is refused, not cut off with everything after it', async () => {
  const { dir } = await closedFileLog(50);
  const path = join(dir, 'entries.log');
  const before = readFileSync(path);
  const damaged = Buffer.from(before);
  damaged[8 + 3] = damaged[8 + 3]! ^ 0x01; // a bit of entry 0's payload: its CRC no longer matches
  writeFileSync(path, damaged);
  await expect(openFileLog(dir)).rejects.toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringContaining(`${path} is damaged: the record at byte 0 (entry 0) does not read back, and 50 entries were integrated`) });
  expect(readFileSync(path)).toEqual(damaged); // nothing was truncated
  writeFileSync(path, before);
  const again = await openFileLog(dir);
  expect(await again.storage.sequencedSize()).toBe(50);
  await again.close();
});

test('file store: a checkpoint file that is not a checkpoint of the stored tree is ignored and replaced by one of the same tree', async () => {
  const { dir, note, verifierKey } = await closedFileLog(20);
  const key = await parseVerifierKey(verifierKey);
  const was = (await openCheckpoint(note, key)).checkpoint;
  // Garbage, and a well-formed note claiming a larger tree than was integrated (which, if trusted,
  // would keep every smaller, real checkpoint from being stored).
  const beyond = note.replace(`\n${was.size}\n`, '\n999999\n');
  for (const bad of ['garbage\n', beyond]) {
    writeFileSync(join(dir, 'checkpoint'), bad);
    const again = await openFileLog(dir);
    await expect(again.checkpoint()).rejects.toMatchObject({ code: 'LOG_NOT_FOUND' });
    const renewed = await again.flush();
    const now = (await openCheckpoint(renewed, key)).checkpoint;
    expect([now.size, toBase64(now.rootHash)]).toEqual([was.size, toBase64(was.rootHash)]);
    expect(readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(renewed);
    await again.close();
  }
});

test('file store: a damaged tile is refused at open rather than signed into a fork', async () => {
  const { dir } = await closedFileLog(30);
  const tile = join(dir, 'tiles', '0', '0'); // the file store keeps the widest version of each tile
  const bytes = readFileSync(tile);
  bytes[5 * 32] = bytes[5 * 32]! ^ 0x80; // the leaf hash of entry 5
  writeFileSync(tile, bytes);
  await expect(openFileLog(dir)).rejects.toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringContaining('the stored tiles do not lead to the root of the last checkpoint (tree size 30)') });
});

test('file store: a log key file that is not a signer key is refused naming where the key came from', async () => {
  const dir = tempDir();
  const first = await openFileLog(dir);
  await first.close();
  writeFileSync(join(dir, 'log-signing.key'), 'garbage\n');
  await expect(openFileLog(dir)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: 'the log key the store keeps (log-signing.key in a file store): signer key does not start with PRIVATE+KEY+' });
  await expect(openFileLog(tempDir(), 'test.teegate/log', 'PRIVATE+KEY+x')).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/^the configured log key \(log\.signerKey\): /) });
});

test('file store: a closed log refuses appends with GATEWAY_SHUTTING_DOWN and stores nothing more', async () => {
  const dir = tempDir();
  const log = await openFileLog(dir);
  expect((await log.appendReceipt('before.close.x')).index).toBe(0);
  await log.close();
  await expect(log.appendReceipt('after.close.x')).rejects.toMatchObject({ code: 'GATEWAY_SHUTTING_DOWN', message: 'the transparency log is closed' });
  await expect(log.appendAttestation(new Uint8Array([1]), {})).rejects.toMatchObject({ code: 'GATEWAY_SHUTTING_DOWN' });
  const reopened = await openFileLog(dir);
  expect(await reopened.storage.sequencedSize()).toBe(1);
  await reopened.close();
});

test('file store: restart keeps entries, tiles, checkpoint and key; a torn tail is cut off', async () => {
  const dir = tempDir();
  const first = await openFileLog(dir);
  await Promise.all(Array.from({ length: 300 }, (_, i) => first.appendReceipt(`a.${i}.b`)));
  const note = await first.flush();
  const key = first.verifierKey;
  await first.close();
  // A crash in the middle of an unacknowledged write: a record cut short.
  appendFileSync(join(dir, 'entries.log'), Buffer.from([0x00, 0x00, 0x01, 0x00, 1, 2, 3, 4, 5]));
  const second = await openFileLog(dir);
  expect(second.verifierKey).toBe(key);
  expect((await second.checkpoint()).note).toBe(note);
  expect(await second.storage.sequencedSize()).toBe(300);
  expect((await second.append({ type: 'receipt', jws: 'after.restart.x' })).index).toBe(300);
  const note2 = await second.flush();
  const pub = await parseVerifierKey(key);
  const old = (await openCheckpoint(note, pub)).checkpoint;
  const now = (await openCheckpoint(note2, pub)).checkpoint;
  await verifyConsistency(old.size, now.size, await second.consistencyProof(old.size, now.size), old.rootHash, now.rootHash);
  const proof = await second.inclusionProof(300, 301);
  await verifyInclusion(await leafHash(encodeEntry({ type: 'receipt', jws: 'after.restart.x' })), 300, 301, proof, now.rootHash);
  await second.close();
  await expect(openFileLog(dir, 'other.origin/log')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
});

test('teegate audit: passes, keeps state, then fails with exit 1 naming the index', async () => {
  const ca = await devCa();
  const enclave = await bootEnclave(ca);
  const dir = tempDir();
  const log = await openFileLog(dir);
  await log.appendAttestation(enclave.document, enclave.manifest);
  for (let i = 0; i < 3; i++) await log.appendReceipt(await enclave.receipt());
  await log.flush();
  const served = await serveLog(log);
  const root = join(dir, 'root.pem');
  const state = join(dir, 'state.json');
  const policy = join(dir, 'policy.json');
  writeFileSync(root, ca.rootPem);
  writeFileSync(policy, JSON.stringify(makePolicyFile({ 0: enclave.pcr0 })));
  const cli = join(__dirname, '..', '..', 'bin', 'teegate');
  const args = ['audit', '--url', served.url, '--root', root, '--state', state, '--policy', policy];
  try {
    const ok = await run(process.execPath, [cli, ...args, '--json']);
    const report = JSON.parse(ok.stdout.trim().split('\n').pop()!) as { ok: boolean; images: { pcr0: string; receipts: number }[] };
    expect(report.ok).toBe(true);
    expect(report.images).toEqual([expect.objectContaining({ pcr0: enclave.pcr0, boots: 1, receipts: 3, gaps: [] })]);
    expect(JSON.parse(readFileSync(state, 'utf8')).checkpoint.size).toBe(4);

    const text = await run(process.execPath, [cli, ...args]);
    expect(text.stdout).toMatch(/PASSED/);

    // A receipt of an enclave whose boot attestation is not logged.
    const other = await bootEnclave(ca, 0x33);
    await log.appendReceipt(await other.receipt());
    await log.flush();
    const failed = await run(process.execPath, [cli, ...args]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED AUDIT_ATTESTATION_MISSING at entry 4:/);
    // Bad options are usage errors (exit 2).
    const usage = await run(process.execPath, [cli, 'audit']).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    expect(usage).toBe(2);
  } finally {
    await served.close();
    await log.close();
  }
});
