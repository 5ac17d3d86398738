/**
 * Loads the real AWS Nitro attestation documents in shared/vectors/nitro (provenance for each file:
 * its MANIFEST.json entry names the public repository, path and commit it was taken from). Files are
 * hex (optionally 0x-prefixed) or base64 (optionally with MIME line breaks); the encoding is detected
 * from the text. Each decoded document is checked against the MANIFEST's length and SHA-256 so a
 * damaged copy fails loudly instead of making every test downstream fail for the wrong reason.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { concatBytes, fromBase64, fromHex } from '../../attestation/bytes';
import { decodeCbor, encodeCbor, type CborEncodable, type CborValue } from '../../attestation/cbor';

export const NITRO_VECTORS_DIR = join(__dirname, '../../../shared/vectors/nitro');

/** One MANIFEST.json entry, as written there. */
export interface NitroVectorManifest {
  readonly file: string;
  readonly repo: string;
  readonly path: string;
  readonly commit: string;
  readonly encoding_note?: string;
  readonly expected: 'valid' | 'reject';
  readonly module_id?: string;
  readonly timestamp_ms?: number;
  readonly timestamp_iso?: string;
  readonly doc_len?: number;
  readonly doc_sha256?: string;
  readonly cose_sig_ok?: boolean;
  readonly chain_sig_and_validity_at_timestamp_ok?: boolean;
  readonly public_key?: string | null;
  readonly user_data?: string | null;
  readonly nonce?: string | null;
  readonly pcrs_nonzero?: Readonly<Record<string, string>>;
  readonly pcr_count?: number;
  readonly leaf_cert_validity?: readonly [string, string];
  readonly chain_validity_window?: readonly [string, string];
  readonly parse_error?: string;
}

export interface NitroVector extends NitroVectorManifest {
  /** The document bytes, decoded from the file. */
  readonly bytes: Uint8Array;
  readonly fileEncoding: 'hex' | 'base64';
}

/** A vector that parses (it has every descriptive field). */
export type ParsedNitroVector = NitroVector & Required<Pick<NitroVectorManifest,
  'module_id' | 'timestamp_ms' | 'doc_len' | 'doc_sha256' | 'pcrs_nonzero' | 'pcr_count' | 'leaf_cert_validity' | 'chain_validity_window'>>;

export function decodeVectorText(text: string): { bytes: Uint8Array; fileEncoding: 'hex' | 'base64' } {
  const compact = text.replace(/\s+/g, '');
  const hex = compact.replace(/^0x/i, '');
  if (hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) return { bytes: fromHex(hex), fileEncoding: 'hex' };
  return { bytes: fromBase64(compact), fileEncoding: 'base64' };
}

let cached: readonly NitroVector[] | undefined;

/** Every MANIFEST entry with its decoded bytes, in MANIFEST order. */
export function loadNitroVectors(): readonly NitroVector[] {
  if (cached) return cached;
  const manifest = JSON.parse(readFileSync(join(NITRO_VECTORS_DIR, 'MANIFEST.json'), 'utf8')) as NitroVectorManifest[];
  cached = manifest.map((entry) => {
    const { bytes, fileEncoding } = decodeVectorText(readFileSync(join(NITRO_VECTORS_DIR, entry.file), 'utf8'));
    if (entry.doc_len !== undefined && bytes.length !== entry.doc_len) {
      throw new Error(`${entry.file}: decoded ${bytes.length} bytes, MANIFEST says ${entry.doc_len}`);
    }
    if (entry.doc_sha256 !== undefined) {
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (digest !== entry.doc_sha256) throw new Error(`${entry.file}: SHA-256 ${digest}, MANIFEST says ${entry.doc_sha256}`);
    }
    return { ...entry, bytes, fileEncoding };
  });
  return cached;
}

function isParsed(v: NitroVector): v is ParsedNitroVector {
  return v.module_id !== undefined && v.timestamp_ms !== undefined && v.chain_validity_window !== undefined;
}

/** Documents MANIFEST calls valid (signature and chain good at their own time). */
export function validNitroVectors(): readonly ParsedNitroVector[] {
  return loadNitroVectors().filter((v): v is ParsedNitroVector => v.expected === 'valid' && isParsed(v));
}

/** Documents that parse (valid ones and the one with a bad COSE signature). */
export function parsedNitroVectors(): readonly ParsedNitroVector[] {
  return loadNitroVectors().filter(isParsed);
}

export function nitroVector(filePrefix: string): NitroVector {
  const found = loadNitroVectors().filter((v) => v.file.startsWith(filePrefix));
  if (found.length !== 1) throw new Error(`expected one vector starting with ${filePrefix}, found ${found.length}`);
  return found[0]!;
}

export function parsedNitroVector(filePrefix: string): ParsedNitroVector {
  const v = nitroVector(filePrefix);
  if (!isParsed(v)) throw new Error(`${v.file} has no parsed MANIFEST fields`);
  return v;
}

/** Is this the debug-mode document (PCR0, PCR1 and PCR2 not among the non-zero PCRs)? */
export function isDebugVector(v: ParsedNitroVector): boolean {
  return ['0', '1', '2'].every((i) => v.pcrs_nonzero[i] === undefined);
}

