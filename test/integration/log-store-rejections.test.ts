/**
 * The log stores refuse a damaged or unusable store with a typed error (LOG_STORAGE_FAILED, or
 * CONFIG_INVALID for a setting) rather than serving a wrong log or crashing: files written by the
 * file store and then damaged in a temp folder, a PostgreSQL schema damaged under a running log, a
 * write that fails half-way, and the log's own range checks and HTTP error mapping.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { LEASE_MS, LEASE_REFRESH_MS, lockFolder, startTimeOf } from '../../gateway/folder-lock';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import express from 'express';
import { Pool } from 'pg';
import { openLogStorage, openTransparencyLog } from '../../gateway/log/open-log';
import { logRouter } from '../../gateway/log/routes';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { DEFAULT_PG_URL, PostgresLogStorage } from '../../gateway/log/storage/postgres-storage';
import { TransparencyLog } from '../../gateway/log/transparency-log';
import { refusalOf } from '../support/error-code';
import { openFileLog, tempDir } from './log-fixtures';

jest.setTimeout(60_000);

const PG_URL = process.env.TEEGATE_PG_URL ?? DEFAULT_PG_URL;
const entry = (i: number) => new Uint8Array(Buffer.from(`entry-${i}`));

/** A file log in a new folder holding `count` receipts, integrated (and checkpointed unless `publish` is false), then closed. */
async function closedFileLog(count: number, publish = true): Promise<string> {
  const dir = tempDir();
  const log = await openFileLog(dir);
  for (let i = 0; i < count; i++) await log.appendReceipt(`r.${i}.x`);
  if (publish) await log.flush();
  else await log.integrate();
  await log.close();
  return dir;
}

/** The refusal of opening a log on the file store in `dir`; the store is closed afterwards (the caller of TransparencyLog.open owns it). */
async function logRefusal(dir: string): Promise<{ code: string; message: string }> {
  const storage = await FileLogStorage.open(dir);
  try {
    return await refusalOf(() => TransparencyLog.open({ storage, origin: 'test.teegate/log' }));
  } finally {
    await storage.close();
  }
}

/** Whether this process holds a file descriptor open on `path` (Linux). */
function holdsOpen(path: string): boolean {
  return readdirSync('/proc/self/fd').some((n) => {
    try {
      return readlinkSync(`/proc/self/fd/${n}`) === path;
    } catch {
      return false;
    }
  });
}

