/**
 * Key release at boot: KMS gives a sealed model's data key only to an attested enclave.
 *
 *  1. make an ephemeral RSA-2048 key;
 *  2. ask the NSM for an attestation document whose public_key is that key's SPKI DER;
 *  3. KMS Decrypt(CiphertextBlob, EncryptionContext, Recipient {document, RSAES_OAEP_SHA_256}):
 *     KMS checks the document and the key policy (kms:RecipientAttestation:ImageSha384 / PCR<n>)
 *     and answers CiphertextForRecipient, a CMS EnvelopedData to the ephemeral key;
 *  4. open it with the private key, once (CBC without MAC: no second try, no padding oracle), and
 *     drop the RSA key;
 *  5. decrypt the model with the data key in memory, check its SHA-256, wipe the data key.
 * The KMS client is the real @aws-sdk/client-kms (kms-client.ts): only its endpoint differs
 * between the dev KMS and AWS.
 */
import { generateKeyPair } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DecryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import type { ModelConfig } from '../models/model-config';
import type { Nsm } from '../nsm/nsm';
import { decryptEnvelopedData } from './cms-enveloped-data';
import { kmsCallError } from './kms-client';
import { DATA_KEY_BYTES, decryptSealedModel, expectSealedModel, parseSealedModel, type SealedModel } from './sealed-model';

const generateKeyPairAsync = promisify(generateKeyPair);

export type ReadModelFile = (path: string) => Promise<Uint8Array>;

export interface KeyReleaseOptions {
  readonly log?: (event: Record<string, unknown>) => void;
}

/**
 * Releases a sealed model's data key (32 bytes) through KMS Decrypt with an attested Recipient.
 * The caller wipes the returned key after use. Throws KEY_RELEASE_REJECTED / _UNAVAILABLE (the
 * message names the AWS exception), CMS_* for a bad CiphertextForRecipient, NSM_* from the NSM.
 */
export async function releaseDataKey(kms: KMSClient, nsm: Nsm, sealed: SealedModel): Promise<Uint8Array> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const document = await nsm.attest({ publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) });
  let answer;
  try {
    answer = await kms.send(
      new DecryptCommand({
        CiphertextBlob: sealed.header.kms.encryptedDataKey,
        KeyId: sealed.header.kms.keyId,
        EncryptionContext: { ...sealed.header.kms.encryptionContext },
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        Recipient: { AttestationDocument: document, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' },
      }),
    );
  } catch (err) {
    throw kmsCallError('Decrypt', err);
  }
  if (answer.Plaintext !== undefined && answer.Plaintext.length > 0) {
    answer.Plaintext.fill(0);
    throw new TeegateError('KEY_RELEASE_REJECTED', 'KMS Decrypt answered with the data key in plaintext instead of CiphertextForRecipient; refusing it');
  }
  if (answer.CiphertextForRecipient === undefined || answer.CiphertextForRecipient.length === 0) {
    throw new TeegateError('KEY_RELEASE_REJECTED', 'KMS Decrypt answered without CiphertextForRecipient');
  }
  // One decryption with this key, success or not: the key goes out of scope right after.
  const dataKey = decryptEnvelopedData(answer.CiphertextForRecipient, privateKey);
  if (dataKey.length !== DATA_KEY_BYTES) {
    dataKey.fill(0);
    throw new TeegateError('KEY_RELEASE_REJECTED', `KMS released a data key of ${dataKey.length} bytes, expected ${DATA_KEY_BYTES}`);
  }
  return dataKey;
}

/** The model's name in front of the error's message; code and cause kept. */
function forModel(config: ModelConfig, err: unknown): TeegateError {
  const what = `model ${config.name}@${config.version}`;
  if (isTeegateError(err)) return new TeegateError(err.code, `${what}: ${err.message}`, { cause: err });
  return new TeegateError('MODEL_LOAD_FAILED', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Reads, checks, releases the key of and decrypts one sealed model, in memory only. */
async function openSealedModel(kms: KMSClient, nsm: Nsm, config: ModelConfig, sealedPath: string): Promise<Uint8Array> {
  let file: Uint8Array;
  try {
    file = await readFile(sealedPath);
  } catch (err) {
    throw new TeegateError('MODEL_LOAD_FAILED', `cannot read sealed model ${sealedPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const sealed = parseSealedModel(file);
  expectSealedModel(sealed, config);
  const dataKey = await releaseDataKey(kms, nsm, sealed);
  try {
    return decryptSealedModel(sealed, dataKey);
  } finally {
    dataKey.fill(0);
  }
}

/**
 * The `readFile` for ModelRegistry.load: a configured model with `sealed` is read from its sealed
 * file and decrypted after key release; every other path (plain models, dictionaries) is read
 * from disk as is.
 */
export function sealedModelReader(kms: KMSClient, nsm: Nsm, configs: readonly ModelConfig[], options: KeyReleaseOptions = {}): ReadModelFile {
  const log = options.log ?? (() => undefined);
  const sealedByPath = new Map(configs.filter((c) => c.sealed !== undefined).map((c) => [c.path, c] as const));
  return async (path) => {
    const config = sealedByPath.get(path);
    if (config === undefined || config.sealed === undefined) return readFile(path);
    const model = `${config.name}@${config.version}`;
    try {
      const plaintext = await openSealedModel(kms, nsm, config, config.sealed.path);
      log({ level: 'info', msg: 'model key released', model, sealed: config.sealed.path });
      return plaintext;
    } catch (err) {
      const typed = forModel(config, err);
      log({ level: 'error', msg: 'model key release failed', model, code: typed.code, reason: typed.message });
      throw typed;
    }
  };
}

/** `startEnclave({ prepareModels })` for these configs: key release through `kms`. */
export function prepareSealedModels(kms: KMSClient, configs: readonly ModelConfig[], options: KeyReleaseOptions = {}): (nsm: Nsm) => Promise<ReadModelFile> {
  return async (nsm) => sealedModelReader(kms, nsm, configs, options);
}
