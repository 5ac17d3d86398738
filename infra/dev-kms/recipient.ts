/**
 * The `Recipient` parameter (Decrypt, GenerateDataKey, GenerateRandom): verify the attestation
 * document, expose its PCRs as the Nitro condition keys, and wrap the plaintext for the
 * document's public key (CiphertextForRecipient) instead of returning it.
 * See https://docs.aws.amazon.com/kms/latest/developerguide/services-nitro-enclaves.html.
 */
import { isTeegateError } from '../../attestation/errors';
import { KmsError } from './kms-error';
import { recipientConditionKeys } from './policy';
import type { RecipientInfo } from './request-fields';

export interface VerifiedRecipient {
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** RSA SubjectPublicKeyInfo DER from the document's `public_key`. */
  readonly publicKey: Uint8Array;
}

/** Verifies an attestation document (chain to the trusted root, signature, time); throws if rejected. */
export type VerifyRecipientDocument = (document: Uint8Array) => Promise<VerifiedRecipient>;

/** Wraps a plaintext for the recipient key: CMS EnvelopedData, as KMS returns it. */
export type RecipientEncryptor = (plaintext: Uint8Array, recipientSpkiDer: Uint8Array) => Uint8Array;

export interface AttestedRecipient extends VerifiedRecipient {
  /** `kms:RecipientAttestation:*` condition keys for the key policy. */
  readonly conditionKeys: Readonly<Record<string, string>>;
}

export async function verifyRecipient(info: RecipientInfo, verify: VerifyRecipientDocument | undefined): Promise<AttestedRecipient> {
  if (verify === undefined) {
    throw new KmsError('UnsupportedOperationException', 'This dev KMS has no trusted attestation root configured, so it cannot accept a Recipient.');
  }
  let verified: VerifiedRecipient;
  try {
    verified = await verify(info.attestationDocument);
  } catch (err) {
    if (isTeegateError(err)) {
      throw new KmsError('AccessDeniedException', `The attestation document in the Recipient was rejected (${err.code}): ${err.message}`, { cause: err });
    }
    throw err;
  }
  return { ...verified, conditionKeys: recipientConditionKeys(verified.pcrs) };
}

/** CiphertextForRecipient for `plaintext`; a key the encryptor cannot use is the caller's error. */
export function encryptForRecipient(encrypt: RecipientEncryptor, plaintext: Uint8Array, recipient: VerifiedRecipient): Uint8Array {
  try {
    return encrypt(plaintext, recipient.publicKey);
  } catch (err) {
    if (isTeegateError(err)) {
      throw new KmsError('ValidationException', `The public key in the attestation document cannot be used with RSAES_OAEP_SHA_256 (${err.code}): ${err.message}`, { cause: err });
    }
    throw err;
  }
}
