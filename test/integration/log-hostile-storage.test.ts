/**
 * The log's storage is untrusted (ARCHITECTURE.md, trust model): whoever edits the stored rows or
 * files must never get the gateway to (a) sign a checkpoint that is not an append-only extension of
 * the last one it signed, (b) serve an entry, tile or proof that does not match its signed
 * checkpoint, or (c) crash, hang or silently lose acknowledged entries. It must refuse instead, with
 * a typed error (LOG_STORAGE_FAILED: the store is at fault, 503, retry).
 *
 * Each test damages a real store (files in a temporary folder, rows in a PostgreSQL database of
 * its own) between or during the log's operations, then keeps using the running log or restarts
 * it, and checks the refusal, or that what the log still serves and signs is what its signed
 * checkpoints hold (with the project's own proof verification, attestation/log/merkle.ts). The
 * honest log is known independently: every entry the test appended, by the index it was
 * acknowledged with.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Pool } from 'pg';
import { isTeegateError } from '../../attestation/errors';
import { openCheckpoint } from '../../attestation/log/checkpoint';
import { encodeEntry } from '../../attestation/log/entry';
import { parseEntryBundle } from '../../attestation/log/entry-bundle';
import { MerkleTree, verifyConsistency, verifyInclusion } from '../../attestation/log/merkle';
import { generateNoteKey, parseSignerKey, parseVerifierKey, signNote, type NoteVerifierKey } from '../../attestation/log/signed-note';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { DEFAULT_PG_URL, PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { nodeSha256, TransparencyLog, type TransparencyLogOptions } from '../../gateway/log/transparency-log';
import { serveLog, type ServedLog } from './log-fixtures';

jest.setTimeout(60_000);

const ORIGIN = 'hostile.teegate/log';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- outcomes ---------------------------------------------------------------------------------

type Outcome<T> = { ok: T } | { refused: { code: string; message: string } };

/** What `fn` did: its value, or the TeegateError it refused with. Any other error (a crash) is rethrown. */
async function attempt<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: await fn() };
  } catch (err) {
    if (isTeegateError(err)) return { refused: { code: err.code, message: err.message } };
    throw err;
  }
}

const STORE_REFUSAL = 'refused LOG_STORAGE_FAILED';

function refusal(o: { refused: { code: string; message: string } }): string {
  return o.refused.code === 'LOG_STORAGE_FAILED' ? STORE_REFUSAL : `refused ${o.refused.code}: ${o.refused.message}`;
}

/** What `p` settled to within `ms`, or that it was still pending (the timer is cleared either way). */
async function within<T>(p: Promise<Outcome<T>>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`still pending after ${ms} ms`), ms)));
  try {
    return await Promise.race([p.then((o) => ('refused' in o ? refusal(o) : 'succeeded')), late]);
  } finally {
    clearTimeout(timer);
  }
}

const entryOf = (jws: string) => encodeEntry({ type: 'receipt', jws });
/** RFC 9162 leaf hash of a receipt entry. */
const leafOf = (jws: string): Uint8Array => createHash('sha256').update(Buffer.from([0])).update(entryOf(jws)).digest();
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** 'the signed entries', a refusal, or what else was served. */
function servedEntries(o: Outcome<Uint8Array[]>, want: readonly string[]): string {
  if ('refused' in o) return refusal(o);
  const wanted = want.map(entryOf);
  if (o.ok.length === wanted.length && o.ok.every((e, i) => same(e, wanted[i]!))) return 'the signed entries';
  return `other entries: ${o.ok.map(text).join(' | ')}`;
}

/** 'the signed hashes', a refusal, or that other hashes were served. */
function servedHashes(o: Outcome<Uint8Array>, want: readonly Uint8Array[]): string {
  if ('refused' in o) return refusal(o);
  const wanted = Buffer.concat(want.map((h) => Buffer.from(h)));
  if (Buffer.from(o.ok).equals(wanted)) return 'the signed hashes';
  const differ = want.map((h, i) => (Buffer.from(o.ok.subarray(i * 32, (i + 1) * 32)).equals(Buffer.from(h)) ? -1 : i)).filter((i) => i >= 0);
  return `other hashes (${o.ok.length / 32} served, ${want.length} signed; differing at ${differ.join(',') || 'none'})`;
}

/** The honest tree: the leaves of the entries the test appended, in the order of their acknowledged indexes. */
async function honestTree(jwss: readonly string[]): Promise<MerkleTree> {
  const tree = new MerkleTree(nodeSha256);
  await tree.appendAll(jwss.map(leafOf));
  return tree;
}

/** The entries acknowledged at indexes 0 .. size - 1, in order; every one of them must have been acknowledged. */
function inIndexOrder(acked: ReadonlyMap<number, string>, size = acked.size): string[] {
  return Array.from({ length: size }, (_, i) => {
    const jws = acked.get(i);
    if (jws === undefined) throw new Error(`index ${i} was never acknowledged`);
    return jws;
  });
}

/**
 * Whether `signed` (what the log signed after the damage) is an append-only extension of
 * `lastNote`, by the consistency proof the log itself serves (what an auditor would check):
 * 'consistent', a refusal, or how it is a fork.
 */
async function extension(log: TransparencyLog, key: NoteVerifierKey, lastNote: string, signed: Outcome<string>): Promise<string> {
  if ('refused' in signed) return refusal(signed);
  const last = (await openCheckpoint(lastNote, key)).checkpoint;
  const now = await attempt(async () => (await openCheckpoint(signed.ok, key)).checkpoint);
  if ('refused' in now) return `signed a checkpoint its key does not verify: ${now.refused.code}: ${now.refused.message}`;
  const proof = now.ok.size > last.size ? await attempt(() => log.consistencyProof(last.size, now.ok.size)) : { ok: [] }; // equal sizes need none
  if ('refused' in proof) return `signed size ${now.ok.size}, but cannot prove it extends size ${last.size}: ${proof.refused.code}`;
  const verified = await attempt(() => verifyConsistency(last.size, now.ok.size, proof.ok, last.rootHash, now.ok.rootHash));
  if ('refused' in verified) return `FORK: signed size ${now.ok.size} after size ${last.size}: ${verified.refused.code}: ${verified.refused.message}`;
  return 'consistent';
}

