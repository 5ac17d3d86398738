/**
 * Typed log entries and their one canonical encoding: the RFC 8785 (JCS) canonical JSON of
 *
 *   {"jws":"<compact JWS>","type":"receipt"}
 *   {"document":"<standard base64, padded>","manifest":{...},"type":"attestation"}
 *
 * as UTF-8 bytes. The leaf hash is the RFC 9162 leaf hash of exactly those bytes. Entries travel in
 * tlog-tiles entry bundles (uint16 length prefix), so an encoded entry is at most 65,535 bytes.
 *
 * Decoding treats the bytes as attacker-controlled: anything but the canonical encoding of a known
 * entry type throws LOG_ENTRY_MALFORMED (so one entry has exactly one byte string and one leaf hash).
 */
import canonicalize from 'canonicalize';
import { fromBase64, fromUtf8, toBase64, utf8 } from '../bytes';
import { TeegateError } from '../errors';
import { leafHash, type Sha256 } from './merkle';

export const MAX_ENTRY_BYTES = 0xffff;

export interface ReceiptEntry {
  readonly type: 'receipt';
  /** The receipt, a compact JWS. */
  readonly jws: string;
}

export interface AttestationEntry {
  readonly type: 'attestation';
  /** The boot attestation document (COSE_Sign1 bytes). */
  readonly document: Uint8Array;
  /** The manifest as the enclave published it (any JSON value; the auditor checks its binding). */
  readonly manifest: unknown;
}

export type LogEntry = ReceiptEntry | AttestationEntry;

function malformed(message: string): TeegateError {
  return new TeegateError('LOG_ENTRY_MALFORMED', message);
}

function canonical(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (err) {
    throw malformed(`entry has no canonical JSON form: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (text === undefined) throw malformed('entry has no JSON form');
  return text;
}

/** The canonical bytes of an entry. Throws LOG_ENTRY_TOO_LARGE above 65,535 bytes. */
export function encodeEntry(entry: LogEntry): Uint8Array {
  let wire: Record<string, unknown>;
  if (entry.type === 'receipt') {
    if (typeof entry.jws !== 'string' || entry.jws.length === 0) throw malformed('a receipt entry needs a non-empty JWS string');
    wire = { type: 'receipt', jws: entry.jws };
  } else if (entry.type === 'attestation') {
    if (!(entry.document instanceof Uint8Array) || entry.document.length === 0) throw malformed('an attestation entry needs document bytes');
    if (entry.manifest === undefined) throw malformed('an attestation entry needs a manifest');
    wire = { type: 'attestation', document: toBase64(entry.document), manifest: entry.manifest };
  } else {
    throw malformed(`unknown entry type ${JSON.stringify((entry as { type: unknown }).type)}`);
  }
  const bytes = utf8(canonical(wire));
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new TeegateError('LOG_ENTRY_TOO_LARGE', `entry is ${bytes.length} bytes, the most a log entry may be is ${MAX_ENTRY_BYTES}`);
  }
  return bytes;
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
  const have = Object.keys(obj).sort();
  const want = [...keys].sort();
  if (have.length !== want.length || have.some((k, i) => k !== want[i])) {
    throw malformed(`entry members are ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
  }
}

/** Strict inverse of encodeEntry. */
export function decodeEntry(bytes: Uint8Array): LogEntry {
  if (!(bytes instanceof Uint8Array)) throw malformed('entry is not bytes');
  if (bytes.length > MAX_ENTRY_BYTES) throw malformed(`entry exceeds ${MAX_ENTRY_BYTES} bytes`);
  let text: string;
  let value: unknown;
  try {
    text = fromUtf8(bytes);
    value = JSON.parse(text);
  } catch {
    throw malformed('entry is not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('entry is not a JSON object');
  if (canonical(value) !== text) throw malformed('entry is not in canonical (RFC 8785) form');
  const obj = value as Record<string, unknown>;
  if (obj.type === 'receipt') {
    exactKeys(obj, ['type', 'jws']);
    if (typeof obj.jws !== 'string' || obj.jws.length === 0) throw malformed('receipt entry jws is not a non-empty string');
    return { type: 'receipt', jws: obj.jws };
  }
  if (obj.type === 'attestation') {
    exactKeys(obj, ['type', 'document', 'manifest']);
    if (typeof obj.document !== 'string' || obj.document.length === 0) throw malformed('attestation entry document is not a base64 string');
    let document: Uint8Array;
    try {
      document = fromBase64(obj.document);
    } catch {
      throw malformed('attestation entry document is not base64');
    }
    if (toBase64(document) !== obj.document) throw malformed('attestation entry document is not canonical padded base64');
    return { type: 'attestation', document, manifest: obj.manifest };
  }
  throw malformed(`unknown entry type ${JSON.stringify(obj.type)}`);
}

/** RFC 9162 leaf hash of an encoded entry. */
export function entryLeafHash(encoded: Uint8Array, hash?: Sha256): Promise<Uint8Array> {
  return leafHash(encoded, hash);
}
