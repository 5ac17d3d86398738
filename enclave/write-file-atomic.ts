/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix: a temporary
 * file in the same folder, fsync, rename, fsync of the folder. Used for keys, credentials, sealed
 * models and state files.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TeegateError, isTeegateError } from '../attestation/errors';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** writeFileAtomic for callers that must not yield (the dev KMS persists its store within a request). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeFileSync(fd, data); // all of it (writeSync may write part)
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const folder = openSync(dir, 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

/** A kept state file that cannot be used: CONFIG_INVALID naming it, never a bare parse error. */
function unusable(path: string, err: unknown): TeegateError {
  const why = isTeegateError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  return new TeegateError('CONFIG_INVALID', `${path} cannot be used (${why}): restore it, or remove it to have a new one made (with what depends on it)`, { cause: err });
}

/**
 * The value kept in `path`, or, when there is no such file, a new one, written there first
 * (writeFileAtomic, `mode`). Any other read error, and content `parse` refuses, is CONFIG_INVALID
 * naming the file.
 */
export async function readOrCreate<T>(
  path: string,
  how: { parse(text: string): T | Promise<T>; create(): T | Promise<T>; serialize(value: T): string | Promise<string>; mode?: number },
): Promise<T> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unusable(path, err);
  }
  if (text !== undefined) {
    try {
      return await how.parse(text);
    } catch (err) {
      throw unusable(path, err);
    }
  }
  const value = await how.create();
  await writeFileAtomic(path, await how.serialize(value), how.mode);
  return value;
}
