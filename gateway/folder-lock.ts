/**
 * One process per folder, for folders that two processes must not write at once: the file log
 * store (two gateways appending to one `entries.log` would each count the entries themselves, hand
 * out the same log indexes, then overwrite each other's tiles and checkpoints: a forked log) and
 * the data folder of `teegate up`. The folder holds a `LOCK` file naming the process that has it;
 * another live process is refused. A lock left by a process that is gone (a crash, SIGKILL) is
 * taken over.
 */
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

/** The pid a lock file names, if it names one. */
async function holderOf(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return /^[1-9][0-9]{0,9}\n?$/.test(text) ? Number(text) : undefined;
}

/**
 * Takes `dir` for this process and resolves to the function that gives it back. FolderInUseError
 * when another live process holds it; the file system's own error when the lock cannot be written.
 */
export async function lockFolder(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  // Written aside, then linked into place: the lock never exists without its pid in it.
  const mine = join(dir, `.${LOCK_FILE}.${process.pid}.tmp`);
  await writeFile(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(mine, path);
        return async () => {
          if ((await holderOf(path)) === process.pid) await unlink(path).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await holderOf(path);
      if (holder !== undefined && holder !== process.pid && processExists(holder)) throw new FolderInUseError(path, holder);
      // Left by a process that is gone, by this one, or not a lock this code wrote: taken over.
      await unlink(path).catch(() => undefined);
    }
    throw new Error(`${path} keeps being recreated`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
