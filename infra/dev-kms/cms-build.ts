/**
 * What AWS KMS does to answer a `Recipient` request: wrap a plaintext in a BER CMS EnvelopedData
 * (CiphertextForRecipient) for the RSA key of the attestation document. Fresh AES-256 key and IV,
 * AES-256-CBC with PKCS#7 padding, RSAES-OAEP(SHA-256, MGF1-SHA-256) key transport,
 * KeyTransRecipientInfo v2 with rid [0] subjectKeyIdentifier, EnvelopedData v2, indefinite lengths
 * and a chunked encryptedContent, as in the real KMS blobs (aws-nitro-enclaves-sdk-c cms_test.c).
 */
import { KeyObject, constants, createCipheriv, createHash, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { bytesEqual, concatBytes } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';
import { CMS_OID } from '../../enclave/kms/cms-enveloped-data';
import { TAG } from '../../attestation/x509/der';
import { derContext, derInteger, derNull, derOctetString, derSequence, derSet, derTlv } from '../../attestation/x509/der-writer';

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;
/** Octets per encryptedContent chunk (OpenSSL's -stream and KMS both emit chunks). */
const CHUNK_BYTES = 1024;

/** Constructed encoding with indefinite length, closed by end-of-contents. */
function indefinite(tag: number, ...children: Uint8Array[]): Uint8Array {
  return concatBytes(Uint8Array.of(tag, 0x80), ...children, Uint8Array.of(0x00, 0x00));
}

/** An OBJECT IDENTIFIER from CMS_OID's encoded contents. */
const oid = (contents: Uint8Array): Uint8Array => derTlv(TAG.OID, contents);

const sha256Algorithm = derSequence(oid(CMS_OID.sha256), derNull());

/** rsaesOaep { [0] sha256, [1] mgf1(sha256) } with NULL hash parameters, byte for byte as KMS sends it. */
const rsaesOaepSha256 = derSequence(
  oid(CMS_OID.rsaesOaep),
  derSequence(derContext(0, sha256Algorithm), derContext(1, derSequence(oid(CMS_OID.mgf1), sha256Algorithm))),
);

/** The recipient's RSA public key; the SPKI must be DER exactly as Node re-encodes it. */
function recipientKey(spkiDer: Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (err) {
    throw new TeegateError('CMS_UNSUPPORTED', 'recipient key is not a DER SubjectPublicKeyInfo', { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new TeegateError('CMS_UNSUPPORTED', `recipient key is ${key.asymmetricKeyType}, not RSA`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new TeegateError('CMS_UNSUPPORTED', `recipient RSA key has ${bits} bits, expected ${MIN_RSA_BITS} to ${MAX_RSA_BITS}`);
  }
  if (!bytesEqual(key.export({ type: 'spki', format: 'der' }), spkiDer)) {
    throw new TeegateError('CMS_UNSUPPORTED', 'recipient SubjectPublicKeyInfo is not canonical DER');
  }
  return key;
}

/**
 * RFC 5280 section 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents
 * (without the unused-bits octet). For RSA those contents are the DER RSAPublicKey (PKCS#1).
 */
export function subjectKeyIdentifierOf(key: KeyObject): Uint8Array {
  return new Uint8Array(createHash('sha1').update(key.export({ type: 'pkcs1', format: 'der' })).digest());
}

/** Build CiphertextForRecipient for `plaintext` to the RSA key in `recipientSpkiDer`. */
export function buildEnvelopedData(plaintext: Uint8Array, recipientSpkiDer: Uint8Array): Uint8Array {
  const key = recipientKey(recipientSpkiDer);
  const contentKey = randomBytes(32);
  const iv = randomBytes(16);
  try {
    const cipher = createCipheriv('aes-256-cbc', contentKey, iv);
    const ciphertext = concatBytes(cipher.update(plaintext), cipher.final());
    const encryptedKey = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, contentKey);

    const recipientInfo = derSequence(derInteger(2), derContext(0, subjectKeyIdentifierOf(key), false), rsaesOaepSha256, derOctetString(encryptedKey));
    const chunks: Uint8Array[] = [];
    for (let off = 0; off < ciphertext.length; off += CHUNK_BYTES) chunks.push(derOctetString(ciphertext.subarray(off, off + CHUNK_BYTES)));
    const encryptedContentInfo = indefinite(
      TAG.SEQUENCE,
      oid(CMS_OID.data),
      derSequence(oid(CMS_OID.aes256Cbc), derOctetString(iv)),
      indefinite(0xa0, ...chunks),
    );
    const envelopedData = indefinite(TAG.SEQUENCE, derInteger(2), derSet(recipientInfo), encryptedContentInfo);
    return indefinite(TAG.SEQUENCE, oid(CMS_OID.envelopedData), indefinite(0xa0, envelopedData));
  } finally {
    contentKey.fill(0);
  }
}
