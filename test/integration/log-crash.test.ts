/**
 * No acknowledged entry is lost: a log server (the real router and storage in a child process) is
 * killed with SIGKILL during a load of concurrent appends, restarted on the same store, and must
 * hold every acknowledged index with its entry, in a tree consistent with every checkpoint it
 * published before the kill. Run for the embedded file store and for PostgreSQL, where two
 * replicas append concurrently to one log.
 */
import { createHash } from 'node:crypto';
import { openCheckpoint } from '../../attestation/log/checkpoint';
import { decodeEntry } from '../../attestation/log/entry';
import { MerkleTree, verifyConsistency, verifyInclusion } from '../../attestation/log/merkle';
import { generateNoteKey, parseVerifierKey } from '../../attestation/log/signed-note';
import { PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { nodeSha256 } from '../../gateway/log/transparency-log';
import { tempDir } from './log-fixtures';
import { appendLoad, call, kill, readAllEntries, startChild, watchCheckpoints, type Child } from './log-child';

jest.setTimeout(120000);

const children: Child[] = [];
afterAll(async () => {
  for (const c of children) await kill(c, 'SIGKILL');
});

async function start(env: Record<string, string>): Promise<Child> {
  const c = await startChild(env);
  children.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function leaf(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(Buffer.from([0])).update(bytes).digest();
}

/** Checks the restarted log against everything acknowledged and published before the kill. */
async function checkSurvivors(child: Child, verifierKey: string, acked: Map<number, string>, notes: readonly string[]): Promise<number> {
  const flushed = await call(child, 'POST', '/test/flush');
  expect(flushed.status).toBe(200);
  const key = await parseVerifierKey(verifierKey);
  const { checkpoint: now } = await openCheckpoint(flushed.body.toString(), key);
  const entries = await readAllEntries(child, now.size);
  for (const [index, payload] of acked) {
    expect(index).toBeLessThan(now.size);
    const entry = decodeEntry(entries[index]!);
    expect(entry).toEqual({ type: 'receipt', jws: payload });
  }
  // Recompute the tree from the entries: it is the tree of the new checkpoint...
  const tree = new MerkleTree(nodeSha256);
  await tree.appendAll(entries.map(leaf));
  expect(Buffer.from(await tree.root(now.size))).toEqual(Buffer.from(now.rootHash));
  // ...and every checkpoint published before the kill is a prefix of it, also by the log's own proofs.
  for (const note of notes) {
    const { checkpoint: old } = await openCheckpoint(note, key);
    expect(Buffer.from(await tree.root(old.size))).toEqual(Buffer.from(old.rootHash));
    const r = await call(child, 'GET', `/v1/log/proof/consistency?from=${old.size}&to=${now.size}`);
    const proof = (JSON.parse(r.body.toString()) as { proof: string[] }).proof.map((p) => new Uint8Array(Buffer.from(p, 'base64')));
    await verifyConsistency(old.size, now.size, proof, old.rootHash, now.rootHash);
  }
  // Spot-check inclusion proofs from the server.
  for (const index of [...acked.keys()].slice(0, 20)) {
    const r = await call(child, 'GET', `/v1/log/proof/inclusion?index=${index}&size=${now.size}`);
    const proof = (JSON.parse(r.body.toString()) as { proof: string[] }).proof.map((p) => new Uint8Array(Buffer.from(p, 'base64')));
    await verifyInclusion(leaf(entries[index]!), index, now.size, proof, now.rootHash);
  }
  return now.size;
}

test('file store: SIGKILL during appends loses no acknowledged entry and forks no checkpoint', async () => {
  const dir = tempDir();
  const { signerKey, verifierKey } = await generateNoteKey('test.teegate/log');
  const env = { LOG_STORE: 'file', LOG_DIR: dir, LOG_KEY: signerKey };
  const first = await start(env);
  const load = appendLoad(first, 'a', 32);
  const watch = watchCheckpoints(first, 20);
  await sleep(1500);
  await kill(first, 'SIGKILL');
  watch.stop();
  await load.stop();
  expect(load.acked.size).toBeGreaterThan(100);
  expect(watch.notes.length).toBeGreaterThan(1);

  const second = await start(env);
  const size = await checkSurvivors(second, verifierKey, load.acked, watch.notes);
  expect(size).toBeGreaterThanOrEqual(load.acked.size);
  // The log keeps working after the restart.
  const more = appendLoad(second, 'b', 4);
  await sleep(200);
  await more.stop();
  const all = new Map([...load.acked, ...more.acked]);
  await checkSurvivors(second, verifierKey, all, watch.notes);
  await kill(second, 'SIGTERM');
});

test('PostgreSQL: two replicas append concurrently to one log; SIGKILL of one loses nothing', async () => {
  const schema = `teegate_log_test_${process.pid}_${Date.now() % 100000}`;
  const { signerKey, verifierKey } = await generateNoteKey('test.teegate/log');
  const env = { LOG_STORE: 'postgres', LOG_SCHEMA: schema, LOG_KEY: signerKey };
  try {
    const [one, two] = await Promise.all([start(env), start(env)]);
    const loadOne = appendLoad(one!, 'one', 16);
    const loadTwo = appendLoad(two!, 'two', 16);
    const watch = watchCheckpoints(one!, 20);
    await sleep(1500);
    await kill(one!, 'SIGKILL');
    await loadOne.stop();
    await sleep(200);
    await loadTwo.stop();
    watch.stop();
    expect(loadOne.acked.size).toBeGreaterThan(50);
    expect(loadTwo.acked.size).toBeGreaterThan(50);
    // Dense, unique indexes across both replicas.
    for (const i of loadOne.acked.keys()) expect(loadTwo.acked.has(i)).toBe(false);
    const all = new Map([...loadOne.acked, ...loadTwo.acked]);
    const size = await checkSurvivors(two!, verifierKey, all, watch.notes);
    expect(size).toBeGreaterThanOrEqual(all.size);

    // A restarted replica sees the same log and checkpoint.
    const three = await start(env);
    const cp3 = await call(three, 'POST', '/test/flush');
    const cp2 = await call(two!, 'GET', '/v1/log/checkpoint');
    const key = await parseVerifierKey(verifierKey);
    expect((await openCheckpoint(cp3.body.toString(), key)).checkpoint.rootHash).toEqual((await openCheckpoint(cp2.body.toString(), key)).checkpoint.rootHash);
    await kill(two!, 'SIGTERM');
    await kill(three, 'SIGTERM');
  } finally {
    const storage = await PostgresLogStorage.open({ schema });
    await storage.dropSchema();
    await storage.close();
  }
});
