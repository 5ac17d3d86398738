/**
 * The transparency log service: implements the gateway's ReceiptSink with three separate steps,
 * as tessera does:
 *
 *  - sequencing (`append`): the entry is encoded canonically and stored durably; the promise
 *    resolves with its index only then (storage batches concurrent appends into one fsync);
 *  - integration (`integrate`): one integrator at a time grows the RFC 9162 tree from the sequenced
 *    entries, in batches, and stores the tlog-tiles it changed;
 *  - publishing (`publish`): a C2SP checkpoint of the integrated tree, signed as a C2SP signed note
 *    with the log's Ed25519 key.
 *
 * `start()` checks every `integrateIntervalMs` whether a checkpoint is due (`publishEveryEntries`
 * entries waiting, or new entries and `publishIntervalMs` since the last one) and then integrates
 * and publishes. Proofs come from an
 * in-memory copy of the tree, kept in step with the stored tiles (other replicas may integrate).
 */
import { createHash } from 'node:crypto';
import { bytesEqual } from '../../attestation/bytes';
import { parseCheckpoint, signCheckpoint } from '../../attestation/log/checkpoint';
import { encodeEntry, type LogEntry } from '../../attestation/log/entry';
import { encodeEntryBundle } from '../../attestation/log/entry-bundle';
import { HASH_SIZE, MerkleTree, type Sha256 } from '../../attestation/log/merkle';
import { formatVerifierKey, generateNoteKey, parseNote, parseSignerKey, type NoteSigner } from '../../attestation/log/signed-note';
import { TILE_HEIGHT, TILE_WIDTH, tileWidth } from '../../attestation/log/tiles';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import type { ReceiptSink } from './receipt-sink';
import { checkEntryRange, type LogStorage, type StoredTile } from './storage/log-storage';

/** Synchronous SHA-256 (node:crypto): the tree's hash in the gateway. */
export const nodeSha256: Sha256 = (data) => createHash('sha256').update(data).digest();

export interface TransparencyLogOptions {
  readonly storage: LogStorage;
  /** Checkpoint origin and key name, e.g. `gateway.example.com/log` (default `teegate.local/log`). */
  readonly origin?: string;
  /** The signer key (PRIVATE+KEY+...); default: the storage's, generated on first start. */
  readonly signerKey?: string;
  readonly integrateIntervalMs?: number;
  readonly publishIntervalMs?: number;
  readonly publishEveryEntries?: number;
  /** Most entries one integration step takes (default 65,536). */
  readonly maxIntegrationBatch?: number;
  /** Errors of the background steps (default: ignored; the next run retries). */
  readonly onError?: (err: unknown) => void;
}

const LEAF_PREFIX = Buffer.from([0x00]);

