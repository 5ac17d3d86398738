/**
 * One process per folder, for folders that two processes must not write at once: the file log
 * store (two gateways appending to one `entries.log` would each count the entries themselves, hand
 * out the same log indexes, then overwrite each other's tiles and checkpoints: a forked log) and
 * the data folder of `teegate up`. The folder holds a `LOCK` file naming the process that has it
 * (its pid and, on Linux, its start time); another live process is refused. A lock left by a
 * process that is gone (a crash, SIGKILL) is taken over, also when its pid now belongs to another
 * process (a restarted container reuses pids): the start time tells them apart.
 */
import { readFileSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE = 'LOCK';

/** The folder is held by another live process. */
export class FolderInUseError extends Error {
  override readonly name = 'FolderInUseError';
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`${lockFile} names process ${pid}, which is running`);
  }
}

/** Whether a process with this pid exists (one of another user's counts: EPERM). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start time in clock ticks since boot (Linux /proc), if it can be read. */
function startTimeOf(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold anything: starttime is
    // the 22nd field, the 20th after the name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const OWN_START = startTimeOf('self');
const OWN_LOCK = `${process.pid}${OWN_START !== undefined ? ` ${OWN_START}` : ''}\n`;

/** The process a lock file names (pid, and start time when it was written on Linux), if it names one. */
async function holderOf(path: string): Promise<{ pid: number; start?: string } | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const m = /^([1-9][0-9]{0,9})(?: ([0-9]{1,20}))?\n?$/.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), ...(m[2] !== undefined ? { start: m[2] } : {}) };
}

/** Whether the process a lock names is this one. */
function isOwn(holder: { pid: number; start?: string } | undefined): boolean {
  return holder !== undefined && holder.pid === process.pid && (holder.start === undefined || holder.start === OWN_START);
}

/** Whether the process a lock names is running: its pid exists and, where known, started when the lock says. */
function isRunning(holder: { pid: number; start?: string }): boolean {
  if (!processExists(holder.pid)) return false;
  const start = holder.start === undefined ? undefined : startTimeOf(holder.pid);
  return start === undefined || start === holder.start;
}

/**
 * Takes `dir` for this process and resolves to the function that gives it back. FolderInUseError
 * when another live process holds it; the file system's own error when the lock cannot be written.
 */
export async function lockFolder(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  // Written aside, then linked into place: the lock never exists without its pid in it.
  const mine = join(dir, `.${LOCK_FILE}.${process.pid}.tmp`);
  await writeFile(mine, OWN_LOCK, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(mine, path);
        return async () => {
          if (isOwn(await holderOf(path))) await unlink(path).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await holderOf(path);
      if (holder !== undefined && !isOwn(holder) && isRunning(holder)) throw new FolderInUseError(path, holder.pid);
      // Left by a process that is gone, by this one, or not a lock this code wrote: taken over.
      await unlink(path).catch(() => undefined);
    }
    throw new Error(`${path} keeps being recreated`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
