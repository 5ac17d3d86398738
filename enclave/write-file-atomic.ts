/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix: a temporary
 * file in the same folder, fsync, rename, fsync of the folder. Used for keys, credentials, sealed
 * models and state files.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TeegateError, isTeegateError } from '../attestation/errors';

/** writeFileAtomic without yielding: the dev KMS persists its store within a request. */
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

/** Replaces `path` atomically; its callers run at start-up or in CLIs, so the work is synchronous. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  writeFileAtomicSync(path, data, mode);
}

/**
 * A kept state file that cannot be used: CONFIG_INVALID naming it and why, never a bare parse
 * error; `removing` says what removing it does.
 */
export function unusableStateFile(path: string, why: unknown, removing = 'have a new one made (with what depends on it)'): TeegateError {
  const reason = isTeegateError(why) ? `${why.code}: ${why.message}` : why instanceof Error ? why.message : String(why);
  return new TeegateError('CONFIG_INVALID', `${path} cannot be used (${reason}): restore it, or remove it to ${removing}`, why instanceof Error ? { cause: why } : undefined);
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
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unusableStateFile(path, err);
  }
  if (text !== undefined) {
    try {
      return await how.parse(text);
    } catch (err) {
      throw unusableStateFile(path, err);
    }
  }
  const value = await how.create();
  await writeFileAtomic(path, await how.serialize(value), how.mode);
  return value;
}
