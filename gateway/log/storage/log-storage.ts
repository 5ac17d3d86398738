/**
 * The one storage interface behind the transparency log. Two implementations: files under a data
 * directory (the embedded default, one gateway) and PostgreSQL (several gateway replicas sharing
 * one log). Sequencing, integration and publishing are separate steps:
 *
 *  - sequence: entries get consecutive indexes and are durable before the promise resolves
 *    (implementations group concurrent calls into one fsync / one transaction);
 *  - integrate: one integrator at a time (across processes) grows the tree from the sequenced
 *    entries and stores the tiles it changed together with the new integrated size;
 *  - publish: a signed checkpoint is stored; a stored checkpoint never moves back to a smaller size.
 */
import { TeegateError } from '../../../attestation/errors';

/** A Merkle hash tile as stored: the widest version so far (width = hashes.length / 32). */
export interface StoredTile {
  readonly level: number;
  readonly index: number;
  readonly hashes: Uint8Array;
}

/** What an integration step stores: the tiles it changed and the new integrated size. */
export interface IntegrationResult {
  readonly tiles: readonly StoredTile[];
  readonly size: number;
}

export interface LogStorage {
  /** Appends entries durably and in order; resolves to the index of the first. */
  sequence(entries: readonly Uint8Array[]): Promise<number>;
  /** Number of durably sequenced entries. */
  sequencedSize(): Promise<number>;
  /** Entries [start, start + count); all must be sequenced. */
  readEntries(start: number, count: number): Promise<Uint8Array[]>;
  /** The widest stored version of tile (level, index), or undefined. */
  readTile(level: number, index: number): Promise<Uint8Array | undefined>;
  /** Number of entries integrated into the stored tiles. */
  integratedSize(): Promise<number>;
  /**
   * Runs `grow` as the only integrator (an exclusive lock across processes), with the integrated
   * size read under the lock; stores what it returns (tiles, then the size) before releasing.
   * Resolves to the integrated size afterwards.
   */
  integrate(grow: (integratedSize: number) => Promise<IntegrationResult | undefined>): Promise<number>;
  /** The latest stored checkpoint (a signed note), or undefined. */
  readCheckpoint(): Promise<{ note: string; size: number } | undefined>;
  /** Stores a checkpoint unless one for a larger tree is already stored. */
  writeCheckpoint(note: string, size: number): Promise<void>;
  /** The log's signer key (PRIVATE+KEY+...): the stored one, or `create()`'s result stored once. */
  loadOrCreateSigningKey(create: () => Promise<string>): Promise<string>;
  close(): Promise<void>;
}

/** LOG_STORAGE_FAILED with the underlying error as its cause. */
export function storageError(message: string, cause?: unknown): TeegateError {
  return new TeegateError('LOG_STORAGE_FAILED', message, { cause });
}

/** Throws LOG_RANGE_INVALID unless [start, start + count) lies within `size` entries. */
export function checkEntryRange(start: number, count: number, size: number, what: 'sequenced' | 'integrated' = 'sequenced'): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > size) {
    throw new TeegateError('LOG_RANGE_INVALID', `entries [${start}, ${start + count}) are not within the ${size} ${what} entries`);
  }
}

/** A PostgreSQL store's schema name: a lower-case SQL identifier, so it can be written unquoted. */
export const LOG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