/** Serves the log router on loopback, recording what it reports as internal failures. */
async function serve(log: TransparencyLog): Promise<{ url: string; internal: unknown[]; close: () => Promise<void> }> {
  const internal: unknown[] = [];
  const app = express();
  app.use('/v1/log', logRouter(log, { onInternal: (err) => internal.push(err) }));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/log`,
    internal,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('file store: a damaged data folder is refused at open', () => {
  it('an `integrated` file that is not a tree size', async () => {
    const dir = await closedFileLog(3);
    for (const bad of ['garbage', '-1', '1.5', '', '0x2', '1e0', ' 2']) {
      writeFileSync(join(dir, 'integrated'), bad);
      expect(await refusalOf(() => FileLogStorage.open(dir))).toEqual({ code: 'LOG_STORAGE_FAILED', message: `${dir}/integrated is corrupt` });
    }
    writeFileSync(join(dir, 'integrated'), '3');
    const again = await openFileLog(dir);
    expect(await again.storage.integratedSize()).toBe(3);
    await again.close();
  });

  it('an `integrated` beyond the entries that read back: entries.log is shorter than the integrated tree', async () => {
    const dir = await closedFileLog(5);
    const path = join(dir, 'entries.log');
    const records = readFileSync(path);
    truncateSync(path, records.length - 1); // the last integrated record no longer reads back
    expect(await refusalOf(() => FileLogStorage.open(dir))).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringContaining(`${path} is damaged: the record at byte`) });
    expect(statSync(path).size).toBe(records.length - 1); // left as it is
  });

  it('a stored file that cannot be read (a folder in its place) names it', async () => {
    const dir = await closedFileLog(2);
    rmSync(join(dir, 'integrated'));
    mkdirSync(join(dir, 'integrated'));
    expect(await refusalOf(() => FileLogStorage.open(dir))).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot read ${join(dir, 'integrated')}` });
  });

  (process.platform === 'linux' ? it : it.skip)('a store refused after entries.log was opened keeps no descriptor on it', async () => {
    const dir = await closedFileLog(2);
    rmSync(join(dir, 'checkpoint'));
    mkdirSync(join(dir, 'checkpoint')); // read after entries.log is opened and scanned
    expect(await refusalOf(() => FileLogStorage.open(dir))).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot read ${join(dir, 'checkpoint')}` });
    expect(holdsOpen(join(dir, 'entries.log'))).toBe(false);
  });

  it('a data folder that cannot be a folder, or an entries.log that is not a file', async () => {
    const parent = tempDir();
    writeFileSync(join(parent, 'data'), 'a file where the data folder should be');
    const underFile = join(parent, 'data', 'log');
    expect(await refusalOf(() => FileLogStorage.open(underFile))).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(new RegExp(`^cannot open the log store in ${underFile}: ENOTDIR`)) });
    // Through the configured entry point: dataDir is that file.
    expect(await refusalOf(() => openLogStorage({ store: 'file', dataDir: join(parent, 'data') }))).toMatchObject({ code: 'LOG_STORAGE_FAILED' });
    const dir = tempDir();
    mkdirSync(join(dir, 'entries.log'));
    expect(await refusalOf(() => FileLogStorage.open(dir))).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(new RegExp(`^cannot open the log store in ${dir}: EISDIR`)) });
  });

  it('a missing or short level-0 tile under the last checkpoint', async () => {
    const dir = await closedFileLog(30);
    const tile = join(dir, 'tiles', '0', '0');
    const bytes = readFileSync(tile);
    writeFileSync(tile, bytes.subarray(0, 29 * 32)); // one hash short of the checkpoint's 30 leaves
    expect(await logRefusal(dir)).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'stored tile 0/0 is missing or short' });
    unlinkSync(tile);
    expect(await logRefusal(dir)).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'stored tile 0/0 is missing or short' });
    writeFileSync(tile, bytes);
    const again = await openFileLog(dir);
    expect((await again.checkpoint()).size).toBe(30);
    await again.close();
  });

  it('a log key that cannot be read', async () => {
    const dir = await closedFileLog(1);
    const key = join(dir, 'log-signing.key');
    rmSync(key);
    mkdirSync(key);
    expect(await logRefusal(dir)).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot read ${key}` });
  });

  it('a log key that is a dangling link: LOG_STORAGE_FAILED, not an untyped crash', async () => {
    const dir = await closedFileLog(1);
    const key = join(dir, 'log-signing.key');
    rmSync(key);
    symlinkSync(join(dir, 'moved-away.key'), key);
    expect(await logRefusal(dir)).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot read ${key}` });
    expect(existsSync(join(dir, 'moved-away.key'))).toBe(false); // no key was made up through the link
  });

  it('a log key that cannot be created (the folder went away)', async () => {
    const dir = tempDir();
    const storage = await FileLogStorage.open(dir);
    rmSync(dir, { recursive: true });
    expect(await refusalOf(() => TransparencyLog.open({ storage, origin: 'test.teegate/log' }))).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot create ${join(dir, 'log-signing.key')}` });
    await storage.close();
  });

  (process.platform === 'linux' ? it : it.skip)('openTransparencyLog closes the store it opened when the log refuses it', async () => {
    const data = tempDir();
    const first = await openTransparencyLog({ store: 'file', dataDir: data, origin: 'test.teegate/log' });
    await first.close();
    writeFileSync(join(data, 'log', 'log-signing.key'), 'garbage\n');
    expect(await refusalOf(() => openTransparencyLog({ store: 'file', dataDir: data, origin: 'test.teegate/log' }))).toMatchObject({ code: 'POLICY_INVALID' });
    expect(holdsOpen(join(data, 'log', 'entries.log'))).toBe(false);
  });
});

