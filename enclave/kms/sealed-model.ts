/**
 * The sealed model file (`<model>.onnx.sealed`): a model encrypted with AES-256-GCM under a data
 * key from KMS GenerateDataKey, with everything needed to release that key beside it.
 *
 *   "TGSM" | format version (1 byte, 1) | header length (uint32 big-endian) | header | ciphertext | tag (16)
 *
 * The header is RFC 8785 canonical JSON (UTF-8):
 *   {"cipher":{"alg":"A256GCM","iv":b64},
 *    "kms":{"encryptedDataKey":b64,"encryptionContext":{"teegate:model":N,"teegate:version":V},"keyId":ARN},
 *    "model":{"name":N,"sha256":hex,"size":bytes,"version":V}}
 * and everything before the ciphertext (magic, version, length, header) is the GCM additional
 * data, so no header field can be changed without the tag failing. See docs/key-release.md.
 *
 * A sealed file is attacker-controlled (it sits on the untrusted parent's disk): parsing is strict
 * (canonical header, exact members, sizes that add up) and every failure is a typed error.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { bytesEqual, concatBytes, fromBase64, fromUtf8, randomBytes, toBase64, utf8 } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';
import { MODEL_NAME_PATTERN } from '../models/model-config';

export const SEALED_MODEL_MAGIC: Uint8Array = utf8('TGSM');
export const SEALED_MODEL_FORMAT_VERSION = 1;
export const SEALED_MODEL_SUFFIX = '.sealed';
/** Magic, version byte and header length. */
export const SEALED_MODEL_PREFIX_BYTES = 9;
export const SEALED_MODEL_MAX_HEADER_BYTES = 16 * 1024;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;
/** KMS CiphertextBlob limit (Decrypt accepts at most 6144 bytes). */
export const MAX_ENCRYPTED_DATA_KEY_BYTES = 6144;

export const CONTEXT_MODEL = 'teegate:model';
export const CONTEXT_VERSION = 'teegate:version';

export interface SealedModelHeader {
  readonly model: { readonly name: string; readonly version: string; readonly sha256: string; readonly size: number };
  readonly kms: {
    /** The key ARN GenerateDataKey answered with. */
    readonly keyId: string;
    /** GenerateDataKey's CiphertextBlob. */
    readonly encryptedDataKey: Uint8Array;
    readonly encryptionContext: Readonly<Record<string, string>>;
  };
  readonly iv: Uint8Array;
}

