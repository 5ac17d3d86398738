/**
 * One process per folder, for folders that two processes must not write at once: the file log
 * store (two gateways appending to one `entries.log` would each count the entries themselves, hand
 * out the same log indexes, then overwrite each other's tiles and checkpoints: a forked log) and
 * the data folder of `teegate up`.
 *
 * The folder holds a `LOCK` file naming its holder: pid, start time, pid namespace and boot id
 * (Linux /proc; `-` where unknown). Another live holder is refused (FolderInUseError); so is a
 * second lock of the same folder within this process. Whether a holder lives:
 *  - in this pid namespace and boot: its pid runs (a zombie, exited but not yet reaped, does not)
 *    and started when the lock says (a pid reused by another process, as in a restarted container,
 *    is not the holder);
 *  - elsewhere (another container on a shared volume, another machine on a network file system):
 *    it keeps the lock's modification time fresh (every LEASE_REFRESH_MS), and a lock not touched
 *    for LEASE_MS is a dead holder's.
 * A dead holder's lock is removed under a second, short-lived lock (`LOCK.takeover`, created
 * exclusively), and only if it is still the very file judged dead (same inode and text): so two
 * processes taking over at once cannot both win. (Moving the lock aside and putting back a live
 * one taken by mistake left a moment with no lock, in which a third process could take it while
 * the first still believed it held it: two holders.) A takeover lock left by a process that died
 * while taking over is removed once TAKEOVER_STALE_MS old.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const LOCK_FILE = 'LOCK';
/** How often a holder touches its lock, and how old an untouched lock of another namespace may get. */
export const LEASE_REFRESH_MS = 5_000;
export const LEASE_MS = 20_000;
/** A takeover takes milliseconds: a takeover lock this old was left by a process that died in it. */
const TAKEOVER_STALE_MS = 10_000;

/** The folder is held by another live process (or already by this one). */
export class FolderInUseError extends Error {
  override readonly name = 'FolderInUseError';
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`${lockFile} names process ${pid}, which is running`);
  }
}

function readOr(read: () => string): string {
  try {
    return read();
  } catch {
    return '-';
  }
}

/** The `n`th field of /proc/PID/stat after the command name (0: the state, 19: the start time), or `-`. */
function statField(pid: number | 'self', n: number): string {
  return readOr(() => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold anything: count fields after its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n] ?? '-';
  });
}

/** A process's start time in clock ticks since boot (the 22nd field of /proc/PID/stat), or `-`. */
export function startTimeOf(pid: number | 'self'): string {
  return statField(pid, 19);
}

/** Exited, not yet reaped by its parent (a zombie, state Z, or X): it holds no file and writes nothing. */
function exited(pid: number): boolean {
  const state = statField(pid, 0);
  return state === 'Z' || state === 'X';
}

interface Holder {
  readonly pid: number;
  readonly start: string;
  readonly ns: string;
  readonly boot: string;
}

const SELF: Holder = {
  pid: process.pid,
  start: startTimeOf('self'),
  ns: readOr(() => /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '-'),
  boot: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()),
};
const lineOf = (h: Holder): string => `${h.pid} ${h.start} ${h.ns} ${h.boot}\n`;

function parseHolder(text: string): Holder | undefined {
  // Also `pid` alone, or `pid start`, as earlier versions wrote.
  const m = /^([1-9][0-9]{0,9})(?: ([0-9]{1,20}|-))?(?: ([0-9]{1,20}|-) ([0-9a-f-]{1,64}))?\n?$/.exec(text);
  return m ? { pid: Number(m[1]), start: m[2] ?? '-', ns: m[3] ?? '-', boot: m[4] ?? '-' } : undefined;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // another user's
  }
}

function sameHolder(a: Holder, b: Holder): boolean {
  return a.pid === b.pid && a.start === b.start && a.ns === b.ns && a.boot === b.boot;
}

