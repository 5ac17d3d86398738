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
import { openCheckpoint, signCheckpoint } from '../../attestation/log/checkpoint';
import { decodeEntry, encodeEntry, type LogEntry } from '../../attestation/log/entry';
import { encodeEntryBundle } from '../../attestation/log/entry-bundle';
import { HASH_SIZE, MerkleTree, type Sha256 } from '../../attestation/log/merkle';
import { formatVerifierKey, generateNoteKey, parseNote, parseSignerKey, parseVerifierKey, type NoteSigner, type NoteVerifierKey } from '../../attestation/log/signed-note';
import { TILE_HEIGHT, TILE_WIDTH, tileWidth } from '../../attestation/log/tiles';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import type { ReceiptSink } from './receipt-sink';
import { checkEntryRange, storageError, type LogStorage, type StoredTile } from './storage/log-storage';

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
/** Most full entry bundles whose digest the log remembers as checked. */
const MAX_CHECKED_BUNDLES = 65_536;

function leafHashSync(entry: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

/** Each of `entries` (stored from index `start`) must be the leaf the tree holds there. */
function checkLeaves(tree: MerkleTree, start: number, entries: readonly Uint8Array[]): void {
  const leaves = tree.nodes(0, start, entries.length);
  for (const [i, e] of entries.entries()) {
    if (!bytesEqual(leafHashSync(e), leaves.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) throw storageError(`stored entry ${start + i} is not the entry the log's tree holds: the store was changed`);
  }
}

function notFound(message: string): TeegateError {
  return new TeegateError('LOG_NOT_FOUND', message);
}

/** A size the store reports: a non-negative safe integer, or the store is damaged. */
function storedSize(size: number, what: string): number {
  if (!Number.isSafeInteger(size) || size < 0) throw storageError(`the store's ${what} size (${size}) is not a non-negative whole number`);
  return size;
}

/** A checkpoint this log signed, as read back from its store and verified with its key. */
interface SignedCheckpoint {
  readonly note: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export class TransparencyLog implements ReceiptSink {
  private tree = new MerkleTree(nodeSha256);
  private serial: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastPublish: { size: number; at: number } = { size: -1, at: 0 };
  private closed = false;
  /**
   * The largest checkpoint signed with this log's key that this process knows of (its own, or a
   * replica's read back from the store): every later one must extend it. The store is not
   * trusted (ARCHITECTURE.md): whoever edits it must not get a fork of this checkpoint signed.
   */
  private signed: SignedCheckpoint | undefined;
  /** The last stored note verified, so a checkpoint read again is not verified again. */
  private verifiedNote: SignedCheckpoint | undefined;
  /**
   * SHA-256 of each full entry bundle already checked entry by entry against a tree, by tree
   * instance (a replaced tree drops them). A full bundle never changes, so serving it again costs
   * one hash of the bundle instead of 256 leaf hashes; a stored bundle that no longer matches is
   * checked entry by entry again, which names the damage.
   */
  private readonly checkedBundles = new WeakMap<MerkleTree, Map<number, string>>();

  private constructor(
    readonly storage: LogStorage,
    readonly origin: string,
    private readonly signer: NoteSigner,
    /** The verifier key (`<origin>+<key id>+<base64 key>`) auditors and clients pin. */
    readonly verifierKey: string,
    private readonly options: TransparencyLogOptions,
    private readonly verifier: NoteVerifierKey,
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
    const verifierKey = await formatVerifierKey(origin, signer.publicKey);
    const log = new TransparencyLog(options.storage, origin, signer, verifierKey, options, await parseVerifierKey(verifierKey));
    await log.checkStoredTree();
    return log;
  }

  /**
   * The stored tiles must lead to the root of the last stored checkpoint. If one was damaged, the
   * tree rebuilt from them differs, and the next checkpoint would be a fork signed with the log's
   * key: refuse to open instead (LOG_STORAGE_FAILED).
   */
  private async checkStoredTree(): Promise<void> {
    await this.exclusive(() => this.extendStored());
  }

  /** The store's integrated size, checked (storedSize). */
  private async integratedSize(): Promise<number> {
    return storedSize(await this.storage.integratedSize(), 'integrated');
  }

  /**
   * Reads the stored checkpoint, then the integrated size, and brings the tree to that size (at
   * least `atLeast`) through extendsSigned; resolves to the size. In that order: a checkpoint is
   * written only after its integration committed, so in an honest store one read first never
   * exceeds the size read after it (read the other way round, a replica's integration in between
   * looks like a rollback). Call it in turn (exclusive).
   */
  private async extendStored(atLeast = 0): Promise<number> {
    const read = await this.storedSigned();
    const size = Math.max(await this.integratedSize(), atLeast);
    await this.extendsSigned(size, read);
    return size;
  }

  /**
   * The stored checkpoint if this log signed it. A note that is not one (garbage, a changed size,
   * a signature that does not verify) is treated as absent: it is not served, and the next
   * checkpoint replaces it; deleting it would have the same effect. A note signed under this log's
   * name by another key, and not by this one, means the store's log key was replaced: refused.
   */
  private async storedSigned(): Promise<SignedCheckpoint | undefined> {
    const stored = await this.storage.readCheckpoint();
    if (!stored) return undefined;
    if (this.verifiedNote?.note === stored.note) return this.verifiedNote;
    try {
      const { checkpoint } = await openCheckpoint(stored.note, this.verifier, { origin: this.origin });
      this.verifiedNote = { note: stored.note, size: checkpoint.size, rootHash: checkpoint.rootHash };
      return this.verifiedNote;
    } catch (err) {
      if (!isTeegateError(err)) throw err;
      let signatures: readonly { name: string; keyId: number }[] = [];
      try {
        signatures = parseNote(stored.note).signatures;
      } catch {
        return undefined;
      }
      const ours = signatures.some((sig) => sig.name === this.verifier.name && sig.keyId === this.verifier.keyId);
      if (!ours && signatures.some((sig) => sig.name === this.verifier.name)) {
        throw storageError(`the stored checkpoint is signed by another key named ${this.verifier.name}, not by this log's key (${this.verifierKey}): the log key in the store was replaced, or the checkpoint; the log will not go on under another key`);
      }
      return undefined;
    }
  }

  /**
   * Refuses (LOG_STORAGE_FAILED) unless the tree at `size`, as the store holds it, extends the
   * largest checkpoint this log signed: the one it remembers and the stored one (a replica's,
   * `read` if the caller read it before `size` (extendStored); read here otherwise, which within an
   * integration holds, as nothing else integrates meanwhile). Brings the in-memory tree to `size` first.
   */
  private async extendsSigned(size: number, read?: SignedCheckpoint): Promise<void> {
    const stored = read ?? (await this.storedSigned());
    if (stored && (!this.signed || stored.size > this.signed.size)) {
      // A replica's newer checkpoint must itself extend the one this process signed.
      if (this.signed && this.signed.size <= size) await this.checkPrefix(this.signed, size);
      this.signed = stored;
    }
    if (!this.signed) return this.syncTree(size);
    await this.checkPrefix(this.signed, size);
  }

  private async checkPrefix(signed: SignedCheckpoint, size: number): Promise<void> {
    if (size < signed.size) {
      throw storageError(`the store holds ${size} integrated entries, fewer than the ${signed.size} of the last checkpoint this log signed: entries it covers were removed or the store was rolled back; restore it from a backup`);
    }
    await this.syncTree(size);
    if (!bytesEqual(await this.tree.root(signed.size), signed.rootHash)) {
      this.tree = new MerkleTree(nodeSha256);
      throw storageError(`the stored tiles do not lead to the root of the last checkpoint (tree size ${signed.size}): a tile or entry is damaged, and the log will not sign a checkpoint that forks from its own; restore the store from a backup`);
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

  /**
   * Brings the in-memory tree to `size` from the stored level-0 tiles. The tree only ever holds
   * what the store committed (a failed integration drops it), and an honest store's integrated
   * size never falls: a smaller `size` means entries this log integrated, signed or not yet, were
   * rolled back in the store, which could then have them integrated again as other bytes (an
   * acknowledged entry replaced): refused, as below a signed checkpoint.
   */
  private async syncTree(size: number): Promise<void> {
    if (this.tree.size > size) {
      throw storageError(`the store holds ${size} integrated entries, fewer than the ${this.tree.size} this log integrated: the store was rolled back; restore it from a backup`);
    }
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
      let grew = false;
      try {
        return await this.storage.integrate(async (integrated) => {
          await this.extendsSigned(storedSize(integrated, 'integrated'));
          grew = true; // from here on the tree may run ahead of what the store commits
          const sequenced = storedSize(await this.storage.sequencedSize(), 'sequenced');
          const count = Math.min(sequenced - integrated, this.options.maxIntegrationBatch ?? 65536);
          if (count <= 0) return undefined;
          const leaves: Uint8Array[] = [];
          for (let start = integrated; start < integrated + count; start += 4096) {
            const want = Math.min(4096, integrated + count - start);
            const entries = await this.readStored(start, want);
            for (const [i, e] of entries.entries()) {
              // Only entries this log encodes (at most MAX_ENTRY_BYTES, in their one encoding) are
              // signed into its tree: a row or record the store changed is refused, not made provable.
              try {
                decodeEntry(e);
              } catch (err) {
                if (!isTeegateError(err)) throw err;
                throw storageError(`stored entry ${start + i} is not a log entry: ${err.message}`, err);
              }
              leaves.push(leafHashSync(e));
            }
          }
          await this.tree.appendAll(leaves);
          return { tiles: this.changedTiles(integrated, integrated + count), size: integrated + count };
        });
      } catch (err) {
        // Ahead of the store now: rebuilt on next use. Not when the step failed before growing it
        // (a lock wait that timed out): rebuilding a large tree under the integration lock would
        // make the other replicas' waits time out in turn.
        if (grew) this.tree = new MerkleTree(nodeSha256);
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
      const size = await this.extendStored();
      const rootHash = await this.tree.root(size);
      const note = await signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, [this.signer]);
      await this.storage.writeCheckpoint(note, size);
      this.signed = { note, size, rootHash };
      // Read back: a store that keeps an older note (its size column says otherwise) would freeze
      // publishing without a word.
      const stored = await this.storedSigned();
      if (!stored || stored.size < size) {
        throw storageError(`the store did not keep the checkpoint of tree size ${size}: it holds ${stored ? `one of size ${stored.size}` : 'none this log signed'}`);
      }
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

  /** The latest published checkpoint (signed note) this log signed; its size is the note's. */
  async checkpoint(): Promise<{ note: string; size: number }> {
    const cp = await this.storedSigned();
    if (!cp) throw notFound('no checkpoint has been published yet');
    return { note: cp.note, size: cp.size };
  }

  /** The tree, holding at least `size` leaves; LOG_RANGE_INVALID if the log has not integrated that far. */
  private async checkSize(size: number): Promise<MerkleTree> {
    if (!Number.isSafeInteger(size) || size < 0) throw new TeegateError('LOG_RANGE_INVALID', 'tree size is not a non-negative safe integer');
    if (this.tree.size >= size) return this.tree;
    const integrated = await this.integratedSize();
    if (size > integrated) throw new TeegateError('LOG_RANGE_INVALID', `tree size ${size} is beyond the integrated size ${integrated}`);
    return this.ensureTree(integrated);
  }

  /**
   * The tree, grown to `integrated` leaves (the store's integrated size) if it holds fewer. The
   * tiles it grows from are checked against the last signed checkpoint: nothing is served from a
   * tree that forks from it. The instance is returned: a failed integration may replace `tree`
   * meanwhile.
   */
  private async ensureTree(integrated: number): Promise<MerkleTree> {
    if (this.tree.size >= integrated) return this.tree;
    return this.exclusive(async () => {
      // Checked again once it is this call's turn: an integration queued before it may have grown the tree.
      if (this.tree.size < integrated) await this.extendStored(integrated);
      return this.tree;
    });
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` leaves. */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    return (await this.checkSize(size)).inclusionProof(index, size);
  }

  /** RFC 9162 consistency proof between tree sizes `from` and `to`. */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    return (await this.checkSize(to)).consistencyProof(from, to);
  }

  /** Encoded entries [start, start + count) of the integrated tree. */
  async entries(start: number, count: number): Promise<Uint8Array[]> {
    const integrated = await this.integratedSize();
    checkEntryRange(start, count, integrated, 'integrated');
    return this.checkedEntries(start, count, integrated);
  }

  /**
   * Stored entries [start, start + count): all of them (a short read, or a range the store says it
   * does not hold although its own sizes cover it, is damage: LOG_STORAGE_FAILED).
   */
  private async readStored(start: number, count: number): Promise<Uint8Array[]> {
    let entries: Uint8Array[];
    try {
      entries = await this.storage.readEntries(start, count);
    } catch (err) {
      if (isTeegateError(err) && err.code === 'LOG_RANGE_INVALID') throw storageError(`the store cannot read entries ${start}..${start + count - 1}, which it holds: ${err.message}`, err);
      throw err;
    }
    if (entries.length !== count) throw storageError(`the store returned ${entries.length} of entries ${start}..${start + count - 1}, which it holds`);
    return entries;
  }

  /** Integrated entries as stored, each checked against its leaf in the tree the log signs. */
  private async checkedEntries(start: number, count: number, integrated: number): Promise<Uint8Array[]> {
    const tree = await this.ensureTree(integrated);
    const entries = await this.readStored(start, count);
    checkLeaves(tree, start, entries);
    return entries;
  }

  /** Tile (level, index) at `width` hashes, when the log has integrated that far; checked against the tree. */
  async tile(level: number, index: number, width: number): Promise<Uint8Array> {
    // The store's size is asked only when the tree does not cover the tile yet.
    const covering = (size: number) => width <= tileWidth(level, index, size);
    const integrated = covering(this.tree.size) ? this.tree.size : await this.integratedSize();
    if (!covering(integrated)) throw notFound(`tile ${level}/${index} of width ${width} does not exist`);
    const stored = await this.storage.readTile(level, index);
    if (!stored || stored.length < width * HASH_SIZE) {
      // Within what the store says it integrated a tile must exist: one missing is the store's
      // fault, not a 404. (The tree alone may be ahead of the store while an integration commits.)
      if (covering(await this.integratedSize())) {
        throw storageError(`stored tile ${level}/${index} is missing or shorter than ${width} hashes, within the integrated tree`);
      }
      throw notFound(`tile ${level}/${index} of width ${width} does not exist`);
    }
    const tree = await this.ensureTree(integrated);
    const served = stored.subarray(0, width * HASH_SIZE);
    if (!bytesEqual(served, tree.nodes(TILE_HEIGHT * level, index * TILE_WIDTH, width))) {
      throw storageError(`stored tile ${level}/${index} is not the tile of the log's tree: the store was changed`);
    }
    return served;
  }

  /** Entry bundle `index` at `width` entries, each checked against the tree. */
  async entryBundle(index: number, width: number): Promise<Uint8Array> {
    const start = index * TILE_WIDTH;
    const integrated = await this.integratedSize();
    if (start + width > integrated) throw notFound(`entry bundle ${index} of width ${width} does not exist`);
    const tree = await this.ensureTree(integrated);
    const entries = await this.readStored(start, width);
    const bundle = encodeEntryBundle(entries);
    // A partial bundle still grows: only a full one is remembered, once its check passed.
    // As a 32-character (latin1) string: a third of the memory of a Buffer per digest.
    const digest = width === TILE_WIDTH ? createHash('sha256').update(bundle).digest('binary') : undefined;
    if (digest !== undefined && this.checkedBundles.get(tree)?.get(index) === digest) return bundle;
    checkLeaves(tree, start, entries);
    if (digest !== undefined) this.rememberChecked(tree, index, digest);
    return bundle;
  }

  /** Remembers full bundle `index` as checked against `tree`, by its digest. */
  private rememberChecked(tree: MerkleTree, index: number, digest: string): void {
    let known = this.checkedBundles.get(tree);
    if (!known) this.checkedBundles.set(tree, (known = new Map()));
    // Bounded (the first remembered goes first): 65,536 digests cover 16.7 M entries in about 5 MiB.
    if (known.size >= MAX_CHECKED_BUNDLES) known.delete(known.keys().next().value as number);
    known.set(index, digest);
  }
}