export interface SealedModel {
  readonly header: SealedModelHeader;
  /** Everything before the ciphertext: the GCM additional data. */
  readonly aad: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** The KMS encryption context a model's data key is bound to. */
export function modelEncryptionContext(name: string, version: string): Record<string, string> {
  return { [CONTEXT_MODEL]: name, [CONTEXT_VERSION]: version };
}

function invalid(message: string): TeegateError {
  return new TeegateError('SEALED_MODEL_INVALID', `sealed model: ${message}`);
}

function headerJson(header: SealedModelHeader): string {
  const text = canonicalize({
    cipher: { alg: 'A256GCM', iv: toBase64(header.iv) },
    kms: { encryptedDataKey: toBase64(header.kms.encryptedDataKey), encryptionContext: header.kms.encryptionContext, keyId: header.kms.keyId },
    model: header.model,
  });
  if (text === undefined) throw invalid('header cannot be encoded');
  return text;
}

function framePrefix(headerBytes: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(SEALED_MODEL_PREFIX_BYTES);
  prefix.set(SEALED_MODEL_MAGIC, 0);
  prefix[4] = SEALED_MODEL_FORMAT_VERSION;
  new DataView(prefix.buffer).setUint32(5, headerBytes.length, false);
  return concatBytes(prefix, headerBytes);
}

/**
 * Encrypts `plaintext` under `dataKey` with exactly this header (written as given: the sealer
 * vouches for `model.sha256` and `model.size`). `sealModel` is what callers normally want.
 */
export function encryptSealedModel(header: SealedModelHeader, plaintext: Uint8Array, dataKey: Uint8Array): Uint8Array {
  if (dataKey.length !== DATA_KEY_BYTES) throw invalid(`data key must be ${DATA_KEY_BYTES} bytes, got ${dataKey.length}`);
  if (header.iv.length !== GCM_IV_BYTES) throw invalid(`iv must be ${GCM_IV_BYTES} bytes`);
  const aad = framePrefix(utf8(headerJson(header)));
  const cipher = createCipheriv('aes-256-gcm', dataKey, header.iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return concatBytes(aad, ciphertext, cipher.getAuthTag());
}

export interface SealModelInput {
  readonly plaintext: Uint8Array;
  readonly name: string;
  readonly version: string;
  /** From GenerateDataKey: Plaintext (32 bytes), CiphertextBlob and KeyId. */
  readonly dataKey: Uint8Array;
  readonly encryptedDataKey: Uint8Array;
  readonly keyId: string;
}

/** Seals a model: SHA-256 and size of the plaintext, a fresh random IV, the model's context. */
export function sealModel(input: SealModelInput): Uint8Array {
  if (!MODEL_NAME_PATTERN.test(input.name)) throw invalid(`model name ${JSON.stringify(input.name)} is not valid`);
  if (!MODEL_NAME_PATTERN.test(input.version)) throw invalid(`model version ${JSON.stringify(input.version)} is not valid`);
  const header: SealedModelHeader = {
    model: { name: input.name, version: input.version, sha256: createHash('sha256').update(input.plaintext).digest('hex'), size: input.plaintext.length },
    kms: { keyId: input.keyId, encryptedDataKey: input.encryptedDataKey, encryptionContext: modelEncryptionContext(input.name, input.version) },
    iv: randomBytes(GCM_IV_BYTES),
  };
  return encryptSealedModel(header, input.plaintext, input.dataKey);
}

// ---------------------------------------------------------------------------------------------
// Strict parsing. Every value below comes from the file and is attacker-controlled.

type Json = Record<string, unknown>;

function object(value: unknown, label: string, members: readonly string[]): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${label} must be an object`);
  const keys = Object.keys(value).sort();
  const want = [...members].sort();
  if (keys.length !== want.length || keys.some((k, i) => k !== want[i])) {
    throw invalid(`${label} must have exactly the members ${want.join(', ')}; it has ${keys.join(', ') || 'none'}`);
  }
  return value as Json;
}

function string(value: unknown, label: string, pattern?: RegExp, maxLength = 2048): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) throw invalid(`${label} must be a string of 1 to ${maxLength} characters`);
  if (pattern && !pattern.test(value)) throw invalid(`${label} ${JSON.stringify(value)} does not match ${pattern}`);
  return value;
}

function base64(value: unknown, label: string): Uint8Array {
  const text = string(value, label, undefined, 16 * 1024);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(text);
  } catch {
    throw invalid(`${label} is not valid base64`);
  }
  if (toBase64(bytes) !== text) throw invalid(`${label} is not canonical padded base64`);
  return bytes;
}

function parseHeader(text: string): SealedModelHeader {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('header is not JSON');
  }
  // Canonical form only: no duplicate members, no other spelling of the same header.
  if (canonicalize(value) !== text) throw invalid('header is not RFC 8785 canonical JSON');
  const root = object(value, 'header', ['cipher', 'kms', 'model']);
  const cipher = object(root['cipher'], 'cipher', ['alg', 'iv']);
  if (cipher['alg'] !== 'A256GCM') throw invalid(`cipher.alg must be "A256GCM", not ${JSON.stringify(cipher['alg'])}`);
  const iv = base64(cipher['iv'], 'cipher.iv');
  if (iv.length !== GCM_IV_BYTES) throw invalid(`cipher.iv must be ${GCM_IV_BYTES} bytes, got ${iv.length}`);

  const model = object(root['model'], 'model', ['name', 'sha256', 'size', 'version']);
  const name = string(model['name'], 'model.name', MODEL_NAME_PATTERN);
  const version = string(model['version'], 'model.version', MODEL_NAME_PATTERN);
  const sha256 = string(model['sha256'], 'model.sha256', /^[0-9a-f]{64}$/);
  const size = model['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid('model.size must be a non-negative integer');

  const kms = object(root['kms'], 'kms', ['encryptedDataKey', 'encryptionContext', 'keyId']);
  const keyId = string(kms['keyId'], 'kms.keyId');
  const encryptedDataKey = base64(kms['encryptedDataKey'], 'kms.encryptedDataKey');
  if (encryptedDataKey.length === 0 || encryptedDataKey.length > MAX_ENCRYPTED_DATA_KEY_BYTES) {
    throw invalid(`kms.encryptedDataKey must be 1 to ${MAX_ENCRYPTED_DATA_KEY_BYTES} bytes`);
  }
  const context = object(kms['encryptionContext'], 'kms.encryptionContext', [CONTEXT_MODEL, CONTEXT_VERSION]);
  if (context[CONTEXT_MODEL] !== name || context[CONTEXT_VERSION] !== version) {
    throw invalid(`kms.encryptionContext must name the model and version of the header (${name}@${version})`);
  }
  return {
    model: { name, version, sha256, size },
    kms: { keyId, encryptedDataKey, encryptionContext: modelEncryptionContext(name, version) },
    iv,
  };
}

/** Parses a sealed model file; SEALED_MODEL_INVALID for anything that is not exactly the format. */
export function parseSealedModel(file: Uint8Array): SealedModel {
  if (file.length < SEALED_MODEL_PREFIX_BYTES + GCM_TAG_BYTES) throw invalid(`file of ${file.length} bytes is too short`);
  if (!bytesEqual(file.subarray(0, 4), SEALED_MODEL_MAGIC)) throw invalid('not a sealed model (magic is not "TGSM")');
  if (file[4] !== SEALED_MODEL_FORMAT_VERSION) throw invalid(`format version ${file[4]} is not supported (only ${SEALED_MODEL_FORMAT_VERSION})`);
  const headerLength = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(5, false);
  if (headerLength === 0 || headerLength > SEALED_MODEL_MAX_HEADER_BYTES) throw invalid(`header length ${headerLength} is not between 1 and ${SEALED_MODEL_MAX_HEADER_BYTES}`);
  const headerEnd = SEALED_MODEL_PREFIX_BYTES + headerLength;
  if (headerEnd + GCM_TAG_BYTES > file.length) throw invalid(`header length ${headerLength} leaves no room for the tag in ${file.length} bytes`);
  let text: string;
  try {
    text = fromUtf8(file.subarray(SEALED_MODEL_PREFIX_BYTES, headerEnd));
  } catch {
    throw invalid('header is not valid UTF-8');
  }
  const header = parseHeader(text);
  const ciphertext = file.subarray(headerEnd, file.length - GCM_TAG_BYTES);
  if (ciphertext.length !== header.model.size) {
    throw invalid(`ciphertext is ${ciphertext.length} bytes, the header says the model is ${header.model.size}`);
  }
  return { header, aad: file.subarray(0, headerEnd), ciphertext, tag: file.subarray(file.length - GCM_TAG_BYTES) };
}

/**
 * Decrypts and checks the model: SEALED_MODEL_DECRYPT_FAILED when the tag does not verify (wrong
 * key, or any byte of the file changed), SEALED_MODEL_DIGEST_MISMATCH when the plaintext is not
 * the model the header names.
 */
export function decryptSealedModel(sealed: SealedModel, dataKey: Uint8Array): Uint8Array {
  if (dataKey.length !== DATA_KEY_BYTES) throw new TeegateError('SEALED_MODEL_DECRYPT_FAILED', `data key is ${dataKey.length} bytes, expected ${DATA_KEY_BYTES}`);
  const { name, version, sha256 } = sealed.header.model;
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.header.iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(sealed.aad);
    decipher.setAuthTag(sealed.tag);
    plaintext = Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch (err) {
    throw new TeegateError('SEALED_MODEL_DECRYPT_FAILED', `sealed model ${name}@${version}: AES-256-GCM authentication failed (file changed or wrong data key)`, { cause: err });
  }
  const actual = createHash('sha256').update(plaintext).digest('hex');
  if (actual !== sha256) {
    plaintext.fill(0);
    throw new TeegateError('SEALED_MODEL_DIGEST_MISMATCH', `sealed model ${name}@${version}: plaintext SHA-256 is ${actual}, the header says ${sha256}`);
  }
  return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
}

/** Checks that a sealed file is the configured model (before any key is released for it). */
export function expectSealedModel(sealed: SealedModel, expected: { readonly name: string; readonly version: string; readonly sha256: string }): void {
  const { name, version, sha256 } = sealed.header.model;
  if (name !== expected.name || version !== expected.version) {
    throw invalid(`file is sealed for ${name}@${version}, configured ${expected.name}@${expected.version}`);
  }
  if (sha256 !== expected.sha256) {
    throw new TeegateError('SEALED_MODEL_DIGEST_MISMATCH', `sealed model ${name}@${version}: header SHA-256 is ${sha256}, configured ${expected.sha256}`);
  }
}