/** Whether the holder a lock names still holds it (see the file's comment); `touchedMs` is the lock's mtime. */
function holderLives(holder: Holder, touchedMs: number): boolean {
  const here = holder.ns !== '-' && holder.ns === SELF.ns && holder.boot !== '-' && holder.boot === SELF.boot;
  if (here) return processExists(holder.pid) && !exited(holder.pid) && (holder.start === '-' || startTimeOf(holder.pid) === holder.start);
  return Date.now() - touchedMs < LEASE_MS;
}

/** Folders this process holds. */
const held = new Set<string>();

/** Hard links are how the lock appears whole; where a file system has none, it is created in place. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Creates `path` holding `text` (written aside in `mine`), failing with EEXIST if it exists. */
async function placeExclusive(mine: string, path: string, text: string): Promise<void> {
  await link(mine, path).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === undefined || !NO_LINKS.has(err.code)) throw err;
    await writeFile(path, text, { flag: 'wx', mode: 0o600 });
  });
}

/**
 * Takes `dir` for this process and resolves to the function that gives it back. FolderInUseError
 * when another live process holds it, or this one already does; the file system's own error when
 * the lock cannot be written.
 */
export async function lockFolder(dir: string): Promise<() => Promise<void>> {
  const folder = resolve(dir);
  const path = join(folder, LOCK_FILE);
  if (held.has(folder)) throw new FolderInUseError(path, process.pid);
  held.add(folder);
  const own = lineOf(SELF);
  // Written aside, then linked into place: the lock never exists without its holder in it.
  const mine = join(folder, `.${LOCK_FILE}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await writeFile(mine, own, { mode: 0o600 });
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await placeExclusive(mine, path, own);
        return holding(folder, path, own);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let text: string;
      let touchedMs: number;
      let ino: number;
      try {
        [text, { mtimeMs: touchedMs, ino }] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      } catch {
        continue; // gone in between: try again
      }
      const holder = parseHolder(text);
      if (holder === undefined) {
        // Being written in place (no hard links) if it is new; else not a lock of ours: taken over.
        if (Date.now() - touchedMs < 5_000) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      } else if (!sameHolder(holder, SELF) && holderLives(holder, touchedMs)) {
        throw new FolderInUseError(path, holder.pid);
      }
      await takeOver(path, text, ino, mine, own);
    }
    throw new Error(`${path} could not be taken: other processes keep taking it`);
  } catch (err) {
    held.delete(folder);
    throw err;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/**
 * Removes a dead holder's lock (`judged` its text, `ino` its inode) unless another process replaced
 * it meanwhile, holding `LOCK.takeover` (`mine`, holding `own`, this process's line) while it checks
 * and removes. Returns without removing anything when another process is taking over: the caller
 * looks again.
 */
async function takeOver(path: string, judged: string, ino: number, mine: string, own: string): Promise<void> {
  const takeover = `${path}.takeover`;
  try {
    await placeExclusive(mine, takeover, own);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const left = await stat(takeover).catch(() => undefined);
    if (left !== undefined && Date.now() - left.mtimeMs > TAKEOVER_STALE_MS) await unlink(takeover).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 20));
    return;
  }
  try {
    // Only the file judged dead: no other process removes the lock while this one holds the
    // takeover lock (a holder removes only its own, and a new lock cannot appear while it exists).
    const [now, text] = await Promise.all([stat(path), readFile(path, 'utf8')]).catch(() => [undefined, undefined] as const);
    if (now !== undefined && now.ino === ino && text === judged) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(takeover).catch(() => undefined);
  }
}

/** The holder's side: keep the lease fresh; give it back. */
function holding(folder: string, path: string, own: string): () => Promise<void> {
  const refresh = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now).catch(() => undefined);
  }, LEASE_REFRESH_MS);
  refresh.unref();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    clearInterval(refresh);
    held.delete(folder);
    if ((await readFile(path, 'utf8').catch(() => '')) === own) await unlink(path).catch(() => undefined);
  };
}