function leafHashSync(entry: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

function notFound(message: string): TeegateError {
  return new TeegateError('LOG_NOT_FOUND', message);
}

export class TransparencyLog implements ReceiptSink {
  private tree = new MerkleTree(nodeSha256);
  private serial: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastPublish: { size: number; at: number } = { size: -1, at: 0 };
  private closed = false;

  private constructor(
    readonly storage: LogStorage,
    readonly origin: string,
    private readonly signer: NoteSigner,
    /** The verifier key (`<origin>+<key id>+<base64 key>`) auditors and clients pin. */
    readonly verifierKey: string,
    private readonly options: TransparencyLogOptions,
  ) {}

  static async open(options: TransparencyLogOptions): Promise<TransparencyLog> {
    const origin = options.origin ?? 'teegate.local/log';
    const signerKey = options.signerKey ?? (await options.storage.loadOrCreateSigningKey(async () => (await generateNoteKey(origin)).signerKey));
    let signer: Awaited<ReturnType<typeof parseSignerKey>>;
    try {
      signer = await parseSignerKey(signerKey);
    } catch (err) {
      if (!isTeegateError(err)) throw err;
      const where = options.signerKey !== undefined ? 'the configured log key (log.signerKey)' : 'the log key the store keeps (log-signing.key in a file store)';
      throw new TeegateError(err.code, `${where}: ${err.message}`, { cause: err });
    }
    if (signer.name !== origin) {
      throw new TeegateError('CONFIG_INVALID', `the log key is named ${JSON.stringify(signer.name)}, the origin is ${JSON.stringify(origin)}`);
    }
    const log = new TransparencyLog(options.storage, origin, signer, await formatVerifierKey(origin, signer.publicKey), options);
    await log.checkStoredTree();
    return log;
  }

  /**
   * The stored tiles must lead to the root of the last stored checkpoint. If one was damaged, the
   * tree rebuilt from them differs, and the next checkpoint would be a fork signed with the log's
   * key: refuse to open instead (LOG_STORAGE_FAILED).
   */
  private async checkStoredTree(): Promise<void> {
    const stored = await this.storage.readCheckpoint();
    if (!stored) return;
    const { size, rootHash } = parseCheckpoint(parseNote(stored.note).text);
    await this.exclusive(() => this.syncTree(size));
    if (!bytesEqual(await this.tree.root(size), rootHash)) {
      throw new TeegateError('LOG_STORAGE_FAILED', `the stored tiles do not lead to the root of the last checkpoint (tree size ${size}): a tile is damaged, and the log will not sign a checkpoint that forks from its own; restore the store from a backup`);
    }
  }

  // ---- sequencing ---------------------------------------------------------------------------

  /** Sequences one entry; resolves with its index once it is durable. */
  async append(entry: LogEntry): Promise<{ index: number }> {
    if (this.closed) throw new TeegateError('GATEWAY_SHUTTING_DOWN', 'the transparency log is closed');
    const index = await this.storage.sequence([encodeEntry(entry)]);
    return { index };
  }

  appendReceipt(jws: string): Promise<{ index: number }> {
    return this.append({ type: 'receipt', jws });
  }

  appendAttestation(document: Uint8Array, manifest: unknown): Promise<{ index: number }> {
    return this.append({ type: 'attestation', document, manifest });
  }

  // ---- integration --------------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /** Brings the in-memory tree to `size` from the stored level-0 tiles. */
  private async syncTree(size: number): Promise<void> {
    if (this.tree.size > size) this.tree = new MerkleTree(nodeSha256);
    while (this.tree.size < size) {
      const from = this.tree.size;
      const bundle = Math.floor(from / TILE_WIDTH);
      const tile = await this.storage.readTile(0, bundle);
      const want = tileWidth(0, bundle, size);
      if (!tile || tile.length < want * HASH_SIZE) throw new TeegateError('LOG_STORAGE_FAILED', `stored tile 0/${bundle} is missing or short`);
      const leaves: Uint8Array[] = [];
      for (let i = from - bundle * TILE_WIDTH; i < want; i++) leaves.push(tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      await this.tree.appendAll(leaves);
    }
  }

  /** One integration step: every sequenced entry (up to the batch limit) joins the tree. */
  integrate(): Promise<number> {
    return this.exclusive(async () => {
      try {
        return await this.storage.integrate(async (integrated) => {
          await this.syncTree(integrated);
          const sequenced = await this.storage.sequencedSize();
          const count = Math.min(sequenced - integrated, this.options.maxIntegrationBatch ?? 65536);
          if (count <= 0) return undefined;
          const leaves: Uint8Array[] = [];
          for (let start = integrated; start < integrated + count; start += 4096) {
            const entries = await this.storage.readEntries(start, Math.min(4096, integrated + count - start));
            for (const e of entries) leaves.push(leafHashSync(e));
          }
          await this.tree.appendAll(leaves);
          return { tiles: this.changedTiles(integrated, integrated + count), size: integrated + count };
        });
      } catch (err) {
        this.tree = new MerkleTree(nodeSha256); // may be ahead of storage now: rebuild on next use
        throw err;
      }
    });
  }

  /** The tiles whose contents differ between tree sizes `from` and `to` (in their widest form at `to`). */
  private changedTiles(from: number, to: number): StoredTile[] {
    const tiles: StoredTile[] = [];
    for (let level = 0; ; level++) {
      const per = TILE_WIDTH ** level;
      const before = Math.floor(from / per);
      const after = Math.floor(to / per);
      if (after === before) break;
      for (let n = Math.floor(before / TILE_WIDTH); n <= Math.floor((after - 1) / TILE_WIDTH); n++) {
        const width = tileWidth(level, n, to);
        const hashes = new Uint8Array(width * HASH_SIZE);
        for (let i = 0; i < width; i++) hashes.set(this.tree.node(TILE_HEIGHT * level, n * TILE_WIDTH + i), i * HASH_SIZE);
        tiles.push({ level, index: n, hashes });
      }
    }
    return tiles;
  }

  // ---- publishing ---------------------------------------------------------------------------

  /** Signs and stores a checkpoint of the integrated tree; resolves to the signed note. */
  publish(): Promise<string> {
    return this.exclusive(async () => {
      const size = await this.storage.integratedSize();
      await this.syncTree(size);
      const rootHash = await this.tree.root(size);
      const note = await signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, [this.signer]);
      await this.storage.writeCheckpoint(note, size);
      this.lastPublish = { size, at: Date.now() };
      return note;
    });
  }

  /** Integrates everything sequenced so far and publishes a checkpoint of it. */
  async flush(): Promise<string> {
    let before: number;
    do {
      before = await this.storage.sequencedSize();
      await this.integrate();
    } while ((await this.storage.integratedSize()) < before);
    return this.publish();
  }

  /** Runs integration and publishing in the background. */
  start(): void {
    if (this.timer || this.closed) return;
    const publishMs = this.options.publishIntervalMs ?? 1000;
    // The check runs at least as often as checkpoints are due, so a short publish interval is kept.
    const interval = this.options.integrateIntervalMs ?? Math.min(100, publishMs);
    const publishEvery = this.options.publishEveryEntries ?? 10000;
    const onError = this.options.onError ?? (() => undefined);
    let busy = false;
    const tick = async () => {
      if (busy || this.closed) return;
      busy = true;
      try {
        // Proofs are served against published checkpoints, so the tree grows when a checkpoint is
        // due, not on every tick: under a steady load that is one tile write-out per checkpoint
        // instead of one per tick (ten times less fsync'ing at the defaults).
        const waiting = (await this.storage.sequencedSize()) - Math.max(0, this.lastPublish.size);
        const due = this.lastPublish.size < 0 || waiting >= publishEvery || (waiting > 0 && Date.now() - this.lastPublish.at >= publishMs);
        if (!due) return;
        await this.integrate();
        await this.publish();
      } catch (err) {
        onError(err);
      } finally {
        busy = false;
      }
    };
    this.timer = setInterval(() => void tick(), interval);
    this.timer.unref();
    void tick();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.serial;
    await this.storage.close();
  }

  // ---- reading ------------------------------------------------------------------------------

  /** The latest published checkpoint (signed note). */
  async checkpoint(): Promise<{ note: string; size: number }> {
    const cp = await this.storage.readCheckpoint();
    if (!cp) throw notFound('no checkpoint has been published yet');
    return cp;
  }

  private async checkSize(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new TeegateError('LOG_RANGE_INVALID', 'tree size is not a non-negative safe integer');
    const integrated = await this.storage.integratedSize();
    if (size > integrated) throw new TeegateError('LOG_RANGE_INVALID', `tree size ${size} is beyond the integrated size ${integrated}`);
    // Checked again once it is this call's turn: an integration queued before it may have grown the
    // tree past `integrated` (a replica of a shared store), and syncTree to a smaller size rebuilds.
    if (this.tree.size < integrated) {
      await this.exclusive(async () => {
        if (this.tree.size < integrated) await this.syncTree(integrated);
      });
    }
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` leaves. */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    await this.checkSize(size);
    return this.tree.inclusionProof(index, size);
  }

  /** RFC 9162 consistency proof between tree sizes `from` and `to`. */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    await this.checkSize(to);
    return this.tree.consistencyProof(from, to);
  }

  /** Encoded entries [start, start + count) of the integrated tree. */
  async entries(start: number, count: number): Promise<Uint8Array[]> {
    checkEntryRange(start, count, await this.storage.integratedSize(), 'integrated');
    return this.storage.readEntries(start, count);
  }

  /** Tile (level, index) at `width` hashes, when the log has integrated that far. */
  async tile(level: number, index: number, width: number): Promise<Uint8Array> {
    const stored = await this.storage.readTile(level, index);
    if (!stored || stored.length < width * HASH_SIZE) throw notFound(`tile ${level}/${index} of width ${width} does not exist`);
    return stored.subarray(0, width * HASH_SIZE);
  }

  /** Entry bundle `index` at `width` entries. */
  async entryBundle(index: number, width: number): Promise<Uint8Array> {
    const start = index * TILE_WIDTH;
    if (start + width > (await this.storage.integratedSize())) throw notFound(`entry bundle ${index} of width ${width} does not exist`);
    return encodeEntryBundle(await this.storage.readEntries(start, width));
  }
}
