/**
 * Cryptographic operations: Encrypt, Decrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
 * GenerateRandom. With a `Recipient`, Decrypt / GenerateDataKey / GenerateRandom return
 * CiphertextForRecipient and no Plaintext, as AWS KMS does for Nitro Enclaves.
 * Constraints from the KMS API Reference pages of each operation
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_<Operation>.html).
 */
import { randomBytes } from 'node:crypto';
import { fromBase64, toBase64 } from '../../attestation/bytes';
import { InvalidBlobError, blobKeyId, openBlob, sealBlob } from './ciphertext-blob';
import { KmsError } from './kms-error';
import type { StoredKey } from './key-store';
import {
  authorizeAccount,
  authorizeKey,
  dryRunSucceeded,
  requireEnabled,
  resolveKey,
  type Operation,
  type OperationContext,
} from './operation-context';
import { encryptionContextConditionKeys } from './policy';
import { encryptForRecipient, verifyRecipient, type AttestedRecipient } from './recipient';
import {
  optionalBoolean,
  optionalContext,
  optionalEnum,
  optionalInteger,
  optionalRecipient,
  optionalString,
  optionalStringList,
  rejectUnknownMembers,
  requiredBlob,
  requiredString,
  type JsonObject,
  type RecipientInfo,
} from './request-fields';

const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;

function material(key: StoredKey): Uint8Array {
  return fromBase64(key.material);
}

function checkAlgorithm(body: JsonObject, key: StoredKey): void {
  const algorithm = optionalEnum(body, 'EncryptionAlgorithm', ENCRYPTION_ALGORITHMS);
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `${key.arn} does not support the encryption algorithm ${algorithm}.`);
  }
}

async function attested(info: RecipientInfo | undefined, ctx: OperationContext): Promise<AttestedRecipient | undefined> {
  return info === undefined ? undefined : verifyRecipient(info, ctx.verifyRecipientDocument);
}

/** Plaintext, or CiphertextForRecipient and no Plaintext when a Recipient was attested. */
function plaintextMembers(ctx: OperationContext, plaintext: Uint8Array, recipient: AttestedRecipient | undefined): JsonObject {
  if (recipient === undefined) return { Plaintext: toBase64(plaintext) };
  return { CiphertextForRecipient: toBase64(encryptForRecipient(ctx.encryptForRecipient, plaintext, recipient)) };
}

const encrypt: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['KeyId', 'Plaintext', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm', 'DryRun']);
  const keyParam = requiredString(body, 'KeyId', { min: 1, max: 2048 });
  const plaintext = requiredBlob(body, 'Plaintext', { min: 1, max: 4096 });
  const context = optionalContext(body, 'EncryptionContext');
  optionalStringList(body, 'GrantTokens', 10);
  const dryRun = optionalBoolean(body, 'DryRun') === true;
  const key = resolveKey(ctx, keyParam);
  checkAlgorithm(body, key);
  authorizeKey(ctx, key, 'kms:Encrypt', encryptionContextConditionKeys(context));
  if (dryRun) throw dryRunSucceeded();
  requireEnabled(key);
  return {
    CiphertextBlob: toBase64(sealBlob(key.keyId, material(key), plaintext, context)),
    KeyId: key.arn,
    EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  };
};

