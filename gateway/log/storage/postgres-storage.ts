/**
 * The shared log store: PostgreSQL, for several gateway replicas appending to one log.
 *
 *   <schema>.log_entries  (idx bigint primary key, data bytea)
 *   <schema>.log_counter  one row: the number of sequenced entries
 *   <schema>.log_integration  one row: the integrated size
 *   <schema>.log_tiles    (level, idx) -> the widest version of the tile's hashes
 *   <schema>.log_checkpoint  one row: the latest signed checkpoint and its size
 *   <schema>.log_key      one row: the log's signer key (created once, shared by the replicas)
 *
 * Sequencing: one transaction per batch (group commit within a process) that bumps the counter row,
 * which holds its row lock until commit, and inserts the entries with the indexes it got. Writers in
 * other processes wait on that row lock, so indexes are dense and ordered by commit; nothing is
 * acknowledged before COMMIT returns (synchronous_commit). Integration holds a transaction-level
 * advisory lock, so one integrator runs at a time across every replica.
 */
import { Pool, type PoolClient } from 'pg';
import { TeegateError } from '../../../attestation/errors';
import { GroupCommit } from './group-commit';
import { checkEntryRange, LOG_SCHEMA_NAME, storageError, type IntegrationResult, type LogStorage } from './log-storage';

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
/** How long a statement waits for a lock (the sequence row, the integration lock) before it fails. */
const LOCK_TIMEOUT_MS = 5_000;
/** How long any one statement may run. */
const STATEMENT_TIMEOUT_MS = 30_000;

