/**
 * `npm run bench:log` (node bin/run-ts test/bench/log.bench.ts): the transparency log on a log of
 * LOG_BENCH_ENTRIES entries (default 1,000,000), receipt-sized (about 700 bytes).
 *  - append_embedded_per_s: acknowledged (fdatasync'ed) appends per second while filling the
 *    embedded file store to the full size, 2,048 appends in flight (group commit);
 *  - append_postgres_per_s: the same against PostgreSQL (TEEGATE_PG_URL), fresh schema, filled to
 *    the same size unless LOG_BENCH_PG_ENTRIES says otherwise;
 *  - proof_gen_per_s: inclusion proofs for random indexes against the full tree;
 *  - proof_verify_per_s: RFC 9162 verification of those proofs (node:crypto SHA-256);
 *  - bundle_first_per_s, bundle_repeat_per_s: full entry bundles (256 entries) served by the log,
 *    each checked against the tree (the store is untrusted): every bundle once in order, then
 *    random ones again; bundle_raw_per_s, the peer in the same run: the same bundles read from the
 *    store and encoded with no check, and the two ratios to it.
 * Goals (issue 6): >= 20,000 appends/s embedded, >= 10,000 proofs generated/s.
 * Progress goes to stderr; the last line of stdout is the JSON result.
 */
import { rmSync } from 'node:fs';
import { encodeEntry } from '../../attestation/log/entry';
import { encodeEntryBundle } from '../../attestation/log/entry-bundle';
import { TILE_WIDTH } from '../../attestation/log/tiles';
import { verifyInclusion } from '../../attestation/log/merkle';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { nodeSha256, TransparencyLog } from '../../gateway/log/transparency-log';
import { tempDir } from '../integration/log-fixtures';
import { log, opsPerSecond, report, round, secondsFor } from './measure';

const ENTRIES = Number(process.env.LOG_BENCH_ENTRIES ?? 1_000_000);
const PG_ENTRIES = Number(process.env.LOG_BENCH_PG_ENTRIES ?? ENTRIES);
const IN_FLIGHT = 2048;
const FILLER = 'x'.repeat(640);

async function fill(tlog: TransparencyLog, count: number, label: string): Promise<number> {
  let next = 0;
  let done = 0;
  const start = performance.now();
  let lastLog = start;
  const worker = async () => {
    while (next < count) {
      next++;
      await tlog.appendReceipt(`eyJhbGciOiJFUzI1NiJ9.${next}.${FILLER}`);
      done++;
      const now = performance.now();
      if (now - lastLog > 5000) {
        lastLog = now;
        log(`${label}: ${done} appended, ${Math.round(done / ((now - start) / 1000))}/s`);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const rate = done / ((performance.now() - start) / 1000);
  log(`${label}: ${done} appended at ${Math.round(rate)}/s`);
  return rate;
}

async function main(): Promise<void> {
  log(`entry size ${encodeEntry({ type: 'receipt', jws: `eyJhbGciOiJFUzI1NiJ9.1.${FILLER}` }).length} bytes, log of ${ENTRIES} entries`);
  const dir = tempDir('teegate-log-bench-');
  const embedded = await TransparencyLog.open({ storage: await FileLogStorage.open(dir), origin: 'bench.teegate/log', integrateIntervalMs: 50, publishIntervalMs: 1000 });
  embedded.start();
  const appendEmbedded = await fill(embedded, ENTRIES, 'embedded');
  const t0 = performance.now();
  const note = await embedded.flush();
  log(`integrated and published ${note.split('\n')[1]} entries (${Math.round(performance.now() - t0)} ms after the last append)`);

  const size = ENTRIES;
  const indexes = Array.from({ length: 4096 }, () => Math.floor(Math.random() * size));
  const leaves = await embedded.storage.readTile(0, 0);
  let i = 0;
  const proofGen = await opsPerSecond(() => embedded.inclusionProof(indexes[i++ % indexes.length]!, size));
  log(`inclusion proofs: ${Math.round(proofGen)}/s`);

  const rootHash = Buffer.from(note.split('\n')[2]!, 'base64');
  const samples = await Promise.all(
    Array.from({ length: 256 }, async (_, k) => ({ index: k, leaf: leaves!.subarray(k * 32, (k + 1) * 32), proof: await embedded.inclusionProof(k, size) })),
  );
  let j = 0;
  const proofVerify = await opsPerSecond(() => {
    const s = samples[j++ % samples.length]!;
    return verifyInclusion(s.leaf, s.index, size, s.proof, rootHash, nodeSha256);
  });
  log(`inclusion proof verification: ${Math.round(proofVerify)}/s`);

  const bundles = Math.floor(size / TILE_WIDTH);
  let b = 0;
  const bundleFirst = bundles / (await secondsFor(() => embedded.entryBundle(b++, TILE_WIDTH), bundles - 1));
  const randomBundle = () => Math.floor(Math.random() * bundles);
  const bundleRepeat = await opsPerSecond(() => embedded.entryBundle(randomBundle(), TILE_WIDTH));
  const bundleRaw = await opsPerSecond(async () => encodeEntryBundle(await embedded.storage.readEntries(randomBundle() * TILE_WIDTH, TILE_WIDTH)));
  log(`full entry bundles: ${Math.round(bundleFirst)}/s first read, ${Math.round(bundleRepeat)}/s again, ${Math.round(bundleRaw)}/s unchecked from the store`);
  await embedded.close();
  rmSync(dir, { recursive: true, force: true });

  const schema = `teegate_log_bench_${process.pid}`;
  const pgStorage = await PostgresLogStorage.open({ schema, poolSize: 4 });
  let appendPostgres = 0;
  try {
    const pg = await TransparencyLog.open({ storage: pgStorage, origin: 'bench.teegate/log', integrateIntervalMs: 200, publishIntervalMs: 2000 });
    pg.start();
    appendPostgres = await fill(pg, PG_ENTRIES, 'postgres');
    await pg.flush();
    await pgStorage.dropSchema();
    await pg.close();
  } catch (err) {
    await pgStorage.dropSchema().catch(() => undefined);
    throw err;
  }

  report({
    entries: ENTRIES,
    postgres_entries: PG_ENTRIES,
    entry_bytes: encodeEntry({ type: 'receipt', jws: `eyJhbGciOiJFUzI1NiJ9.1.${FILLER}` }).length,
    append_embedded_per_s: Math.round(appendEmbedded),
    append_postgres_per_s: Math.round(appendPostgres),
    proof_gen_per_s: Math.round(proofGen),
    proof_verify_per_s: Math.round(proofVerify),
    bundle_first_per_s: Math.round(bundleFirst),
    bundle_repeat_per_s: Math.round(bundleRepeat),
    bundle_raw_per_s: Math.round(bundleRaw),
    bundle_first_vs_raw: round(bundleFirst / bundleRaw, 3),
    bundle_repeat_vs_raw: round(bundleRepeat / bundleRaw, 3),
  });
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