describe('file store: one process at a time', () => {
  /** A live process that is not this one (its pid), and a way to end it. */
  function otherProcess(): { pid: number; end: () => Promise<void> } {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { pid: child.pid!, end: async () => (child.kill('SIGKILL'), await exited) };
  }
  /** The lock line of a process of this machine and pid namespace (as folder-lock writes it). */
  const ns = () => /\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0];
  const boot = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const lockLine = (pid: number, start = startTimeOf(pid)) => `${pid} ${start} ${ns()} ${boot()}\n`;

  (process.platform === 'linux' ? it : it.skip)('a store another live process holds is refused, and left as it was; once that process is gone its lock is taken over', async () => {
    const dir = await closedFileLog(3, false);
    const other = otherProcess();
    const line = lockLine(other.pid);
    try {
      writeFileSync(join(dir, 'LOCK'), line);
      appendFileSync(join(dir, 'entries.log'), Buffer.from([0, 0])); // a torn tail the open would cut
      const size = statSync(join(dir, 'entries.log')).size;
      expect(await refusalOf(() => FileLogStorage.open(dir))).toEqual({
        code: 'LOG_STORAGE_FAILED',
        message: `the log store in ${dir} is in use by process ${other.pid}: one gateway per file store (replicas share the PostgreSQL store); if no gateway runs there, delete ${join(dir, 'LOCK')}`,
      });
      expect(statSync(join(dir, 'entries.log')).size).toBe(size); // nothing was cut
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(line);
    } finally {
      await other.end();
    }
    const storage = await FileLogStorage.open(dir); // the holder is gone: a crash's lock
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(lockLine(process.pid));
    await storage.close();
    expect(readdirSync(dir).filter((n) => n.includes('LOCK'))).toEqual([]); // nothing left, temporary files included
  });

  (process.platform === 'linux' ? it : it.skip)('a lock naming a running pid with another start time is a dead holder\'s whose pid was reused (a restarted container): taken over', async () => {
    const dir = await closedFileLog(1);
    const other = otherProcess();
    try {
      writeFileSync(join(dir, 'LOCK'), lockLine(other.pid, '1')); // not when that process started
      await (await FileLogStorage.open(dir)).close();
    } finally {
      await other.end();
    }
  });

  (process.platform === 'linux' ? it : it.skip)('a lock naming a zombie (exited, its parent not reaping it) is a dead holder\'s: taken over', async () => {
    const dir = await closedFileLog(1);
    // The shell starts a short child, then becomes `sleep`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const parentExited = new Promise<void>((resolve) => parent.once('exit', () => resolve()));
    try {
      const zombie = Number((await new Promise<Buffer>((resolve) => parent.stdout.once('data', resolve))).toString().trim());
      const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      for (let i = 0; i < 200 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(state()).toBe('Z');
      writeFileSync(join(dir, 'LOCK'), lockLine(zombie));
      await (await FileLogStorage.open(dir)).close();
    } finally {
      parent.kill('SIGKILL');
      await parentExited;
    }
  });

  it('a lock from another pid namespace or machine lives while it is touched: refused when fresh, taken over when older than the lease', async () => {
    const dir = await closedFileLog(1);
    writeFileSync(join(dir, 'LOCK'), `1 12345 4026530000 00000000-0000-0000-0000-000000000000\n`); // pid 1 of another container
    expect((await refusalOf(() => FileLogStorage.open(dir))).message).toMatch(/is in use by process 1:/);
    const old = new Date(Date.now() - LEASE_MS - 1_000);
    utimesSync(join(dir, 'LOCK'), old, old);
    await (await FileLogStorage.open(dir)).close();
  });

  it('a holder keeps its lease fresh while it holds the store', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const dir = await closedFileLog(1);
      const storage = await FileLogStorage.open(dir);
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(dir, 'LOCK'), old, old);
      jest.advanceTimersByTime(LEASE_REFRESH_MS);
      // The touch runs on libuv's thread pool: wait turns of the event loop for it (the clocks are
      // fake; 50 turns were too few once, under a full parallel run), up to about a second.
      for (let i = 0; i < 200_000 && statSync(join(dir, 'LOCK')).mtimeMs < Date.now() - 30_000; i++) await new Promise((r) => setImmediate(r));
      expect(statSync(join(dir, 'LOCK')).mtimeMs).toBeGreaterThan(Date.now() - 30_000);
      await storage.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('this process cannot hold one store twice: a second open is refused until the first closes', async () => {
    const dir = await closedFileLog(1);
    const first = await FileLogStorage.open(dir);
    expect((await refusalOf(() => FileLogStorage.open(dir))).message).toMatch(new RegExp(`is in use by process ${process.pid}:`));
    await first.close();
    await (await FileLogStorage.open(dir)).close();
  });

  (process.platform === 'linux' ? it : it.skip)('processes taking over a dead holder\'s lock at the same moment: exactly one wins, every time', async () => {
    // A winner holds the lock until every process has decided (its stdin is closed then): with a
    // fixed hold, a process that started late under load could win after the first let go, which
    // is two winners in turn, not at once.
    const script = `require('tsx/cjs'); require(${JSON.stringify(join(__dirname, '../../gateway/folder-lock.ts'))}).lockFolder(process.argv[1]).then(
      (unlock) => { process.stdout.write('won'); process.stdin.once('end', () => unlock().then(() => process.exit(0))); process.stdin.resume(); },
      (e) => { process.stdout.write(e.name); process.exit(0); });`;
    for (let round = 0; round < 5; round++) {
      const dir = tempDir();
      const dead = otherProcess();
      const line = lockLine(dead.pid);
      await dead.end();
      writeFileSync(join(dir, 'LOCK'), line);
      const children = Array.from({ length: 4 }, () => spawn(process.execPath, ['-e', script, dir], { cwd: join(__dirname, '../..'), stdio: ['pipe', 'pipe', 'inherit'] }));
      const exits = children.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
      const outcomes = await Promise.all(
        children.map((child) => {
          let out = '';
          return new Promise<string>((resolve) => {
            child.stdout!.on('data', (c: Buffer) => {
              out += c.toString();
              resolve(out);
            });
            child.once('exit', () => resolve(out));
          });
        }),
      );
      for (const child of children) child.stdin!.end();
      await Promise.all(exits);
      expect(outcomes.sort()).toEqual(['FolderInUseError', 'FolderInUseError', 'FolderInUseError', 'won']);
    }
  });

  it('a dead holder\'s lock is removed only under LOCK.takeover: a fresh one (a takeover in progress) is waited for, one left by a crashed taker is cleared', async () => {
    const dead = otherProcess();
    const line = lockLine(dead.pid);
    await dead.end();
    const dir = tempDir();
    writeFileSync(join(dir, 'LOCK'), line);
    writeFileSync(join(dir, 'LOCK.takeover'), lockLine(process.pid));
    // Another process is taking over (its takeover lock is fresh): this one leaves the lock alone.
    await expect(lockFolder(dir)).rejects.toThrow(/could not be taken: other processes keep taking it/);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(line);
    // Left by a taker that died 20 s ago: cleared, and the dead holder's lock taken over.
    const past = new Date(Date.now() - 20_000);
    utimesSync(join(dir, 'LOCK.takeover'), past, past);
    const unlock = await lockFolder(dir);
    try {
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(lockLine(process.pid));
      expect(existsSync(join(dir, 'LOCK.takeover'))).toBe(false);
    } finally {
      await unlock();
    }
  });

  it('a second process opening a store this one holds is refused', async () => {
    const dir = await closedFileLog(1);
    const storage = await FileLogStorage.open(dir);
    try {
      const script = `require('tsx/cjs'); require(${JSON.stringify(join(__dirname, '../../gateway/log/storage/file-storage.ts'))}).FileLogStorage.open(${JSON.stringify(dir)}).then(() => process.exit(0), (e) => { process.stdout.write(e.code + ': ' + e.message); process.exit(3); });`;
      const child = spawn(process.execPath, ['-e', script], { cwd: join(__dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect([code, out]).toEqual([3, expect.stringContaining(`LOG_STORAGE_FAILED: the log store in ${dir} is in use by process ${process.pid}`)]);
    } finally {
      await storage.close();
    }
  });
});

describe('file store: damage and failures while the log runs', () => {
  it('entries.log cut shorter than its index: reads are refused (also over HTTP), nothing wrong is served', async () => {
    const dir = tempDir();
    const log = await openFileLog(dir);
    const served = await serve(log);
    try {
      for (let i = 0; i < 4; i++) await log.appendReceipt(`r.${i}.x`);
      await log.flush();
      truncateSync(join(dir, 'entries.log'), 8); // only the first record's header is left
      expect(await refusalOf(() => log.storage.readEntries(0, 4))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'entries.log is shorter than its index' });
      expect(await refusalOf(() => log.entries(2, 1))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'entries.log is shorter than its index' });
      const res = await fetch(`${served.url}/entries?start=0&count=4`);
      expect([res.status, await res.json()]).toEqual([503, expect.objectContaining({ code: 'LOG_STORAGE_FAILED' })]);
      // Nothing more is appended to a file that is not what the log wrote (an append would land at
      // its end, not where the index says).
      expect(await refusalOf(() => log.appendReceipt('r.4.x'))).toEqual({
        code: 'LOG_STORAGE_FAILED',
        message: expect.stringMatching(/entries\.log is 8 bytes, but the log wrote \d+: it was changed outside the log; nothing more is appended/),
      });
      expect(await log.storage.sequencedSize()).toBe(4);
      expect(await log.storage.integratedSize()).toBe(4);
      expect(served.internal).toEqual([]);
    } finally {
      await served.close();
      await log.close();
    }
  });

  it('a tile that cannot be read (a folder in its place) is LOG_STORAGE_FAILED over HTTP', async () => {
    const dir = tempDir();
    const log = await openFileLog(dir);
    const served = await serve(log);
    try {
      await log.appendReceipt('r.0.x');
      await log.flush();
      rmSync(join(dir, 'tiles', '0', '0'));
      mkdirSync(join(dir, 'tiles', '0', '0'));
      expect(await refusalOf(() => log.tile(0, 0, 1))).toEqual({ code: 'LOG_STORAGE_FAILED', message: `cannot read ${join(dir, 'tiles', '0', '0')}` });
      const res = await fetch(`${served.url}/tile/0/000.p/1`);
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([503, 'LOG_STORAGE_FAILED']);
    } finally {
      await served.close();
      await log.close();
    }
  });

  it('tiles that cannot be stored: the integrated size does not move, and a later integration succeeds', async () => {
    const dir = tempDir();
    const log = await openFileLog(dir);
    try {
      await log.appendReceipt('r.0.x');
      writeFileSync(join(dir, 'tiles', '0'), 'a file where the level-0 tile folder should be');
      expect(await refusalOf(() => log.integrate())).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(new RegExp(`^storing tiles in ${dir} failed: `)) });
      expect(await log.storage.integratedSize()).toBe(0);
      expect(existsSync(join(dir, 'integrated'))).toBe(false);
      rmSync(join(dir, 'tiles', '0'));
      expect(await log.integrate()).toBe(1);
    } finally {
      await log.close();
    }
  });

  it('a checkpoint that cannot be stored is not served as published', async () => {
    const dir = tempDir();
    const log = await openFileLog(dir);
    try {
      await log.appendReceipt('r.0.x');
      await log.integrate();
      mkdirSync(join(dir, 'checkpoint'));
      expect(await refusalOf(() => log.publish())).toEqual({ code: 'LOG_STORAGE_FAILED', message: `storing the checkpoint in ${dir} failed` });
      expect(await refusalOf(() => log.checkpoint())).toMatchObject({ code: 'LOG_NOT_FOUND' });
    } finally {
      await log.close();
    }
  });

  it('a write that fails half-way fails every append of its batch, and is cut off so the next batch starts clean', async () => {
    const dir = tempDir();
    const storage = await FileLogStorage.open(dir);
    const probe = await open(join(dir, 'entries.log'), 'r');
    const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<{ bytesWritten: number }> };
    await probe.close();
    const realWrite = proto.write;
    let calls = 0;
    const spy = jest.spyOn(proto, 'write').mockImplementation(function (this: unknown, ...args: unknown[]) {
      calls++;
      if (calls === 2) {
        const [buf, offset, length, position] = args as [Buffer, number, number, number];
        return realWrite.call(this, buf, offset, Math.floor(length / 2), position); // a short write
      }
      if (calls === 3) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      return realWrite.apply(this, args);
    });
    try {
      const first = storage.sequence([entry(0)]); // the first batch, in flight while the next two queue
      const second = storage.sequence([entry(1)]);
      const third = storage.sequence([entry(2), entry(3)]);
      expect(await first).toBe(0);
      const why = { code: 'LOG_STORAGE_FAILED', message: `appending to ${dir}/entries.log failed: ENOSPC: no space left on device, write` };
      expect(await refusalOf(() => second)).toEqual(why);
      expect(await refusalOf(() => third)).toEqual(why);
      expect(calls).toBe(3);
    } finally {
      spy.mockRestore();
    }
    expect(await storage.sequencedSize()).toBe(1);
    expect(await storage.sequence([entry(9)])).toBe(1);
    await storage.close();
    const reopened = await FileLogStorage.open(dir);
    expect(await reopened.readEntries(0, 2)).toEqual([entry(0), entry(9)]);
    await reopened.close();
  });

  it('an entry too large for the record format is refused, not acknowledged and then lost at restart', async () => {
    const dir = tempDir();
    const storage = await FileLogStorage.open(dir);
    expect(await storage.sequence([entry(0)])).toBe(0);
    expect(await refusalOf(() => storage.sequence([entry(1), new Uint8Array(0x10000)]))).toEqual({
      code: 'LOG_ENTRY_TOO_LARGE',
      message: 'entry is 65536 bytes, the most a log entry may be is 65535',
    });
    expect(await storage.sequence([new Uint8Array(0xffff)])).toBe(1); // the largest that fits
    await storage.close();
    const reopened = await FileLogStorage.open(dir);
    expect(await reopened.sequencedSize()).toBe(2);
    await reopened.close();
  });

  it('a closed store refuses appends', async () => {
    const storage = await FileLogStorage.open(tempDir());
    await storage.close();
    expect(await refusalOf(() => storage.sequence([entry(0)]))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'the log store is closed' });
  });

  it('an integration result outside the sequenced entries is refused', async () => {
    const storage = await FileLogStorage.open(tempDir());
    try {
      await storage.sequence([entry(0), entry(1)]);
      expect(await refusalOf(() => storage.integrate(async () => ({ tiles: [], size: 3 })))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'integration to size 3 is out of range' });
      expect(await storage.integrate(async () => ({ tiles: [], size: 2 }))).toBe(2);
      expect(await refusalOf(() => storage.integrate(async () => ({ tiles: [], size: 1 })))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'integration to size 1 is out of range' });
      expect(await storage.integratedSize()).toBe(2);
    } finally {
      await storage.close();
    }
  });
});

