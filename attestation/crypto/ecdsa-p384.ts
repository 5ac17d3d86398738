/** ECDSA P-384 / SHA-384 through WebCrypto (Node and browsers). */
import { TeegateError } from '../errors';
import { bufferSource, webcrypto } from '../bytes';

const ALG = { name: 'ECDSA', namedCurve: 'P-384' } as const;
const VERIFY = { name: 'ECDSA', hash: 'SHA-384' } as const;

/**
 * Imports a P-384 public key for verification: an uncompressed point (97 bytes, the fastest form to
 * import) or a SubjectPublicKeyInfo (DER). WebCrypto checks that the point is on the curve.
 */
export async function importP384PublicKey(key: Uint8Array): Promise<CryptoKey> {
  const format = key.length === 97 && key[0] === 0x04 ? 'raw' : 'spki';
  try {
    return await webcrypto().importKey(format, bufferSource(key), ALG, false, ['verify']);
  } catch (cause) {
    throw new TeegateError('CERT_ALG_UNSUPPORTED', 'public key is not a valid P-384 key', { cause });
  }
}

/** Verifies a raw r||s (96-byte) signature; returns false for any invalid signature. */
export async function verifyP384(key: CryptoKey, signatureRaw: Uint8Array, data: Uint8Array): Promise<boolean> {
  if (signatureRaw.length !== 96) return false;
  try {
    return await webcrypto().verify(VERIFY, key, bufferSource(signatureRaw), bufferSource(data));
  } catch {
    return false;
  }
}