export interface PostgresLogStorageOptions {
  /** Connection string (default env TEEGATE_PG_URL, else postgres://postgres@127.0.0.1:5432/test). */
  readonly url?: string;
  /** Schema holding the log's tables (default `teegate_log`); one schema per log. */
  readonly schema?: string;
  readonly poolSize?: number;
}

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export class PostgresLogStorage implements LogStorage {
  private readonly commit: GroupCommit;
  private readonly t: Record<'entries' | 'counter' | 'integration' | 'tiles' | 'checkpoint' | 'key', string>;

  private constructor(
    private readonly pool: Pool,
    readonly schema: string,
  ) {
    const q = `"${schema}"`;
    this.t = {
      entries: `${q}.log_entries`,
      counter: `${q}.log_counter`,
      integration: `${q}.log_integration`,
      tiles: `${q}.log_tiles`,
      checkpoint: `${q}.log_checkpoint`,
      key: `${q}.log_key`,
    };
    this.commit = new GroupCommit((batch) => this.writeBatch(batch), 4096);
  }

  static async open(options: PostgresLogStorageOptions = {}): Promise<PostgresLogStorage> {
    const schema = options.schema ?? 'teegate_log';
    if (!LOG_SCHEMA_NAME.test(schema)) throw new TeegateError('CONFIG_INVALID', `log schema ${JSON.stringify(schema)} is not a lowercase SQL identifier`);
    const url = options.url ?? process.env.TEEGATE_PG_URL ?? DEFAULT_PG_URL;
    // A session that holds the log's row or advisory locks (or a stalled server) must not leave
    // appends, and with them inference answers, waiting for ever: a wait past these is an error.
    const pool = new Pool({ connectionString: url, max: options.poolSize ?? 4, lock_timeout: LOCK_TIMEOUT_MS, statement_timeout: STATEMENT_TIMEOUT_MS });
    pool.on('error', () => undefined); // idle-client errors surface on the next query
    const storage = new PostgresLogStorage(pool, schema);
    try {
      await storage.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw storageError(`cannot open the PostgreSQL log store (schema ${schema}): ${(err as Error).message}`, err);
    }
    return storage;
  }

  private async migrate(): Promise<void> {
    const { t } = this;
    await this.tx(async (c) => {
      // Replicas may start together: serialise the DDL.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`teegate-log-ddl:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.entries} (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL)`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.counter} (id INT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL)`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.integration} (id INT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL)`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.tiles} (level INT NOT NULL, idx BIGINT NOT NULL, hashes BYTEA NOT NULL, PRIMARY KEY (level, idx))`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.checkpoint} (id INT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, note TEXT NOT NULL)`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${t.key} (id INT PRIMARY KEY CHECK (id = 1), signer_key TEXT NOT NULL)`);
      await c.query(`INSERT INTO ${t.counter} VALUES (1, 0) ON CONFLICT DO NOTHING`);
      await c.query(`INSERT INTO ${t.integration} VALUES (1, 0) ON CONFLICT DO NOTHING`);
    });
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  sequence(entries: readonly Uint8Array[]): Promise<number> {
    return this.commit.append(entries);
  }

  private async writeBatch(batch: readonly Uint8Array[]): Promise<number> {
    try {
      return await this.tx(async (c) => {
        const r = await c.query<{ size: string; integrated: string }>(
          `UPDATE ${this.t.counter} SET size = size + $1 WHERE id = 1 RETURNING size, (SELECT size FROM ${this.t.integration} WHERE id = 1) AS integrated`,
          [batch.length],
        );
        const first = Number(r.rows[0]!.size) - batch.length;
        // The counter is the store's: one set back (into the signed tree) or below zero would
        // acknowledge indexes that can never be proven. Refused, and the transaction rolled back.
        const integrated = Number(r.rows[0]!.integrated);
        if (!Number.isSafeInteger(first) || first < 0 || !(first >= integrated)) {
          throw storageError(`the log's sequence counter is at ${first}, below the ${integrated} entries already integrated (or not a count): it was changed outside the log`);
        }
        const idx = batch.map((_, i) => first + i);
        const data = batch.map((e) => Buffer.from(e.buffer, e.byteOffset, e.length));
        await c.query(`INSERT INTO ${this.t.entries} (idx, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, [idx, data]);
        return first;
      });
    } catch (err) {
      if (err instanceof TeegateError) throw err;
      throw storageError(`appending to the PostgreSQL log failed: ${(err as Error).message}`, err);
    }
  }

  private async query<R extends object>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw storageError(`PostgreSQL log query failed: ${(err as Error).message}`, err);
    }
  }

  async sequencedSize(): Promise<number> {
    const rows = await this.query<{ size: string }>(`SELECT size FROM ${this.t.counter} WHERE id = 1`);
    return Number(rows[0]!.size);
  }

  async readEntries(start: number, count: number): Promise<Uint8Array[]> {
    checkEntryRange(start, count, Number.MAX_SAFE_INTEGER);
    if (count === 0) return [];
    const rows = await this.query<{ idx: string; data: Buffer }>(
      `SELECT idx, data FROM ${this.t.entries} WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [start, start + count],
    );
    if (rows.length !== count) checkEntryRange(start, count, start + rows.length);
    return rows.map((r) => toBytes(r.data));
  }

  async readTile(level: number, index: number): Promise<Uint8Array | undefined> {
    const rows = await this.query<{ hashes: Buffer }>(`SELECT hashes FROM ${this.t.tiles} WHERE level = $1 AND idx = $2`, [level, index]);
    return rows[0] ? toBytes(rows[0].hashes) : undefined;
  }

  async integratedSize(): Promise<number> {
    const rows = await this.query<{ size: string }>(`SELECT size FROM ${this.t.integration} WHERE id = 1`);
    return Number(rows[0]!.size);
  }

  async integrate(grow: (integratedSize: number) => Promise<IntegrationResult | undefined>): Promise<number> {
    try {
      return await this.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`teegate-log-integrate:${this.schema}`]);
        const r = await c.query<{ size: string }>(`SELECT size FROM ${this.t.integration} WHERE id = 1`);
        const current = Number(r.rows[0]!.size);
        const result = await grow(current);
        if (!result || result.size === current) return current;
        if (result.tiles.length > 0) {
          await c.query(
            `INSERT INTO ${this.t.tiles} (level, idx, hashes) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])
             ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes`,
            [
              result.tiles.map((t) => t.level),
              result.tiles.map((t) => t.index),
              result.tiles.map((t) => Buffer.from(t.hashes.buffer, t.hashes.byteOffset, t.hashes.length)),
            ],
          );
        }
        await c.query(`UPDATE ${this.t.integration} SET size = $1 WHERE id = 1`, [result.size]);
        return result.size;
      });
    } catch (err) {
      if (err instanceof TeegateError) throw err;
      throw storageError(`integrating the PostgreSQL log failed: ${(err as Error).message}`, err);
    }
  }

  async readCheckpoint(): Promise<{ note: string; size: number } | undefined> {
    const rows = await this.query<{ note: string; size: string }>(`SELECT note, size FROM ${this.t.checkpoint} WHERE id = 1`);
    return rows[0] ? { note: rows[0].note, size: Number(rows[0].size) } : undefined;
  }

  async writeCheckpoint(note: string, size: number): Promise<void> {
    await this.query(
      `INSERT INTO ${this.t.checkpoint} (id, size, note) VALUES (1, $1, $2)
       ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note WHERE ${this.t.checkpoint}.size <= EXCLUDED.size`,
      [size, note],
    );
  }

  async loadOrCreateSigningKey(create: () => Promise<string>): Promise<string> {
    const existing = await this.query<{ signer_key: string }>(`SELECT signer_key FROM ${this.t.key} WHERE id = 1`);
    if (existing[0]) return existing[0].signer_key;
    const key = await create();
    await this.query(`INSERT INTO ${this.t.key} (id, signer_key) VALUES (1, $1) ON CONFLICT DO NOTHING`, [key]);
    const rows = await this.query<{ signer_key: string }>(`SELECT signer_key FROM ${this.t.key} WHERE id = 1`);
    return rows[0]!.signer_key;
  }

  /** Drops the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