describe('transparency log: ranges and internal failures', () => {
  it('a tree size that is not a non-negative safe integer is LOG_RANGE_INVALID', async () => {
    const log = await openFileLog(tempDir());
    try {
      await log.appendReceipt('r.0.x');
      await log.flush();
      for (const size of [-1, 1.5, Number.NaN, 2 ** 53]) {
        expect(await refusalOf(() => log.inclusionProof(0, size))).toEqual({ code: 'LOG_RANGE_INVALID', message: 'tree size is not a non-negative safe integer' });
        expect(await refusalOf(() => log.consistencyProof(0, size))).toEqual({ code: 'LOG_RANGE_INVALID', message: 'tree size is not a non-negative safe integer' });
      }
    } finally {
      await log.close();
    }
  });

  it('a failure that is not a TeegateError is 500 INTERNAL, reported to onInternal and not shown to the client', async () => {
    const log = await openFileLog(tempDir());
    const served = await serve(log);
    const boom = new Error('disk controller says /secret/path is gone');
    log.storage.readCheckpoint = () => Promise.reject(boom);
    try {
      const res = await fetch(`${served.url}/checkpoint`);
      const text = await res.text();
      expect([res.status, JSON.parse(text)]).toEqual([500, { code: 'INTERNAL', message: 'the transparency log failed to handle the request' }]);
      expect(text).not.toContain('secret');
      expect(served.internal).toEqual([boom]);
    } finally {
      await served.close();
      await log.close();
    }
  });
});

