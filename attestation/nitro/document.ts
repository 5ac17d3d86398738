/**
 * The AWS Nitro Enclaves attestation document payload (the COSE_Sign1 payload), type-checked field
 * by field against AWS's CDDL. Unknown fields are rejected. CBOR null reads as absent.
 */
import { decodeCbor, type CborMap, type CborValue } from '../cbor';
import { TeegateError } from '../errors';

export interface NitroDocument {
  readonly moduleId: string;
  readonly digest: 'SHA384';
  /** Milliseconds since the UNIX epoch. */
  readonly timestamp: number;
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** DER of the leaf (signing) certificate. */
  readonly certificate: Uint8Array;
  /** DER certificates, root first, down to the issuer of `certificate`. */
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
}

/** AWS's CDDL allows 1024 bytes (its prose says 512; real hardware accepts 1024). */
export const MAX_OPTIONAL_FIELD_BYTES = 1024;
export const MAX_CERT_BYTES = 1024;
export const MAX_CABUNDLE = 8;
const PCR_LENGTHS = new Set([32, 48, 64]);
const KNOWN_FIELDS = new Set([
  'module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce',
]);

function invalid(message: string): never {
  throw new TeegateError('DOCUMENT_SCHEMA_INVALID', message);
}

function bstr(map: CborMap, field: string, min: number, max: number): Uint8Array {
  const v = map.get(field);
  if (!(v instanceof Uint8Array)) invalid(`${field} must be a byte string`);
  if (v.length < min || v.length > max) invalid(`${field} must be ${min}..${max} bytes, got ${v.length}`);
  return v;
}

function optionalBstr(map: CborMap, field: string): Uint8Array | undefined {
  const v = map.get(field);
  if (v === undefined || v === null) return undefined;
  if (!(v instanceof Uint8Array)) invalid(`${field} must be a byte string or null`);
  if (v.length > MAX_OPTIONAL_FIELD_BYTES) invalid(`${field} must be at most ${MAX_OPTIONAL_FIELD_BYTES} bytes, got ${v.length}`);
  return v;
}

export function parseNitroPayload(payload: Uint8Array): NitroDocument {
  const root: CborValue = decodeCbor(payload, { maxDepth: 4, maxItems: 256, maxInputLength: 32 * 1024 });
  if (!(root instanceof Map)) invalid('payload must be a CBOR map');
  for (const key of root.keys()) {
    if (typeof key !== 'string' || !KNOWN_FIELDS.has(key)) invalid(`unknown field ${JSON.stringify(key)}`);
  }

  const moduleId = root.get('module_id');
  if (typeof moduleId !== 'string' || moduleId.length === 0 || moduleId.length > 256) {
    invalid('module_id must be a non-empty text string');
  }
  const digest = root.get('digest');
  if (digest !== 'SHA384') invalid(`digest must be "SHA384", got ${JSON.stringify(digest)}`);
  const timestamp = root.get('timestamp');
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0) {
    invalid('timestamp must be a positive integer (milliseconds)');
  }

  const rawPcrs = root.get('pcrs');
  if (!(rawPcrs instanceof Map) || rawPcrs.size === 0 || rawPcrs.size > 32) invalid('pcrs must be a map of 1..32 entries');
  const pcrs = new Map<number, Uint8Array>();
  for (const [index, value] of rawPcrs) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 31) {
      invalid(`PCR index ${String(index)} out of range 0..31`);
    }
    if (!(value instanceof Uint8Array) || !PCR_LENGTHS.has(value.length)) {
      invalid(`PCR${index} must be a byte string of 32, 48 or 64 bytes`);
    }
    pcrs.set(index, value);
  }

  const certificate = bstr(root, 'certificate', 1, MAX_CERT_BYTES);
  const rawBundle = root.get('cabundle');
  if (!Array.isArray(rawBundle) || rawBundle.length === 0 || rawBundle.length > MAX_CABUNDLE) {
    invalid(`cabundle must be an array of 1..${MAX_CABUNDLE} certificates`);
  }
  const cabundle = rawBundle.map((c, i) => {
    if (!(c instanceof Uint8Array) || c.length === 0 || c.length > MAX_CERT_BYTES) {
      invalid(`cabundle[${i}] must be a byte string of 1..${MAX_CERT_BYTES} bytes`);
    }
    return c;
  });

  const doc: NitroDocument = {
    moduleId,
    digest: 'SHA384',
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBstr(root, 'public_key'),
    userData: optionalBstr(root, 'user_data'),
    nonce: optionalBstr(root, 'nonce'),
  };
  return doc;
}