// ---- stores -----------------------------------------------------------------------------------

const PG_URL = process.env.TEEGATE_PG_URL ?? DEFAULT_PG_URL;
const DATABASE = `teegate_log_hostile_${process.pid}`;
const DB_URL = (() => {
  const u = new URL(PG_URL);
  u.pathname = `/${DATABASE}`;
  return u.href;
})();
let server: Pool; // the server's default database, to create and drop ours
let db: Pool; // the attacker's connection to our database

const dirs: string[] = [];
const logs: TransparencyLog[] = [];
const served: ServedLog[] = [];
let schemaCount = 0;

beforeAll(async () => {
  server = new Pool({ connectionString: PG_URL, max: 1 });
  await server.query(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`);
  await server.query(`CREATE DATABASE "${DATABASE}"`);
  db = new Pool({ connectionString: DB_URL, max: 2 });
});

afterEach(async () => {
  for (const s of served.splice(0)) await s.close();
  for (const l of logs.splice(0)) await l.close();
});

afterAll(async () => {
  await db.end();
  await server.query(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`);
  await server.end();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'teegate-log-hostile-'));
  dirs.push(d);
  return d;
}

function newSchema(): string {
  return `hostile_${++schemaCount}`;
}

async function serve(log: TransparencyLog): Promise<string> {
  const s = await serveLog(log);
  served.push(s);
  return `${s.url}/v1/log`;
}

/** Opens a log on a store; a refusal closes the store (as openTransparencyLog does). */
async function openOn(storage: FileLogStorage | PostgresLogStorage, options: Partial<TransparencyLogOptions> = {}): Promise<TransparencyLog> {
  try {
    const log = await TransparencyLog.open({ origin: ORIGIN, ...options, storage });
    logs.push(log);
    return log;
  } catch (err) {
    await storage.close();
    throw err;
  }
}

const openFile = async (dir: string, options: Partial<TransparencyLogOptions> = {}) => openOn(await FileLogStorage.open(dir), options);
const openPg = async (schema: string, options: Partial<TransparencyLogOptions> = {}) => openOn(await PostgresLogStorage.open({ url: DB_URL, schema, poolSize: 2 }), options);

/** The records of a file store's entries.log: where each starts and its length. */
function records(path: string): { offset: number; length: number }[] {
  const buf = readFileSync(path);
  const out: { offset: number; length: number }[] = [];
  for (let pos = 0; pos + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(pos);
    if (pos + 8 + length > buf.length) break;
    out.push({ offset: pos, length });
    pos += 8 + length;
  }
  return out;
}

/** Rewrites record `index` of entries.log in place with bytes of the same length and their CRC: it reads back as valid. */
function rewriteRecord(path: string, index: number, bytes: Uint8Array): void {
  const r = records(path)[index]!;
  if (bytes.length !== r.length) throw new Error(`record ${index} is ${r.length} bytes, not ${bytes.length}`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(bytes.length, 0);
  head.writeUInt32BE(crc32(bytes), 4);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.concat([head, Buffer.from(bytes)]), 0, 8 + bytes.length, r.offset);
  } finally {
    closeSync(fd);
  }
}

/** What the attacker can do to each store, with the store's own layout. */
interface HostileStore {
  /** Opens a log on the store: the first one, a restart, or (PostgreSQL) another replica. */
  open(options?: Partial<TransparencyLogOptions>): Promise<TransparencyLog>;
  /** Rewrites entry `index` (the same length, so a file store's record reads back as valid). */
  rewriteEntry(index: number, bytes: Uint8Array): Promise<void>;
  readTile(level: number, index: number): Promise<Buffer>;
  writeTile(level: number, index: number, hashes: Uint8Array): Promise<void>;
  writeCheckpoint(note: string, size: number): Promise<void>;
  writeSigningKey(signerKey: string): Promise<void>;
}

function fileStore(): HostileStore {
  const dir = newDir();
  const tile = (level: number, index: number) => join(dir, 'tiles', String(level), String(index));
  return {
    open: (options) => openFile(dir, options),
    rewriteEntry: async (index, bytes) => rewriteRecord(join(dir, 'entries.log'), index, bytes),
    readTile: async (level, index) => readFileSync(tile(level, index)),
    writeTile: async (level, index, hashes) => writeFileSync(tile(level, index), hashes),
    writeCheckpoint: async (note) => writeFileSync(join(dir, 'checkpoint'), note),
    writeSigningKey: async (signerKey) => writeFileSync(join(dir, 'log-signing.key'), `${signerKey}\n`),
  };
}

function pgStore(): HostileStore {
  const schema = newSchema();
  return {
    open: (options) => openPg(schema, options),
    rewriteEntry: async (index, bytes) => void (await db.query(`UPDATE ${schema}.log_entries SET data = $1 WHERE idx = $2`, [Buffer.from(bytes), index])),
    readTile: async (level, index) => (await db.query<{ hashes: Buffer }>(`SELECT hashes FROM ${schema}.log_tiles WHERE level = $1 AND idx = $2`, [level, index])).rows[0]!.hashes,
    writeTile: async (level, index, hashes) => void (await db.query(`UPDATE ${schema}.log_tiles SET hashes = $1 WHERE level = $2 AND idx = $3`, [Buffer.from(hashes), level, index])),
    writeCheckpoint: async (note, size) => void (await db.query(`UPDATE ${schema}.log_checkpoint SET note = $1, size = $2`, [note, size])),
    writeSigningKey: async (signerKey) => void (await db.query(`UPDATE ${schema}.log_key SET signer_key = $1`, [signerKey])),
  };
}

