/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) bodies, and checkpoints as signed notes.
 *
 *   <origin>\n
 *   <tree size, decimal, no leading zeros>\n
 *   <base64 of the 32-byte RFC 6962 root hash>\n
 *   [<extension line>\n ...]
 *
 * Parsing is strict and treats the body as attacker-controlled: anything malformed throws
 * LOG_CHECKPOINT_MALFORMED. Tree sizes above 2^53 - 1 are rejected (not representable here).
 */
import { fromBase64, toBase64 } from '../bytes';
import { TeegateError } from '../errors';
import { HASH_SIZE } from './merkle';
import { signNote, verifyNote, type NoteSigner, type NoteVerifierKey, type VerifiedNote } from './signed-note';

export interface Checkpoint {
  /** Unique identifier of the log (a schema-less URL by convention, e.g. `example.com/log`). */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 6962 Merkle Tree Hash at `size` (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Opaque non-empty extension lines (not recommended by the spec; empty in teegate). */
  readonly extensions: readonly string[];
}

const CONTROL = /[\u0000-\u001f]/;
/** A tree size as C2SP writes it: decimal, without leading zeros (also the log's other counts). */
export const DECIMAL_SIZE = /^(?:0|[1-9][0-9]*)$/;
const ROOT = /^[A-Za-z0-9+/]{43}=$/;

function malformed(message: string): TeegateError {
  return new TeegateError('LOG_CHECKPOINT_MALFORMED', message);
}

function checkLine(line: string, what: string): void {
  if (line.length === 0) throw malformed(`checkpoint ${what} is empty`);
  if (CONTROL.test(line)) throw malformed(`checkpoint ${what} contains a control character`);
}

/** Parses a checkpoint body (the text of a signed note, final newline included). */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string') throw malformed('checkpoint is not a string');
  if (!text.endsWith('\n')) throw malformed('checkpoint does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('checkpoint has fewer than three lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine(origin, 'origin');
  checkLine(sizeLine, 'tree size');
  checkLine(rootLine, 'root hash');
  extensions.forEach((line) => checkLine(line, 'extension line'));
  if (!DECIMAL_SIZE.test(sizeLine)) throw malformed('checkpoint tree size is not a decimal number without leading zeros');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw malformed('checkpoint tree size exceeds 2^53 - 1');
  if (!ROOT.test(rootLine)) throw malformed(`checkpoint root hash is not the base64 of ${HASH_SIZE} bytes`);
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootLine);
  } catch {
    throw malformed('checkpoint root hash is not canonical base64');
  }
  return { origin, size, rootHash, extensions };
}

/** The checkpoint body, ending with a newline. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  checkLine(origin, 'origin');
  if (!Number.isSafeInteger(size) || size < 0) throw malformed('checkpoint tree size is not a non-negative safe integer');
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== HASH_SIZE) throw malformed(`checkpoint root hash is not ${HASH_SIZE} bytes`);
  extensions.forEach((line) => checkLine(line, 'extension line'));
  return [origin, String(size), toBase64(rootHash), ...extensions].map((l) => `${l}\n`).join('');
}

/** Formats and signs a checkpoint: the signed note a log serves at `<prefix>/checkpoint`. */
export async function signCheckpoint(checkpoint: Checkpoint, signers: readonly NoteSigner[]): Promise<string> {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/**
 * Verifies a signed checkpoint with the log's key, parses its body and checks its origin (by
 * default the key name, as tlog-checkpoint recommends). Throws LOG_SIGNATURE_INVALID or
 * LOG_CHECKPOINT_MALFORMED.
 */
export async function openCheckpoint(
  note: string | Uint8Array,
  logKey: NoteVerifierKey,
  options: { origin?: string } = {},
): Promise<{ checkpoint: Checkpoint; note: VerifiedNote }> {
  const verified = await verifyNote(note, [logKey]);
  const checkpoint = parseCheckpoint(verified.text);
  const origin = options.origin ?? logKey.name;
  if (checkpoint.origin !== origin) {
    throw malformed(`checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the expected ${JSON.stringify(origin)}`);
  }
  return { checkpoint, note: verified };
}
