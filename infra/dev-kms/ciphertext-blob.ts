/**
 * The dev KMS ciphertext blob: an opaque, versioned format (like KMS's own) that names the key
 * and carries AES-256-GCM output. The encryption context is bound as additional authenticated
 * data, so Decrypt fails unless it gets exactly the same context.
 *
 *   byte 0        format version (1)
 *   byte 1        length L of the key id
 *   bytes 2..2+L  key id (ASCII UUID)
 *   12 bytes      GCM nonce (random)
 *   rest          ciphertext || 16-byte GCM tag
 *
 * AAD = "teegate-dev-kms/blob/v1" || 0x00 || header (bytes 0..2+L) || canonical(context), where
 * canonical(context) = for each entry sorted by key (UTF-16 code unit order, as AWS sorts):
 * u32be(len(key)) key u32be(len(value)) value, all UTF-8.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const BLOB_VERSION = 1;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const AAD_LABEL = Buffer.from('teegate-dev-kms/blob/v1\0', 'utf8');

export class InvalidBlobError extends Error {
  override readonly name = 'InvalidBlobError';
}

function canonicalContext(context: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const key of Object.keys(context).sort()) {
    for (const text of [key, context[key]!]) {
      const bytes = Buffer.from(text, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      parts.push(len, bytes);
    }
  }
  return Buffer.concat(parts);
}

function header(keyId: string): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  if (id.length === 0 || id.length > 255) throw new Error('key id must be 1 to 255 ASCII bytes');
  return Buffer.concat([Buffer.from([BLOB_VERSION, id.length]), id]);
}

export function sealBlob(
  keyId: string,
  keyMaterial: Uint8Array,
  plaintext: Uint8Array,
  context: Readonly<Record<string, string>>,
): Uint8Array {
  const head = header(keyId);
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', keyMaterial, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.concat([AAD_LABEL, head, canonicalContext(context)]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(Buffer.concat([head, nonce, body]));
}

/** Read the key id from a blob without decrypting it. Throws InvalidBlobError. */
export function blobKeyId(blob: Uint8Array): string {
  if (blob.length < 2 || blob[0] !== BLOB_VERSION) throw new InvalidBlobError('unknown ciphertext format');
  const len = blob[1]!;
  if (blob.length < 2 + len + NONCE_LENGTH + TAG_LENGTH) throw new InvalidBlobError('truncated ciphertext');
  const id = Buffer.from(blob.subarray(2, 2 + len)).toString('latin1');
  if (!/^[0-9a-f-]{1,64}$/.test(id)) throw new InvalidBlobError('ciphertext names an invalid key id');
  return id;
}

/** Decrypt and authenticate; throws InvalidBlobError on any mismatch (tamper, key, context). */
export function openBlob(blob: Uint8Array, keyMaterial: Uint8Array, context: Readonly<Record<string, string>>): Uint8Array {
  const keyId = blobKeyId(blob);
  const headLength = 2 + blob[1]!;
  const nonce = blob.subarray(headLength, headLength + NONCE_LENGTH);
  const body = blob.subarray(headLength + NONCE_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', keyMaterial, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(Buffer.concat([AAD_LABEL, header(keyId), canonicalContext(context)]));
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  try {
    return new Uint8Array(Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LENGTH)), decipher.final()]));
  } catch {
    throw new InvalidBlobError('ciphertext authentication failed');
  }
}