/** Appends receipts one at a time (index i = the i-th of `jwss` after those already there). */
async function appendAll(log: TransparencyLog, jwss: readonly string[]): Promise<void> {
  for (const jws of jwss) await log.appendReceipt(jws);
}

const names = (tag: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${tag}.${from + i}.x`);
const flip = (hashes: Uint8Array, at: number) => {
  const out = Buffer.from(hashes);
  out[at * 32] = out[at * 32]! ^ 0x01;
  return out;
};

// ---- both stores ------------------------------------------------------------------------------

describe.each([
  ['file', fileStore],
  ['postgres', pgStore],
])('%s store under a hostile storage', (_name, make) => {
  it('an integrated entry rewritten in storage is never served as the signed one (entries, entry bundle, HTTP), running or restarted', async () => {
    const store = make();
    const log = await store.open();
    const signed = names('e', 0, 6);
    await appendAll(log, signed);
    await log.flush();
    await store.rewriteEntry(3, entryOf('e.9.x')); // same length, valid record
    const url = await serve(log);

    const one = await attempt(() => log.entries(3, 1));
    const bundle = await attempt(async () => parseEntryBundle(await log.entryBundle(0, 6), 6));
    const res = await fetch(`${url}/entries?start=3&count=1`);
    const body = (await res.json()) as { entries?: string[]; code?: string };
    const http = res.status === 503 ? `503 ${body.code}` : `${res.status} ${body.entries?.map((e) => Buffer.from(e, 'base64').toString()).join(' | ')}`;
    expect({ one: servedEntries(one, signed.slice(3, 4)), bundle: servedEntries(bundle, signed), http }).toEqual({
      one: expect.stringMatching(/^(the signed entries|refused LOG_STORAGE_FAILED)$/),
      bundle: expect.stringMatching(/^(the signed entries|refused LOG_STORAGE_FAILED)$/),
      http: expect.stringMatching(/^(200 \{"jws":"e\.3\.x","type":"receipt"\}|503 LOG_STORAGE_FAILED)$/),
    });

    await log.close();
    const restarted = await attempt(() => store.open());
    const after = 'ok' in restarted ? servedEntries(await attempt(() => restarted.ok.entries(3, 1)), signed.slice(3, 4)) : refusal(restarted);
    expect(after).toMatch(/^(the signed entries|refused LOG_STORAGE_FAILED)$/);
  });

  it('a full entry bundle served once, then an entry in it rewritten: served again it is refused (the first check is not reused) as often as it is asked for, and served once the entry is put back', async () => {
    const store = make();
    const log = await store.open();
    const signed = names('e', 0, 256);
    await appendAll(log, signed);
    await log.flush();
    const first = await log.entryBundle(0, 256);
    expect(servedEntries({ ok: parseEntryBundle(first, 256) }, signed)).toBe('the signed entries');

    await store.rewriteEntry(100, entryOf('e.900.x')); // same length, valid record
    expect(servedEntries(await attempt(async () => parseEntryBundle(await log.entryBundle(0, 256), 256)), signed)).toBe('refused LOG_STORAGE_FAILED');
    // Refused again: a refused bundle is not remembered as checked.
    expect(servedEntries(await attempt(async () => parseEntryBundle(await log.entryBundle(0, 256), 256)), signed)).toBe('refused LOG_STORAGE_FAILED');
    await store.rewriteEntry(100, entryOf('e.100.x'));
    expect(Buffer.from(await log.entryBundle(0, 256)).equals(first)).toBe(true);
    await log.close();
  });

  it('a level-0 tile rewritten under the running log is not served as the signed one', async () => {
    const store = make();
    const log = await store.open();
    const signed = names('t', 0, 6);
    await appendAll(log, signed);
    await log.flush();
    const honest = await honestTree(signed);
    const leaves = signed.map((_, i) => honest.node(0, i));
    await store.writeTile(0, 0, flip(await store.readTile(0, 0), 2));
    expect(servedHashes(await attempt(() => log.tile(0, 0, 6)), leaves)).toMatch(/^(the signed hashes|refused LOG_STORAGE_FAILED)$/);
  });

  it('a level-1 tile rewritten while the log is down is refused at open or never served', async () => {
    const store = make();
    const first = await store.open();
    const acked = new Map<number, string>();
    await Promise.all(names('l', 0, 300).map(async (jws) => acked.set((await first.appendReceipt(jws)).index, jws)));
    await first.flush();
    await first.close();
    const honest = await honestTree(inIndexOrder(acked));
    await store.writeTile(1, 0, flip(await store.readTile(1, 0), 0)); // the root of the first 256 leaves
    const restarted = await attempt(() => store.open());
    const tile = 'ok' in restarted ? servedHashes(await attempt(() => restarted.ok.tile(1, 0, 1)), [honest.node(8, 0)]) : refusal(restarted);
    expect(tile).toMatch(/^(the signed hashes|refused LOG_STORAGE_FAILED)$/);
  });

  it('the stored log key swapped for another key of the same origin: the log does not go on under a key its checkpoints were not signed with', async () => {
    const store = make();
    const first = await store.open();
    await appendAll(first, names('k', 0, 3));
    await first.flush();
    const pinned = first.verifierKey;
    await first.close();
    await store.writeSigningKey((await generateNoteKey(ORIGIN)).signerKey);
    const restarted = await attempt(() => store.open());
    const outcome = 'ok' in restarted ? `opened, verifier key ${restarted.ok.verifierKey === pinned ? 'unchanged' : 'CHANGED to one its checkpoints were not signed with'}` : refusal(restarted);
    expect(outcome).toMatch(/^(opened, verifier key unchanged|refused LOG_STORAGE_FAILED)$/);
  });

  it("a stored checkpoint the log did not sign (another key; garbage) is never served as the log's checkpoint", async () => {
    const store = make();
    const first = await store.open();
    await appendAll(first, names('c', 0, 3));
    const note = await first.flush();
    const key = await parseVerifierKey(first.verifierKey);
    await first.close();
    const body = note.slice(0, note.indexOf('\n\n') + 1);
    const foreign = await signNote(body, [await parseSignerKey((await generateNoteKey(ORIGIN)).signerKey)]);
    const outcomes: Record<string, string> = {};
    for (const [what, bad] of [['another key', foreign], ['garbage', 'garbage\n']] as const) {
      await store.writeCheckpoint(bad, 3);
      const restarted = await attempt(() => store.open());
      if ('refused' in restarted) {
        outcomes[what] = restarted.refused.code === 'LOG_STORAGE_FAILED' || restarted.refused.code === 'LOG_CHECKPOINT_MALFORMED' ? 'refused at open' : refusal(restarted);
        continue;
      }
      const cp = await attempt(() => restarted.ok.checkpoint());
      if ('refused' in cp) outcomes[what] = cp.refused.code === 'LOG_NOT_FOUND' || cp.refused.code === 'LOG_STORAGE_FAILED' ? 'not served' : refusal(cp);
      else outcomes[what] = 'ok' in (await attempt(() => openCheckpoint(cp.ok.note, key))) ? 'served one the log signed' : `SERVED ${JSON.stringify(cp.ok.note.slice(0, 40))}...`;
      await restarted.ok.close();
    }
    expect(outcomes).toEqual({
      'another key': expect.stringMatching(/^(refused at open|not served|served one the log signed)$/),
      garbage: expect.stringMatching(/^(refused at open|not served|served one the log signed)$/),
    });
  });

  it('an older checkpoint of the log put back (a rollback of the stored checkpoint): the next one still extends the newest signed', async () => {
    const store = make();
    const first = await store.open();
    await appendAll(first, names('o', 0, 4));
    const old = await first.flush();
    await appendAll(first, names('o', 4, 9));
    const newest = await first.flush();
    const key = await parseVerifierKey(first.verifierKey);
    await first.close();
    await store.writeCheckpoint(old, 4);
    const log = await store.open();
    expect((await log.checkpoint()).note).toBe(old); // served late: the storage may delay, not rewrite
    await appendAll(log, names('o', 9, 11));
    expect(await extension(log, key, newest, await attempt(() => log.flush()))).toBe('consistent');
    expect((await log.checkpoint()).size).toBe(11);
  });
});

// ---- file store -------------------------------------------------------------------------------

/** A file-store log with `count` entries (`<tag>.<i>.x`) appended and signed, then closed. */
async function closedSignedFileLog(tag: string, count: number) {
  const dir = newDir();
  const log = await openFile(dir);
  const signed = names(tag, 0, count);
  await appendAll(log, signed);
  const last = await log.flush();
  const key = await parseVerifierKey(log.verifierKey);
  await log.close();
  return { dir, signed, last, key };
}

describe('file store under a hostile storage', () => {
  it('bytes appended to entries.log under the running log: the next acknowledged entry reads back as itself, also after a restart (or the append is refused)', async () => {
    const dir = newDir();
    const log = await openFile(dir);
    await appendAll(log, names('j', 0, 3));
    await log.flush();
    appendFileSync(join(dir, 'entries.log'), 'junk');
    const appended = await attempt(() => log.appendReceipt('after.junk.x'));
    if ('refused' in appended) {
      expect(refusal(appended)).toBe(STORE_REFUSAL);
      return;
    }
    const { index } = appended.ok;
    const readBack = await attempt(() => log.storage.readEntries(index, 1));
    expect(servedEntries(readBack, ['after.junk.x'])).toBe('the signed entries');
    const note = await log.flush();
    const cp = (await openCheckpoint(note, await parseVerifierKey(log.verifierKey))).checkpoint;
    await verifyInclusion(leafOf('after.junk.x'), index, cp.size, await log.inclusionProof(index, cp.size), cp.rootHash);
    await log.close();
    const restarted = await attempt(() => openFile(dir));
    expect('ok' in restarted ? servedEntries(await attempt(() => restarted.ok.entries(index, 1)), ['after.junk.x']) : refusal(restarted)).toBe('the signed entries');
  });

  it.each([
    ['entries.log cut back to the rolled-back size (checkpointed entries deleted)', 'cut'],
    ['an entry past the rolled-back size rewritten (valid record)', 'rewrite'],
  ])('`integrated` rolled back below a signed checkpoint, %s: refused at open, never a fork nor lost entries', async (_what, how) => {
    const { dir, signed, last, key } = await closedSignedFileLog('i', 10);
    const path = join(dir, 'entries.log');
    writeFileSync(join(dir, 'integrated'), '5');
    if (how === 'cut') truncateSync(path, records(path)[5]!.offset);
    else rewriteRecord(path, 7, entryOf('i.X.x'));

    const opened = await attempt(() => openFile(dir));
    if ('refused' in opened) {
      expect(refusal(opened)).toBe(STORE_REFUSAL);
      return;
    }
    // It opened on a store whose signed checkpoint covers 10 entries: it may only go on as an
    // extension of that checkpoint, holding every one of them.
    const log = opened.ok;
    await appendAll(log, names('i', 10, 15));
    const signedNext = await attempt(() => log.flush());
    const kept = servedEntries(await attempt(() => log.entries(0, 10)), signed);
    expect({ next: await extension(log, key, last, signedNext), kept }).toEqual({ next: 'consistent', kept: 'the signed entries' });
  });

  it('`integrated` raised past the stored tiles: refused at open, or integration is refused and nothing is signed past the last checkpoint', async () => {
    const dir = newDir();
    const first = await openFile(dir);
    await appendAll(first, names('u', 0, 10));
    const last = await first.flush();
    await appendAll(first, names('u', 10, 15)); // sequenced, not integrated
    await first.close();
    writeFileSync(join(dir, 'integrated'), '12');
    const opened = await attempt(() => openFile(dir));
    if ('refused' in opened) {
      expect(refusal(opened)).toBe(STORE_REFUSAL);
      return;
    }
    const log = opened.ok;
    const signed = await attempt(() => log.flush());
    expect('refused' in signed ? refusal(signed) : 'signed').toBe(STORE_REFUSAL);
    expect((await log.checkpoint()).note).toBe(last);
  });

  it('valid records appended to entries.log while the log is down are sequenced after the acknowledged ones; the next checkpoint extends the last', async () => {
    const { dir, signed, last, key } = await closedSignedFileLog('x', 5);
    const injected = entryOf('injected.0.x');
    const head = Buffer.alloc(8);
    head.writeUInt32BE(injected.length, 0);
    head.writeUInt32BE(crc32(injected), 4);
    appendFileSync(join(dir, 'entries.log'), Buffer.concat([head, Buffer.from(injected)]));
    const log = await openFile(dir);
    expect(await extension(log, key, last, await attempt(() => log.flush()))).toBe('consistent');
    expect(servedEntries(await attempt(() => log.entries(0, 5)), signed)).toBe('the signed entries');
  });

  (process.platform === 'linux' ? it : it.skip)('entries.log linked to /dev/null: the store does not acknowledge appends it discards', async () => {
    const dir = newDir();
    symlinkSync('/dev/null', join(dir, 'entries.log'));
    const opened = await attempt(() => openFile(dir));
    if ('refused' in opened) {
      expect(refusal(opened)).toBe(STORE_REFUSAL);
      return;
    }
    const appended = await attempt(() => opened.ok.appendReceipt('n.0.x'));
    const outcome = 'refused' in appended ? refusal(appended) : `acknowledged at ${appended.ok.index}; reads back: ${servedEntries(await attempt(() => opened.ok.storage.readEntries(appended.ok.index, 1)), ['n.0.x'])}`;
    expect(outcome).toMatch(/^(refused LOG_STORAGE_FAILED|acknowledged at 0; reads back: the signed entries)$/);
  });
});

// ---- PostgreSQL store -------------------------------------------------------------------------

describe('postgres store under a hostile storage', () => {
  it.each([
    ['the checkpoint row left as it is', false],
    ['the checkpoint row deleted too', true],
  ])('integrated size rolled back and an integrated entry rewritten under the running log (%s): it does not re-integrate and sign a fork', async (_what, dropCheckpoint) => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('f', 0, 10));
    const last = await log.flush();
    const key = await parseVerifierKey(log.verifierKey);
    await db.query(`UPDATE ${schema}.log_integration SET size = 4`);
    await db.query(`UPDATE ${schema}.log_entries SET data = $1 WHERE idx = 6`, [Buffer.from(entryOf('forged.6.x'))]);
    if (dropCheckpoint) await db.query(`DELETE FROM ${schema}.log_checkpoint`);
    const signed = await attempt(() => log.flush());
    const servedNow = await attempt(async () => (await log.checkpoint()).note);
    expect({
      signed: await extension(log, key, last, signed),
      served: 'refused' in servedNow ? 'not served' : await extension(log, key, last, servedNow),
    }).toEqual({
      signed: expect.stringMatching(/^(consistent|refused LOG_STORAGE_FAILED)$/),
      served: expect.stringMatching(/^(consistent|not served)$/),
    });
  });

  it('integrated size rolled back below what the running log integrated but has not signed yet, an entry there rewritten: it does not sign the rewritten entry', async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    const acknowledged = names('g', 0, 10);
    await appendAll(log, acknowledged.slice(0, 5));
    await log.flush(); // signed at 5
    await appendAll(log, acknowledged.slice(5));
    await log.integrate(); // integrated to 10, not signed
    await db.query(`UPDATE ${schema}.log_integration SET size = 6`);
    await db.query(`UPDATE ${schema}.log_entries SET data = $1 WHERE idx = 7`, [Buffer.from(entryOf('forged.7.x'))]);
    const next = await attempt(() => log.flush());
    const outcome = 'refused' in next ? refusal(next) : servedEntries(await attempt(() => log.entries(0, 10)), acknowledged);
    expect(outcome).toMatch(/^(refused LOG_STORAGE_FAILED|the signed entries)$/);
    await log.close();
  });

  it("a replica whose tree lags reads a tile rewritten after another replica integrated it: it does not sign a fork of that replica's checkpoint", async () => {
    const schema = newSchema();
    const a = await openPg(schema);
    const b = await openPg(schema);
    await appendAll(a, names('r', 0, 10));
    await a.flush();
    await b.inclusionProof(0, 10); // b's tree now holds 10 leaves, as serving any proof does
    await appendAll(a, names('r', 10, 15));
    const last = await a.flush();
    const key = await parseVerifierKey(a.verifierKey);
    const tile = (await db.query<{ hashes: Buffer }>(`SELECT hashes FROM ${schema}.log_tiles WHERE level = 0 AND idx = 0`)).rows[0]!.hashes;
    await db.query(`UPDATE ${schema}.log_tiles SET hashes = $1 WHERE level = 0 AND idx = 0`, [flip(tile, 12)]);
    await b.appendReceipt('r.15.x');
    expect(await extension(b, key, last, await attempt(() => b.flush()))).toMatch(/^(consistent|refused LOG_STORAGE_FAILED)$/);
  });

  it('a tile row planted wider than the tree: integration stores its tiles (or refuses), and no tile beyond the tree is served', async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    const signed = names('w', 0, 15);
    await appendAll(log, signed.slice(0, 10));
    await log.flush();
    const tile = (await db.query<{ hashes: Buffer }>(`SELECT hashes FROM ${schema}.log_tiles WHERE level = 0 AND idx = 0`)).rows[0]!.hashes;
    await db.query(`UPDATE ${schema}.log_tiles SET hashes = $1 WHERE level = 0 AND idx = 0`, [Buffer.concat([tile, randomBytes(246 * 32)])]);
    await appendAll(log, signed.slice(10));
    const flushed = await attempt(() => log.flush());
    if ('refused' in flushed) {
      expect(refusal(flushed)).toBe(STORE_REFUSAL);
      return;
    }
    const honest = await honestTree(signed);
    const leaves = signed.map((_, i) => honest.node(0, i));
    const stored = (await db.query<{ hashes: Buffer }>(`SELECT hashes FROM ${schema}.log_tiles WHERE level = 0 AND idx = 0`)).rows[0]!.hashes;
    const full = await attempt(() => log.tile(0, 0, 256));
    const replica = await attempt(() => openPg(schema));
    expect({
      stored: stored.subarray(0, 15 * 32).equals(Buffer.concat(leaves.map((h) => Buffer.from(h)))) ? 'the signed leaves' : "NOT the signed leaves: the integration's tile was dropped",
      served: servedHashes(await attempt(() => log.tile(0, 0, 15)), leaves),
      full: 'refused' in full ? full.refused.code : `SERVED a full tile of ${full.ok.length / 32} hashes for a tree of 15`,
      replica: 'ok' in replica ? 'opens' : refusal(replica),
    }).toEqual({ stored: 'the signed leaves', served: 'the signed hashes', full: 'LOG_NOT_FOUND', replica: 'opens' });
  });

  it.each([
    ['rolled back into the signed tree (its rows deleted)', 'back'],
    ['set negative', 'negative'],
  ])('the sequence counter %s: an append is refused, or the entry is provably at the index it was acknowledged with', async (_what, how) => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('s', 0, 6));
    await log.flush();
    if (how === 'back') {
      await db.query(`DELETE FROM ${schema}.log_entries WHERE idx >= 3`);
      await db.query(`UPDATE ${schema}.log_counter SET size = 3`);
    } else {
      await db.query(`UPDATE ${schema}.log_counter SET size = -1`);
    }
    const appended = await attempt(() => log.appendReceipt('late.0.x'));
    if ('refused' in appended) {
      expect(refusal(appended)).toBe(STORE_REFUSAL);
      return;
    }
    const { index } = appended.ok;
    const proven = await attempt(async () => {
      const note = await log.flush();
      const cp = (await openCheckpoint(note, await parseVerifierKey(log.verifierKey))).checkpoint;
      await verifyInclusion(leafOf('late.0.x'), index, cp.size, await log.inclusionProof(index, cp.size), cp.rootHash);
    });
    expect('ok' in proven ? 'proven' : `acknowledged at index ${index}, never provable: ${proven.refused.code}: ${proven.refused.message}`).toBe('proven');
  });

  it('a row planted at the next index: appends are refused (none acknowledged) until it is gone, then go on at that index', async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('d', 0, 4));
    await log.flush();
    await db.query(`INSERT INTO ${schema}.log_entries (idx, data) VALUES (4, $1)`, [Buffer.from(entryOf('planted.4.x'))]);
    const refused = await Promise.all([0, 1, 2].map((i) => attempt(() => log.appendReceipt(`d.late.${i}`))));
    expect(refused.map((o) => ('refused' in o ? refusal(o) : `acknowledged at ${o.ok.index}`))).toEqual([STORE_REFUSAL, STORE_REFUSAL, STORE_REFUSAL]);
    await db.query(`DELETE FROM ${schema}.log_entries WHERE idx = 4`);
    expect((await log.appendReceipt('d.4.x')).index).toBe(4);
    const key = await parseVerifierKey(log.verifierKey);
    const last = (await log.checkpoint()).note;
    expect(await extension(log, key, last, await attempt(() => log.flush()))).toBe('consistent');
  });

  it("a storage session that holds the log's locks (the sequence row, the integration lock): an append and an integration are refused within 10 s, not left hanging", async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('q', 0, 2));
    await log.flush();
    const holder = await db.connect();
    let appended: Promise<Outcome<{ index: number }>> | undefined;
    let integrated: Promise<Outcome<number>> | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT size FROM ${schema}.log_counter FOR UPDATE`);
      await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`teegate-log-integrate:${schema}`]);
      appended = attempt(() => log.appendReceipt('q.2.x'));
      integrated = attempt(() => log.integrate());
      const [append, integrate] = await Promise.all([within(appended, 10_000), within(integrated, 10_000)]);
      expect({ append, integrate }).toEqual({ append: STORE_REFUSAL, integrate: STORE_REFUSAL });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await appended;
      await integrated;
    }
  });

  it('storage that contradicts itself is LOG_STORAGE_FAILED (503, retry), never LOG_RANGE_INVALID (400: "fix your request")', async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('g', 0, 6));
    await log.flush();
    const url = await serve(log);
    const code = (o: Outcome<unknown>) => ('refused' in o ? o.refused.code : 'no error');
    const http = async (path: string) => {
      const res = await fetch(`${url}${path}`);
      return `${res.status} ${((await res.json()) as { code?: string }).code ?? 'no error'}`;
    };
    const seen: Record<string, string> = {};
    // An integrated entry row deleted.
    await db.query(`DELETE FROM ${schema}.log_entries WHERE idx = 2`);
    seen['GET entries of a deleted integrated row'] = await http('/entries?start=2&count=1');
    seen['entry bundle holding it'] = code(await attempt(() => log.entryBundle(0, 6)));
    await db.query(`INSERT INTO ${schema}.log_entries (idx, data) VALUES (2, $1)`, [Buffer.from(entryOf('g.2.x'))]);
    // The counter moved past rows that were never written: a gap before an acknowledged entry.
    await db.query(`UPDATE ${schema}.log_counter SET size = size + 3`);
    const gap = await log.appendReceipt('g.gap.x');
    seen[`integration across the gap (entry acknowledged at ${gap.index})`] = code(await attempt(() => log.integrate()));
    await db.query(`DELETE FROM ${schema}.log_entries WHERE idx = $1`, [gap.index]);
    await db.query(`UPDATE ${schema}.log_counter SET size = 6`);
    // The integrated size set negative.
    await db.query(`UPDATE ${schema}.log_integration SET size = -5`);
    seen['publish at a negative integrated size'] = code(await attempt(() => log.publish()));
    seen['GET inclusion proof at a negative integrated size'] = await http('/proof/inclusion?index=0');
    expect(seen).toEqual({
      'GET entries of a deleted integrated row': '503 LOG_STORAGE_FAILED',
      'entry bundle holding it': 'LOG_STORAGE_FAILED',
      [`integration across the gap (entry acknowledged at ${gap.index})`]: 'LOG_STORAGE_FAILED',
      'publish at a negative integrated size': 'LOG_STORAGE_FAILED',
      'GET inclusion proof at a negative integrated size': '503 LOG_STORAGE_FAILED',
    });
  });

  it("the checkpoint row's size column claims a larger tree: publishing is not silently frozen", async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('z', 0, 6));
    await log.flush();
    await db.query(`UPDATE ${schema}.log_checkpoint SET size = 1000000000`);
    await appendAll(log, names('z', 6, 8));
    const published = await attempt(() => log.flush());
    const servedNow = await attempt(async () => (await openCheckpoint((await log.checkpoint()).note, await parseVerifierKey(log.verifierKey))).checkpoint.size);
    expect({
      published: 'refused' in published ? refusal(published) : 'resolved',
      served: 'refused' in servedNow ? refusal(servedNow) : `size ${servedNow.ok}`,
    }).toEqual('refused' in published ? { published: STORE_REFUSAL, served: expect.anything() } : { published: 'resolved', served: 'size 8' });
  });

  it("the checkpoint row's size column disagrees with its note: the default inclusion proof verifies against the served checkpoint", async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    const signed = names('y', 0, 6);
    await appendAll(log, signed);
    await log.flush();
    await db.query(`UPDATE ${schema}.log_checkpoint SET size = 2`);
    const url = await serve(log);
    const res = await fetch(`${url}/checkpoint`);
    const note = await res.text();
    const proofRes = await fetch(`${url}/proof/inclusion?index=1`);
    const outcome = await attempt(async () => {
      if (res.status !== 200 || proofRes.status !== 200) return `${res.status}/${proofRes.status}`;
      const cp = (await openCheckpoint(note, await parseVerifierKey(log.verifierKey))).checkpoint;
      const body = (await proofRes.json()) as { size: number; proof: string[] };
      await verifyInclusion(leafOf(signed[1]!), 1, cp.size, body.proof.map((p) => new Uint8Array(Buffer.from(p, 'base64'))), cp.rootHash);
      return `verifies (proof for size ${body.size}, checkpoint of ${cp.size})`;
    });
    expect('ok' in outcome ? outcome.ok : `a proof the served checkpoint refutes: ${outcome.refused.code}: ${outcome.refused.message}`).toMatch(/^(verifies \(proof for size 6, checkpoint of 6\)|503\/503)$/);
  });

  it.each([
    ['an entry larger than an entry bundle can frame (70,000 bytes)', () => Buffer.alloc(70_000, 0x61)],
    ['bytes that are not a log entry', () => Buffer.from('not a canonical log entry')],
  ])('an acknowledged, not yet integrated row rewritten to %s: integration refuses it rather than sign it into the tree', async (_what, bad) => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('h', 0, 3));
    await db.query(`UPDATE ${schema}.log_entries SET data = $1 WHERE idx = 1`, [bad()]);
    const flushed = await attempt(() => log.flush());
    if ('refused' in flushed) {
      expect(refusal(flushed)).toBe(STORE_REFUSAL);
      return;
    }
    const bundle = await attempt(async () => parseEntryBundle(await log.entryBundle(0, 3), 3));
    expect(`signed it into a checkpoint of size ${(await log.checkpoint()).size}; its entry bundle: ${'refused' in bundle ? refusal(bundle) : 'served'}`).toBe('refused LOG_STORAGE_FAILED at integration');
  });

  it('two replicas appending and publishing in the background while the storage rolls back integration and rewrites a row: every stored checkpoint is a prefix of the acknowledged log', async () => {
    const schema = newSchema();
    const errors: unknown[] = [];
    const options = { integrateIntervalMs: 5, publishIntervalMs: 20, onError: (err: unknown) => errors.push(err) };
    const a = await openPg(schema, options);
    const b = await openPg(schema, options);
    const key = await parseVerifierKey(a.verifierKey);
    a.start();
    b.start();
    const acked = new Map<number, string>();
    let running = true;
    const load = [a, b].flatMap((log, r) =>
      Array.from({ length: 4 }, async (_, w) => {
        for (let n = 0; running; n++) {
          const jws = `p${r}${w}.${n}.x`;
          const out = await attempt(() => log.appendReceipt(jws));
          if ('ok' in out) acked.set(out.ok.index, jws);
          else await sleep(5);
        }
      }),
    );
    const notes = new Set<string>();
    const watch = setInterval(() => {
      void a.storage.readCheckpoint().then(
        (cp) => cp && notes.add(cp.note),
        () => undefined,
      );
    }, 5);
    try {
      await sleep(500);
      // The attacker takes the integrators' own lock, so its rollback is not overwritten by one in flight.
      const c = await db.connect();
      try {
        await c.query('BEGIN');
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`teegate-log-integrate:${schema}`]);
        const { rows } = await c.query<{ size: string }>(`UPDATE ${schema}.log_integration SET size = size - 5 WHERE size >= 5 RETURNING size`);
        if (rows[0]) await c.query(`UPDATE ${schema}.log_entries SET data = $1 WHERE idx = $2`, [Buffer.from(entryOf('forged.0.x')), Number(rows[0].size) + 1]);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      await sleep(700);
    } finally {
      running = false;
      await Promise.all(load);
      clearInterval(watch);
      await a.close();
      await b.close();
    }
    const cp = await attempt(async () => (await db.query<{ note: string }>(`SELECT note FROM ${schema}.log_checkpoint`)).rows[0]?.note);
    if ('ok' in cp && cp.ok) notes.add(cp.ok);
    expect(errors.filter((e) => !isTeegateError(e))).toEqual([]);
    const checkpoints = await Promise.all([...notes].map(async (n) => (await openCheckpoint(n, key)).checkpoint));
    checkpoints.sort((x, y) => x.size - y.size);
    const largest = checkpoints[checkpoints.length - 1]!.size;
    expect(largest).toBeGreaterThan(5);
    const honest = await honestTree(inIndexOrder(acked, largest));
    const forks: string[] = [];
    for (const c of checkpoints) {
      if (!Buffer.from(await honest.root(c.size)).equals(Buffer.from(c.rootHash))) forks.push(`size ${c.size}`);
    }
    for (let i = 1; i < checkpoints.length; i++) {
      const [x, y] = [checkpoints[i - 1]!, checkpoints[i]!];
      const ok = await attempt(async () => verifyConsistency(x.size, y.size, x.size === y.size ? [] : await honest.consistencyProof(x.size, y.size), x.rootHash, y.rootHash));
      if ('refused' in ok) forks.push(`${x.size} -> ${y.size}: ${ok.refused.code}`);
    }
    expect({ forks: forks.length, first: forks.slice(0, 4) }).toEqual({ forks: 0, first: [] });
  });
});