const decrypt: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['CiphertextBlob', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm', 'Recipient', 'DryRun', 'DryRunModifiers']);
  const blob = requiredBlob(body, 'CiphertextBlob', { min: 1, max: 6144 });
  const context = optionalContext(body, 'EncryptionContext');
  optionalStringList(body, 'GrantTokens', 10);
  optionalStringList(body, 'DryRunModifiers', 1);
  const keyParam = optionalString(body, 'KeyId', { min: 1, max: 2048 });
  const recipientInfo = optionalRecipient(body);
  const dryRun = optionalBoolean(body, 'DryRun') === true;
  let key: StoredKey | undefined;
  try {
    key = ctx.store.get(blobKeyId(blob));
  } catch (err) {
    if (err instanceof InvalidBlobError) throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid or was not produced by this KMS.');
    throw err;
  }
  if (keyParam !== undefined) {
    const named = resolveKey(ctx, keyParam);
    if (key === undefined || named.keyId !== key.keyId) {
      throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    }
  }
  // A blob naming a key this KMS does not have is indistinguishable from a corrupt one.
  if (key === undefined) throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid or was not produced by this KMS.');
  checkAlgorithm(body, key);
  const recipient = await attested(recipientInfo, ctx);
  authorizeKey(ctx, key, 'kms:Decrypt', { ...encryptionContextConditionKeys(context), ...recipient?.conditionKeys });
  if (dryRun) throw dryRunSucceeded();
  requireEnabled(key);
  let plaintext: Uint8Array;
  try {
    plaintext = openBlob(blob, material(key), context);
  } catch (err) {
    if (err instanceof InvalidBlobError) throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid, was modified, or the encryption context does not match.');
    throw err;
  }
  return { KeyId: key.arn, ...plaintextMembers(ctx, plaintext, recipient), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
};

function dataKeyLength(body: JsonObject): number {
  const bytes = optionalInteger(body, 'NumberOfBytes', { min: 1, max: 1024 });
  const spec = optionalEnum(body, 'KeySpec', ['AES_256', 'AES_128'] as const);
  if ((bytes === undefined) === (spec === undefined)) {
    throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  return bytes ?? (spec === 'AES_128' ? 16 : 32);
}

function generateDataKey(withPlaintext: boolean): Operation {
  const members = ['KeyId', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens', 'DryRun', ...(withPlaintext ? ['Recipient'] : [])];
  const action = withPlaintext ? 'kms:GenerateDataKey' : 'kms:GenerateDataKeyWithoutPlaintext';
  return async (body, ctx) => {
    rejectUnknownMembers(body, members);
    const keyParam = requiredString(body, 'KeyId', { min: 1, max: 2048 });
    const context = optionalContext(body, 'EncryptionContext');
    const length = dataKeyLength(body);
    optionalStringList(body, 'GrantTokens', 10);
    const recipientInfo = withPlaintext ? optionalRecipient(body) : undefined;
    const dryRun = optionalBoolean(body, 'DryRun') === true;
    const key = resolveKey(ctx, keyParam);
    const recipient = await attested(recipientInfo, ctx);
    authorizeKey(ctx, key, action, { ...encryptionContextConditionKeys(context), ...recipient?.conditionKeys });
    if (dryRun) throw dryRunSucceeded();
    requireEnabled(key);
    const dataKey = new Uint8Array(randomBytes(length));
    const out: JsonObject = {
      CiphertextBlob: toBase64(sealBlob(key.keyId, material(key), dataKey, context)),
      KeyId: key.arn,
    };
    return withPlaintext ? { ...out, ...plaintextMembers(ctx, dataKey, recipient) } : out;
  };
}

const generateRandom: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['NumberOfBytes', 'CustomKeyStoreId', 'Recipient']);
  const length = optionalInteger(body, 'NumberOfBytes', { min: 1, max: 1024 });
  if (length === undefined) throw new KmsError('ValidationException', "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null");
  const store = optionalString(body, 'CustomKeyStoreId', { min: 1, max: 64 });
  const recipientInfo = optionalRecipient(body);
  if (store !== undefined) throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${store} does not exist.`);
  const recipient = await attested(recipientInfo, ctx);
  authorizeAccount(ctx, 'kms:GenerateRandom', recipient?.conditionKeys ?? {});
  return plaintextMembers(ctx, new Uint8Array(randomBytes(length)), recipient);
};

export const CRYPTO_OPERATIONS: Readonly<Record<string, Operation>> = {
  Encrypt: encrypt,
  Decrypt: decrypt,
  GenerateDataKey: generateDataKey(true),
  GenerateDataKeyWithoutPlaintext: generateDataKey(false),
  GenerateRandom: generateRandom,
};