describe('postgres store', () => {
  const schemas: string[] = [];
  const schemaName = (what: string) => {
    const s = `teegate_log_rej_${what}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    schemas.push(s);
    return s;
  };
  let admin: Pool;
  beforeAll(() => {
    admin = new Pool({ connectionString: PG_URL, max: 1 });
  });
  afterAll(async () => {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await admin.end();
  });

  it('a schema name that is not a lowercase SQL identifier is CONFIG_INVALID, before any connection', async () => {
    for (const schema of ['Teegate_Log', 'log; DROP TABLE x', '1log', 'a'.repeat(64)]) {
      expect(await refusalOf(() => PostgresLogStorage.open({ url: 'postgres://nobody@127.0.0.1:1/none', schema }))).toEqual({
        code: 'CONFIG_INVALID',
        message: `log schema ${JSON.stringify(schema)} is not a lowercase SQL identifier`,
      });
    }
    expect(await refusalOf(() => openLogStorage({ store: 'postgres', postgresUrl: PG_URL, postgresSchema: 'Bad-Schema' }))).toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a server that cannot be reached, or a database that does not exist, is LOG_STORAGE_FAILED naming the schema', async () => {
    expect(await refusalOf(() => PostgresLogStorage.open({ url: 'postgres://postgres@127.0.0.1:1/test', schema: 'unreached' }))).toMatchObject({
      code: 'LOG_STORAGE_FAILED',
      message: expect.stringMatching(/^cannot open the PostgreSQL log store \(schema unreached\): .*ECONNREFUSED/),
    });
    const url = new URL(PG_URL);
    url.pathname = '/teegate_no_such_database';
    expect(await refusalOf(() => PostgresLogStorage.open({ url: url.href, schema: 'unreached' }))).toMatchObject({
      code: 'LOG_STORAGE_FAILED',
      message: expect.stringMatching(/^cannot open the PostgreSQL log store \(schema unreached\): .*teegate_no_such_database/),
    });
  });

  it('appends to a schema that was dropped under the log fail with LOG_STORAGE_FAILED', async () => {
    const storage = await PostgresLogStorage.open({ url: PG_URL, schema: schemaName('append') });
    const log = await TransparencyLog.open({ storage, origin: 'rej.teegate/log' });
    try {
      expect((await log.appendReceipt('r.0.x')).index).toBe(0);
      await storage.dropSchema();
      expect(await refusalOf(() => log.appendReceipt('r.1.x'))).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(/^appending to the PostgreSQL log failed: .*does not exist/) });
    } finally {
      await log.close();
    }
  });

  it('an integration the database refuses is LOG_STORAGE_FAILED, and the integrated size does not move', async () => {
    const schema = schemaName('integrate');
    const storage = await PostgresLogStorage.open({ url: PG_URL, schema });
    const log = await TransparencyLog.open({ storage, origin: 'rej.teegate/log' });
    try {
      await log.appendReceipt('r.0.x');
      await admin.query(`DROP TABLE "${schema}".log_tiles`);
      expect(await refusalOf(() => log.integrate())).toMatchObject({ code: 'LOG_STORAGE_FAILED', message: expect.stringMatching(/^integrating the PostgreSQL log failed: .*log_tiles/) });
      expect(await storage.integratedSize()).toBe(0);
    } finally {
      await log.close();
    }
  });

  it('a missing tile keeps its own error (LOG_STORAGE_FAILED naming the tile), at open', async () => {
    const schema = schemaName('tile');
    const a = await TransparencyLog.open({ storage: await PostgresLogStorage.open({ url: PG_URL, schema }), origin: 'rej.teegate/log' });
    for (let i = 0; i < 3; i++) await a.appendReceipt(`r.${i}.x`);
    expect(await a.integrate()).toBe(3); // integrated, no checkpoint published
    await a.close();
    await admin.query(`DELETE FROM "${schema}".log_tiles WHERE level = 0 AND idx = 0`);
    // It is found at open now: the log brings its tree to the integrated size before it serves.
    const storage = await PostgresLogStorage.open({ url: PG_URL, schema });
    try {
      expect(await refusalOf(() => TransparencyLog.open({ storage, origin: 'rej.teegate/log' }))).toEqual({ code: 'LOG_STORAGE_FAILED', message: 'stored tile 0/0 is missing or short' });
      expect(await storage.integratedSize()).toBe(3);
    } finally {
      await storage.close();
    }
  });
});