// ---- honest stores under stress: no false refusal -------------------------------------------

describe('an honest store is not taken for a hostile one', () => {
  /** `storage` whose integratedSize() runs `hooks.next` (once) after reading its value: another replica acts in between. */
  function pausing(storage: PostgresLogStorage, hooks: { next?: () => Promise<void> }): PostgresLogStorage {
    return new Proxy(storage, {
      get(target, prop) {
        if (prop === 'integratedSize') {
          return async () => {
            const size = await target.integratedSize();
            const hook = hooks.next;
            hooks.next = undefined;
            if (hook) await hook();
            return size;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  it('a replica that reads the integrated size just before another replica integrates and publishes still publishes (no false "rolled back")', async () => {
    const schema = newSchema();
    const a = await openPg(schema);
    const hooks: { next?: () => Promise<void> } = {};
    const b = await openOn(pausing(await PostgresLogStorage.open({ url: DB_URL, schema, poolSize: 2 }), hooks));
    await appendAll(a, names('v', 0, 3));
    await a.flush();
    await b.appendReceipt('v.3.x');
    hooks.next = async () => {
      await a.appendReceipt('v.4.x');
      await a.flush(); // integrates b's entry and its own, and publishes size 5
    };
    expect(await attempt(() => b.publish())).toEqual({ ok: expect.any(String) });
    expect((await b.checkpoint()).size).toBe(5);
    // Opening a replica at such a moment, and growing a lagging replica's tree to serve a proof, likewise.
    const c = await openOn(pausing(await PostgresLogStorage.open({ url: DB_URL, schema, poolSize: 2 }), hooks));
    hooks.next = async () => {
      await a.appendReceipt('v.5.x');
      await a.flush();
    };
    expect(await attempt(async () => (await c.inclusionProof(0, 5)).length)).toEqual({ ok: expect.any(Number) });
  });

  it('an integration that failed waiting for the lock leaves the tree as it was: the next one does not rebuild it from the tiles under the lock', async () => {
    const schema = newSchema();
    const log = await openPg(schema);
    await appendAll(log, names('m', 0, 300));
    await log.flush();
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`teegate-log-integrate:${schema}`]);
      await log.appendReceipt('m.300.x');
      expect(await attempt(() => log.integrate())).toEqual({ refused: { code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(/lock timeout/) } });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const storage = log.storage as PostgresLogStorage;
    const readTile = jest.spyOn(storage, 'readTile');
    expect(await log.integrate()).toBe(301);
    expect(readTile).not.toHaveBeenCalled();
    readTile.mockRestore();
  });

  it('a tile the store lost within its integrated tree is LOG_STORAGE_FAILED (503), not LOG_NOT_FOUND (404: not integrated yet)', async () => {
    const dir = newDir();
    const log = await openFile(dir);
    await appendAll(log, names('n', 0, 10));
    await log.flush();
    rmSync(join(dir, 'tiles', '0', '0'));
    expect(await attempt(() => log.tile(0, 0, 10))).toEqual({ refused: { code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(/^stored tile 0\/0 is missing/) } });
    expect(await attempt(() => log.tile(0, 0, 11))).toEqual({ refused: { code: 'LOG_NOT_FOUND', message: 'tile 0/0 of width 11 does not exist' } });
  });
});
