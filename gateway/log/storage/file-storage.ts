/**
 * The embedded log store: files under a data directory (default ./data/log).
 *
 *   entries.log        records [uint32 BE length][uint32 BE CRC-32][entry], appended and
 *                      durable (O_DSYNC, or fdatasync) before an append is acknowledged (group commit:
 *                      one durable write per batch)
 *   tiles/<L>/<N>      the widest version of Merkle tile (L, N): width * 32 bytes
 *   integrated         the integrated tree size (decimal), written after the tiles it covers
 *   checkpoint         the latest signed checkpoint (signed note)
 *   log-signing.key    the log's Ed25519 signer key (mode 0600), created on first start
 *   LOCK               the process that has the store open (gateway/folder-lock.ts)
 *
 * Every file but entries.log is replaced atomically (write to a temporary file, fsync, rename,
 * fsync the directory). On open, entries.log is scanned; a torn tail (a record cut short or with a
 * bad CRC, from a crash in the middle of an unacknowledged write) is truncated away. A record that
 * does not read back below the integrated size is damage, not a torn tail: the store refuses to
 * open (LOG_STORAGE_FAILED) rather than cut acknowledged, checkpointed entries.
 */
import { constants, fstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { TeegateError, isTeegateError } from '../../../attestation/errors';
import { DECIMAL_SIZE, parseCheckpoint } from '../../../attestation/log/checkpoint';
import { MAX_ENTRY_BYTES } from '../../../attestation/log/entry';
import { parseNote } from '../../../attestation/log/signed-note';
import { GroupCommit } from './group-commit';
import { FolderInUseError, lockFolder } from '../../folder-lock';
import { checkEntryRange, storageError, type IntegrationResult, type LogStorage } from './log-storage';

const HEADER = 8;
/**
 * entries.log is opened for appending with O_DSYNC where the platform has it: each write returns
 * only once its data is on disk, so an append is one thread-pool job instead of a write and an
 * fdatasync (two). Without O_DSYNC, writeBatch calls fdatasync itself.
 */
const DSYNC = constants.O_DSYNC;
const APPEND_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | (DSYNC ?? 0);
const SCAN_CHUNK = 16 * 1024 * 1024;

/** fsync of a directory off the event loop (integration and checkpoints run while requests are served). */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAtomic(dir: string, name: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = join(dir, `.${name.replace(/\//g, '_')}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageError(`cannot read ${path}`, err);
  }
}

export class FileLogStorage implements LogStorage {
  /** offsets[i] = file offset of record i; offsets[size] = end of the valid records. */
  private readonly offsets: number[];
  private integrated: number;
  private checkpoint: { note: string; size: number } | undefined;
  private readonly commit: GroupCommit;
  private integrating: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly fh: FileHandle,
    private readonly unlock: () => Promise<void>,
    offsets: number[],
    integrated: number,
    checkpoint: { note: string; size: number } | undefined,
  ) {
    this.offsets = offsets;
    this.integrated = integrated;
    this.checkpoint = checkpoint;
    this.commit = new GroupCommit((batch) => this.writeBatch(batch));
  }

  static async open(dir: string): Promise<FileLogStorage> {
    let fh: FileHandle | undefined;
    let unlock: (() => Promise<void>) | undefined;
    try {
      mkdirSync(join(dir, 'tiles'), { recursive: true });
      unlock = await lockFolder(dir).catch((err: unknown) => {
        if (err instanceof FolderInUseError) {
          throw storageError(`the log store in ${dir} is in use by process ${err.pid}: one gateway per file store (replicas share the PostgreSQL store); if no gateway runs there, delete ${err.lockFile}`);
        }
        throw storageError(`cannot lock the log store in ${dir}`, err);
      });
      const path = join(dir, 'entries.log');
      const integratedText = await readOptional(join(dir, 'integrated'));
      // The store writes the size in decimal and nothing else: anything else (an empty file
      // included) is damage, not a size to guess from.
      const text = integratedText?.toString('utf8');
      const integrated = text === undefined ? 0 : DECIMAL_SIZE.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(integrated) || integrated < 0) throw storageError(`${dir}/integrated is corrupt`);
      fh = await open(path, APPEND_FLAGS);
      const info = await fh.stat();
      // A device or a pipe in its place (a link to /dev/null) would take appends and keep nothing.
      if (!info.isFile()) throw storageError(`${path} is not a regular file`);
      const offsets = await scanEntries(fh, info.size);
      const readable = offsets.length - 1;
      const end = offsets[readable]!;
      // A crash can only tear the last write, whose entries were never integrated: a record that
      // does not read back below the integrated size is damage, and cutting there would delete
      // entries a signed checkpoint covers. Refuse, and leave the file as it is.
      if (readable < integrated) {
        throw storageError(`${path} is damaged: the record at byte ${end} (entry ${readable}) does not read back, and ${integrated} entries were integrated; the file is left as it is: restore it from a backup`);
      }
      if (info.size !== end) {
        await fh.truncate(end);
        await fh.sync();
      }
      const checkpoint = storedCheckpoint(await readOptional(join(dir, 'checkpoint')));
      return new FileLogStorage(dir, fh, unlock, offsets, integrated, checkpoint);
    } catch (err) {
      // A refused store keeps no descriptor open and no lock (the caller may retry, or repair and reopen).
      await fh?.close().catch(() => undefined);
      await unlock?.();
      if (err instanceof TeegateError) throw err;
      throw storageError(`cannot open the log store in ${dir}: ${(err as Error).message}`, err);
    }
  }

  private get size(): number {
    return this.offsets.length - 1;
  }

  sequence(entries: readonly Uint8Array[]): Promise<number> {
    if (this.closed) return Promise.reject(storageError('the log store is closed'));
    // A record's length is read back as at most 0xffff (scanEntries): a longer one would be
    // acknowledged now and cut off as a torn tail at the next open.
    const large = entries.find((e) => e.length > MAX_ENTRY_BYTES);
    if (large) return Promise.reject(new TeegateError('LOG_ENTRY_TOO_LARGE', `entry is ${large.length} bytes, the most a log entry may be is ${MAX_ENTRY_BYTES}`));
    return this.commit.append(entries);
  }

  private async writeBatch(batch: readonly Uint8Array[]): Promise<number> {
    let total = 0;
    for (const e of batch) total += HEADER + e.length;
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (const e of batch) {
      buf.writeUInt32BE(e.length, off);
      buf.writeUInt32BE(crc32(e), off + 4);
      buf.set(e, off + HEADER);
      off += HEADER + e.length;
    }
    const first = this.size;
    const start = this.offsets[first]!;
    // The file is opened O_APPEND: bytes someone else added would put this batch where the index
    // does not look, and an acknowledged entry would read back as other bytes. Checked with a
    // synchronous fstat (about a microsecond; an async one would cost a thread-pool round trip on
    // every append).
    const onDisk = fstatSync(this.fh.fd).size;
    if (onDisk !== start) {
      throw storageError(`${this.dir}/entries.log is ${onDisk} bytes, but the log wrote ${start}: it was changed outside the log; nothing more is appended (restore it, then restart)`);
    }
    try {
      let written = 0;
      while (written < total) {
        const { bytesWritten } = await this.fh.write(buf, written, total - written, start + written);
        written += bytesWritten;
      }
      if (DSYNC === undefined) await this.fh.datasync();
    } catch (err) {
      // Nothing of this batch is acknowledged; cut it off so the next batch starts clean.
      await this.fh.truncate(start).catch(() => undefined);
      throw storageError(`appending to ${this.dir}/entries.log failed: ${(err as Error).message}`, err);
    }
    let pos = start;
    for (const e of batch) {
      pos += HEADER + e.length;
      this.offsets.push(pos);
    }
    return first;
  }

  async sequencedSize(): Promise<number> {
    return this.size;
  }

  async readEntries(start: number, count: number): Promise<Uint8Array[]> {
    checkEntryRange(start, count, this.size);
    if (count === 0) return [];
    const from = this.offsets[start]!;
    const to = this.offsets[start + count]!;
    const buf = Buffer.allocUnsafe(to - from);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await this.fh.read(buf, got, buf.length - got, from + got);
      if (bytesRead === 0) throw storageError('entries.log is shorter than its index');
      got += bytesRead;
    }
    const out: Uint8Array[] = [];
    for (let i = start; i < start + count; i++) {
      const off = this.offsets[i]! - from + HEADER;
      out.push(new Uint8Array(buf.buffer, buf.byteOffset + off, this.offsets[i + 1]! - from - off).slice());
    }
    return out;
  }

  async readTile(level: number, index: number): Promise<Uint8Array | undefined> {
    const data = await readOptional(join(this.dir, 'tiles', String(level), String(index)));
    return data ? new Uint8Array(data.buffer, data.byteOffset, data.length) : undefined;
  }

  async integratedSize(): Promise<number> {
    return this.integrated;
  }

  integrate(grow: (integratedSize: number) => Promise<IntegrationResult | undefined>): Promise<number> {
    const run = this.integrating.then(async () => {
      const result = await grow(this.integrated);
      if (!result || result.size === this.integrated) return this.integrated;
      if (result.size < this.integrated || result.size > this.size) throw storageError(`integration to size ${result.size} is out of range`);
      try {
        const dirs = new Set<string>();
        for (const tile of result.tiles) {
          const dir = join(this.dir, 'tiles', String(tile.level));
          mkdirSync(dir, { recursive: true });
          await writeAtomic(dir, String(tile.index), tile.hashes);
          dirs.add(dir);
        }
        for (const dir of dirs) await fsyncDir(dir);
        await writeAtomic(this.dir, 'integrated', String(result.size));
        await fsyncDir(this.dir);
      } catch (err) {
        throw storageError(`storing tiles in ${this.dir} failed: ${(err as Error).message}`, err);
      }
      this.integrated = result.size;
      return this.integrated;
    });
    this.integrating = run.catch(() => undefined);
    return run;
  }

  async readCheckpoint(): Promise<{ note: string; size: number } | undefined> {
    return this.checkpoint;
  }

  async writeCheckpoint(note: string, size: number): Promise<void> {
    try {
      await writeAtomic(this.dir, 'checkpoint', note);
      await fsyncDir(this.dir);
    } catch (err) {
      throw storageError(`storing the checkpoint in ${this.dir} failed`, err);
    }
    this.checkpoint = { note, size };
  }

  async loadOrCreateSigningKey(create: () => Promise<string>): Promise<string> {
    const path = join(this.dir, 'log-signing.key');
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(`cannot read ${path}`, err);
    }
    const key = await create();
    try {
      writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
      await fsyncDir(this.dir);
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError(`cannot create ${path}`, err);
    }
    // Another process created it first, or the name is taken by something that does not read
    // back as a file (a dangling link): the stored key, or a typed refusal.
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw storageError(`cannot read ${path}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.integrating;
    await this.fh.close();
    await this.unlock();
  }
}

/**
 * The checkpoint file's note and tree size, if it is a signed note of a checkpoint; anything else
 * is ignored (derived data: the next checkpoint replaces it). Whether this log signed it, and
 * whether the store still holds the tree it covers, the log checks (TransparencyLog): a note
 * claiming a larger tree than was integrated is either not the log's (ignored) or proof that the
 * store was rolled back (refused).
 */
function storedCheckpoint(file: Buffer | undefined): { note: string; size: number } | undefined {
  if (file === undefined) return undefined;
  const note = file.toString('utf8');
  try {
    const { size } = parseCheckpoint(parseNote(note).text);
    return { note, size };
  } catch (err) {
    if (isTeegateError(err)) return undefined;
    throw err;
  }
}

/** Offsets of the valid records of the file's `size` bytes, plus the end of the last one; stops at the first torn record. */
async function scanEntries(fh: FileHandle, size: number): Promise<number[]> {
  const offsets = [0];
  let pos = 0;
  let buf = Buffer.alloc(0);
  let bufStart = 0;
  for (;;) {
    // Make sure the header and then the whole record are in the buffer.
    const need = async (n: number): Promise<boolean> => {
      if (pos + n > size) return false;
      if (pos - bufStart + n <= buf.length) return true;
      const len = Math.max(n, SCAN_CHUNK);
      const fresh = Buffer.allocUnsafe(Math.min(len, size - pos));
      const { bytesRead } = await fh.read(fresh, 0, fresh.length, pos);
      buf = fresh.subarray(0, bytesRead);
      bufStart = pos;
      return bytesRead >= n;
    };
    if (!(await need(HEADER))) break;
    const len = buf.readUInt32BE(pos - bufStart);
    const crc = buf.readUInt32BE(pos - bufStart + 4);
    if (len > MAX_ENTRY_BYTES || !(await need(HEADER + len))) break;
    const o = pos - bufStart + HEADER;
    if (crc32(buf.subarray(o, o + len)) !== crc) break;
    pos += HEADER + len;
    offsets.push(pos);
  }
  return offsets;
}