/** The PEM of AWS Nitro Enclaves Root-G1 as shipped beside the vectors. */
export function awsRootPemFromVectors(): string {
  return readFileSync(join(NITRO_VECTORS_DIR, 'aws_nitro_root_g1.pem'), 'utf8');
}

// ---- Locating the parts of a real document, for tests that edit its bytes ----

/** Offset of the first occurrence of `needle` in `haystack` at or after `from`, or -1. */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  if (needle.length === 0) return from;
  outer: for (let i = from; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The one offset of `needle` in `haystack`; throws if it is absent or occurs twice. */
export function uniqueOffset(haystack: Uint8Array, needle: Uint8Array, what: string): number {
  const at = indexOfBytes(haystack, needle);
  if (at < 0) throw new Error(`${what} not found`);
  if (indexOfBytes(haystack, needle, at + 1) >= 0) throw new Error(`${what} occurs more than once`);
  return at;
}

/** A located run of bytes in the whole document: the content of a field, without its CBOR head. */
export interface LocatedField {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
}

/**
 * The COSE_Sign1 parts of a document and where they sit. Found by decoding the CBOR independently of
 * the COSE parser and then searching the decoded bytes in the document.
 */
export interface DocumentLayout {
  readonly protectedHeader: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  readonly protectedOffset: number;
  readonly payloadOffset: number;
  readonly signatureOffset: number;
  /** Every field's content in the payload: module_id, digest, timestamp, pcr<i>, certificate, cabundle[<i>], public_key, user_data, nonce (those present and not null). */
  readonly fields: readonly LocatedField[];
}

function asMap(v: CborValue | undefined, what: string): Map<string | number, CborValue> {
  if (!(v instanceof Map)) throw new Error(`${what} is not a map`);
  return v;
}

export function documentLayout(doc: Uint8Array): DocumentLayout {
  const top = decodeCbor(doc);
  if (!Array.isArray(top) || top.length !== 4) throw new Error('not an untagged COSE_Sign1 array');
  const [protectedHeader, , payload, signature] = top as [Uint8Array, unknown, Uint8Array, Uint8Array];
  const protectedOffset = uniqueOffset(doc, concatBytes(encodeCbor(protectedHeader), new Uint8Array([0xa0])), 'protected header') + 1;
  const payloadOffset = uniqueOffset(doc, payload, 'payload');
  const signatureOffset = doc.length - signature.length;
  if (indexOfBytes(doc, signature, payloadOffset + payload.length) !== signatureOffset) throw new Error('signature is not last');

  const fields: LocatedField[] = [];
  /** Finds CBOR(key) || CBOR(value) in the payload and records the value's content bytes. */
  const locate = (name: string, key: CborEncodable | null, value: Uint8Array | string | number, within = 0): number => {
    const valueCbor = encodeCbor(value);
    const keyCbor = key === null ? new Uint8Array(0) : encodeCbor(key);
    const at = indexOfBytes(payload, concatBytes(keyCbor, valueCbor), within);
    if (at < 0) throw new Error(`${name} not found`);
    const contentLength = typeof value === 'number' ? valueCbor.length - 1 : typeof value === 'string' ? new TextEncoder().encode(value).length : value.length;
    const contentOffset = at + keyCbor.length + valueCbor.length - contentLength;
    fields.push({ name, offset: payloadOffset + contentOffset, length: contentLength });
    return at;
  };
  const root = asMap(decodeCbor(payload), 'payload');
  locate('module_id', 'module_id', root.get('module_id') as string);
  locate('digest', 'digest', root.get('digest') as string);
  locate('timestamp', 'timestamp', root.get('timestamp') as number);
  const pcrsAt = indexOfBytes(payload, encodeCbor('pcrs'));
  for (const [index, value] of asMap(root.get('pcrs'), 'pcrs')) locate(`pcr${String(index)}`, index, value as Uint8Array, pcrsAt);
  locate('certificate', 'certificate', root.get('certificate') as Uint8Array);
  const bundleAt = indexOfBytes(payload, encodeCbor('cabundle'));
  (root.get('cabundle') as Uint8Array[]).forEach((der, i) => locate(`cabundle[${i}]`, null, der, bundleAt));
  for (const name of ['public_key', 'user_data', 'nonce']) {
    const v = root.get(name);
    if (v instanceof Uint8Array) locate(name, name, v);
  }
  return { protectedHeader, payload, signature, protectedOffset, payloadOffset, signatureOffset, fields };
}

export function fieldOf(layout: DocumentLayout, name: string): LocatedField {
  const f = layout.fields.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${name}`);
  return f;
}

/** An untagged COSE_Sign1 in preferred form: [protected, {}, payload, signature]. */
export function buildCoseSign1(protectedHeader: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeCbor([protectedHeader, new Map(), payload, signature]);
}

/** A copy of `bytes` with bit `bit` of byte `offset` flipped. */
export function flipBit(bytes: Uint8Array, offset: number, bit: number): Uint8Array {
  const out = bytes.slice();
  out[offset] = out[offset]! ^ (1 << bit);
  return out;
}
