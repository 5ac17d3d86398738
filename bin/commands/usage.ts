/** Usage and I/O errors of the CLI (exit code 2), as opposed to rejected evidence (exit code 1). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isTeegateError, type ErrorCode } from '../../attestation/errors';
import { parsePolicyFile, type LoadedPolicy } from '../../attestation/policy-file';
import { FileRefusedError, readRegularFile } from '../../gateway/regular-file';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  /**
   * The registry code when the cause has one (a policy or state file, a tensor file, an option the
   * verifier refused): the CLI prints `teegate <command>: <CODE>: <message>`, else without a code.
   */
  readonly code: ErrorCode | undefined;
  constructor(message: string, code?: ErrorCode) {
    super(message);
    this.code = code;
  }

  /** A usage error whose cause is `err`: its message after `prefix`, and its code if it is a TeegateError. */
  static from(err: unknown, prefix = ''): UsageError {
    return new UsageError(`${prefix}${err instanceof Error ? err.message : String(err)}`, isTeegateError(err) ? err.code : undefined);
  }
}

/** node:util parseArgs in strict mode, with its errors turned into UsageError. */
export function parseCommandArgs<T extends ParseArgsConfig['options']>(args: string[], options: T, help: string) {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(help);
    return undefined;
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`);
  }
}

/** The largest file a command reads unless it says otherwise (`model-seal` reads models). */
export const MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A regular file of at most `maxBytes`, whole. A device (`/dev/zero`), a FIFO or a directory is a
 * UsageError rather than a read without end: the file is opened without blocking and checked first.
 */
export function readInputFile(path: string, what: string, maxBytes = MAX_INPUT_FILE_BYTES): Buffer {
  try {
    return readRegularFile(path, maxBytes);
  } catch (err) {
    if (err instanceof FileRefusedError) {
      throw new UsageError(err.kind === 'not-regular' ? `${what} ${path} is not a regular file` : `${what} ${path} is ${err.size} bytes, more than ${maxBytes}`);
    }
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** ISO 8601 or milliseconds since the epoch. */
export function parseTime(value: string, option: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms) || (!/^\d+$/.test(value) && !/^\d{4}-\d{2}-\d{2}/.test(value))) {
    throw new UsageError(`${option}: ${JSON.stringify(value)} is not an ISO 8601 time or milliseconds since the epoch`);
  }
  return ms;
}

/** A whole-number option in min..max (`--port 8080`); anything else is a UsageError naming the option. */
export function parseWholeNumber(value: string, option: string, min: number, max: number): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`${option} must be a whole number from ${min} to ${max}`);
  return Number(value);
}

/** A JSON file named on the command line; not readable or not JSON is a UsageError. */
export function readJsonFile(path: string, what: string): unknown {
  const text = readInputFile(path, what).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${what} ${path} is not JSON`);
  }
}

/** `--root FILE` (repeatable): trusted root certificates, PEM or DER text as given. */
export function readRootOptions(paths: readonly string[] | undefined): string[] {
  return (paths ?? []).map((p) => readInputFile(p, 'root certificate').toString('utf8'));
}

/** `--policy FILE`: the measurement policy file (docs/policy.md), read and checked once for every command. */
export function readPolicyOption(path: string): LoadedPolicy {
  const json = readJsonFile(path, 'policy file');
  try {
    return parsePolicyFile(json);
  } catch (err) {
    throw UsageError.from(err, `policy file ${path}: `);
  }
}
