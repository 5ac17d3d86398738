/**
 * COSE_Sign1 (RFC 9052 §4.2) as AWS Nitro Enclaves uses it: untagged or tag 18, protected header
 * exactly {1: -35} (ES384), empty unprotected header, payload bstr, 96-byte raw r||s signature.
 * The signature is checked over Sig_structure ["Signature1", protected, h'', payload] built from the
 * bytes as received: the payload is never re-encoded.
 */
import { decodeCbor, encodeCbor, CborTag, type CborValue } from '../cbor';
import { bytesEqual } from '../bytes';
import { TeegateError } from '../errors';
import { verifyP384 } from '../crypto/ecdsa-p384';

export interface CoseSign1 {
  /** The protected header bstr contents, as received. */
  readonly protectedHeader: Uint8Array;
  /** The payload bstr contents, as received. */
  readonly payload: Uint8Array;
  /** Raw r||s, 96 bytes. */
  readonly signature: Uint8Array;
  readonly tagged: boolean;
}

export const COSE_SIGN1_TAG = 18;
/** {1: -35}: alg = ES384, in its only preferred encoding. */
export const ES384_PROTECTED = new Uint8Array([0xa1, 0x01, 0x38, 0x22]);
/** Nitro documents are about 4.5 KB; nothing legitimate comes near this. */
export const MAX_COSE_BYTES = 64 * 1024;

function malformed(message: string): never {
  throw new TeegateError('COSE_MALFORMED', message);
}

export function parseCoseSign1(bytes: Uint8Array): CoseSign1 {
  let value: CborValue = decodeCbor(bytes, {
    allowedTags: [COSE_SIGN1_TAG],
    maxInputLength: MAX_COSE_BYTES,
    maxDepth: 4,
    maxItems: 64,
  });
  let tagged = false;
  if (value instanceof CborTag) {
    tagged = true;
    value = value.value;
  }
  if (!Array.isArray(value) || value.length !== 4) malformed('COSE_Sign1 must be an array of 4 items');
  const [protectedHeader, unprotected, payload, signature] = value as [CborValue, CborValue, CborValue, CborValue];
  if (!(protectedHeader instanceof Uint8Array)) malformed('protected header must be a byte string');
  if (!(unprotected instanceof Map)) malformed('unprotected header must be a map');
  if (unprotected.size !== 0) malformed('unprotected header must be empty');
  if (!(payload instanceof Uint8Array)) malformed('payload must be a byte string (detached payloads are not allowed)');
  if (!(signature instanceof Uint8Array)) malformed('signature must be a byte string');
  checkProtectedHeader(protectedHeader);
  if (signature.length !== 96) malformed(`ES384 signature must be 96 bytes (raw r||s), got ${signature.length}`);
  return { protectedHeader, payload, signature, tagged };
}

function checkProtectedHeader(header: Uint8Array): void {
  if (bytesEqual(header, ES384_PROTECTED)) return;
  let detail = 'not a CBOR map';
  try {
    const decoded = decodeCbor(header, { maxDepth: 2, maxItems: 16 });
    if (decoded instanceof Map) {
      const alg = decoded.get(1);
      detail =
        decoded.size === 1 && alg === -35
          ? '{1: -35} in a non-preferred encoding'
          : `alg ${alg === undefined ? 'missing' : String(alg)}${decoded.size > 1 ? ' with extra header parameters' : ''}`;
    }
  } catch {
    detail = 'not well-formed CBOR';
  }
  throw new TeegateError('COSE_ALG_UNSUPPORTED', `protected header must be exactly {1: -35} (ES384): ${detail}`);
}

/** The bytes that were signed: CBOR ["Signature1", protected, h'', payload]. */
export function sigStructure(sign1: CoseSign1): Uint8Array {
  return encodeCbor(['Signature1', sign1.protectedHeader, new Uint8Array(0), sign1.payload]);
}

export async function verifyCoseSign1(sign1: CoseSign1, key: CryptoKey): Promise<boolean> {
  return verifyP384(key, sign1.signature, sigStructure(sign1));
}
