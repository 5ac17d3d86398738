/**
 * AWS KMS `CiphertextForRecipient`: a BER CMS EnvelopedData (RFC 5652) that KMS returns from
 * `Decrypt` / `GenerateDataKey` when the call carries a `Recipient` (an attestation document whose
 * public_key is the enclave's ephemeral RSA key).
 *
 * What KMS sends (aws-nitro-enclaves-sdk-c tests/kmstool-enclaves/cms_test.c):
 *   ContentInfo { envelopedData, [0] EnvelopedData {
 *     version 2,
 *     recipientInfos SET { KeyTransRecipientInfo { version 2, rid [0] subjectKeyIdentifier,
 *       rsaesOaep { [0] sha256, [1] mgf1(sha256) }, encryptedKey } },
 *     EncryptedContentInfo { data, aes256-CBC(iv 16 bytes), [0] encryptedContent } } }
 * with indefinite lengths and encryptedContent primitive or chunked. Zero bytes after the final
 * end-of-contents (padding of fixed-size buffers, as in copies of KMS answers kept in C arrays)
 * are accepted; any other byte after the structure is not.
 *
 * Everything in `ber` is attacker-controlled (it passes through the untrusted parent instance).
 * A small bounded BER reader is used instead of node-forge's asn1.fromDer, which reads these
 * blobs but accepts end-of-contents octets inside definite-length content (`30 04 00 00 05 00`),
 * rejects legal non-minimal long-form lengths, works on binary strings and throws untyped errors.
 *
 * The content is not authenticated (CBC, no MAC): callers must use each ephemeral RSA key for one
 * decryption only and abort on failure, so a padding-error oracle cannot be queried.
 */
import { KeyObject, constants, createDecipheriv, privateDecrypt } from 'node:crypto';
import { bytesEqual, concatByteList } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';

export type KeyEncryptionAlgorithm = 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1';

export interface ParsedEnvelopedData {
  subjectKeyIdentifier: Uint8Array;
  encryptedKey: Uint8Array;
  keyEncryption: KeyEncryptionAlgorithm;
  contentEncryption: 'AES_256_CBC';
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

export interface DecryptEnvelopedDataOptions {
  /** When given, the recipient's rid must be exactly this subjectKeyIdentifier. */
  subjectKeyIdentifier?: Uint8Array;
  /** Key transport algorithms to accept; default only RSAES_OAEP_SHA_256 (what KMS is asked for). */
  keyEncryptionAlgorithms?: readonly KeyEncryptionAlgorithm[];
}

/** Contents octets of the object identifiers used here (no tag, no length). */
export const CMS_OID = {
  envelopedData: Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03), // 1.2.840.113549.1.7.3
  data: Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01), // 1.2.840.113549.1.7.1
  rsaesOaep: Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07), // 1.2.840.113549.1.1.7
  mgf1: Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08), // 1.2.840.113549.1.1.8
  pSpecified: Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09), // 1.2.840.113549.1.1.9
  sha1: Uint8Array.of(0x2b, 0x0e, 0x03, 0x02, 0x1a), // 1.3.14.3.2.26
  sha256: Uint8Array.of(0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01), // 2.16.840.1.101.3.4.2.1
  aes256Cbc: Uint8Array.of(0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a), // 2.16.840.1.101.3.4.1.42
} as const;

/** KMS plaintexts are at most 4 KiB; a CiphertextForRecipient is far below this. */
export const CMS_MAX_INPUT_BYTES = 64 * 1024;
/** The structure above nests 11 levels deep; anything deeper is not a KMS answer. */
export const CMS_MAX_DEPTH = 16;

const AES_BLOCK = 16;
const AES_256_KEY_BYTES = 32;

// ---------------------------------------------------------------------------------------------
// Bounded BER reader (X.690): single-byte tags, definite lengths up to 4 length octets,
// indefinite lengths on constructed encodings only, depth limit, no reads past the input.

interface BerNode {
  /** Identifier octet (class, constructed bit, tag number < 31). */
  readonly tag: number;
  /** Contents of a primitive encoding. */
  readonly bytes?: Uint8Array;
  /** Elements of a constructed encoding. */
  readonly children?: readonly BerNode[];
}

function malformed(message: string): TeegateError {
  return new TeegateError('CMS_MALFORMED', message);
}
function unsupported(message: string): TeegateError {
  return new TeegateError('CMS_UNSUPPORTED', message);
}

class BerReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  private byte(end: number): number {
    if (this.pos >= end) throw malformed(`CMS truncated at offset ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  readElement(end: number, depth: number): BerNode {
    if (depth > CMS_MAX_DEPTH) throw malformed(`CMS nests deeper than ${CMS_MAX_DEPTH} levels`);
    const at = this.pos;
    const tag = this.byte(end);
    if ((tag & 0x1f) === 0x1f) throw malformed(`CMS uses a high tag number at offset ${at}`);
    if ((tag & 0xdf) === 0x00) throw malformed(`CMS has an unexpected end-of-contents at offset ${at}`);
    const constructed = (tag & 0x20) !== 0;
    const first = this.byte(end);
    if (first === 0x80) {
      if (!constructed) throw malformed(`CMS primitive element with indefinite length at offset ${at}`);
      const children: BerNode[] = [];
      for (;;) {
        if (this.pos >= end) throw malformed(`CMS truncated: no end-of-contents for offset ${at}`);
        if (this.buf[this.pos] === 0x00) {
          this.pos++;
          if (this.byte(end) !== 0x00) throw malformed(`CMS end-of-contents with a length at offset ${this.pos - 2}`);
          return { tag, children };
        }
        children.push(this.readElement(end, depth + 1));
      }
    }
    let length = first;
    if (first > 0x80) {
      const count = first & 0x7f;
      if (count > 4) throw malformed(`CMS length of ${count} octets at offset ${at}`);
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + this.byte(end);
    }
    if (length > end - this.pos) {
      throw malformed(`CMS length ${length} at offset ${at} exceeds the ${end - this.pos} bytes left`);
    }
    const contentEnd = this.pos + length;
    if (!constructed) {
      const bytes = this.buf.subarray(this.pos, contentEnd);
      this.pos = contentEnd;
      return { tag, bytes };
    }
    const children: BerNode[] = [];
    while (this.pos < contentEnd) children.push(this.readElement(contentEnd, depth + 1));
    return { tag, children };
  }
}

// ---------------------------------------------------------------------------------------------
// Schema helpers: each names what it expected, so a rejection says where the structure broke.

function hex(tag: number): string {
  return `0x${tag.toString(16).padStart(2, '0')}`;
}

function constructedOf(node: BerNode | undefined, tag: number, what: string): readonly BerNode[] {
  if (node === undefined) throw malformed(`CMS ${what} is missing`);
  if (node.tag !== tag || node.children === undefined) {
    throw malformed(`CMS ${what}: expected tag ${hex(tag)}, got ${hex(node.tag)}`);
  }
  return node.children;
}

function primitiveOf(node: BerNode | undefined, tag: number, what: string): Uint8Array {
  if (node === undefined) throw malformed(`CMS ${what} is missing`);
  if (node.tag !== tag || node.bytes === undefined) {
    throw malformed(`CMS ${what}: expected tag ${hex(tag)}, got ${hex(node.tag)}`);
  }
  return node.bytes;
}

function count(children: readonly BerNode[], min: number, max: number, what: string): void {
  if (children.length < min || children.length > max) {
    throw malformed(`CMS ${what} has ${children.length} elements, expected ${min === max ? min : `${min} to ${max}`}`);
  }
}

function smallInteger(node: BerNode | undefined, what: string): number {
  const bytes = primitiveOf(node, 0x02, what);
  if (bytes.length !== 1 || bytes[0]! > 0x7f) throw unsupported(`CMS ${what} is not a small non-negative integer`);
  return bytes[0]!;
}

function oid(node: BerNode | undefined, what: string): Uint8Array {
  const bytes = primitiveOf(node, 0x06, what);
  if (bytes.length === 0) throw malformed(`CMS ${what} is an empty object identifier`);
  return bytes;
}

type DigestName = 'sha1' | 'sha256';

/** AlgorithmIdentifier of SHA-1 or SHA-256; parameters absent or NULL (RFC 5754 section 2). */
function digestAlgorithm(node: BerNode | undefined, what: string): DigestName {
  const parts = constructedOf(node, 0x30, what);
  count(parts, 1, 2, what);
  const id = oid(parts[0], `${what} algorithm`);
  if (parts[1] !== undefined && primitiveOf(parts[1], 0x05, `${what} parameters`).length !== 0) {
    throw malformed(`CMS ${what} parameters are not NULL`);
  }
  if (bytesEqual(id, CMS_OID.sha256)) return 'sha256';
  if (bytesEqual(id, CMS_OID.sha1)) return 'sha1';
  throw unsupported(`CMS ${what} is not SHA-256 or SHA-1`);
}

/** The single element of an EXPLICIT context tag. */
function explicit(node: BerNode, what: string): BerNode {
  const inner = constructedOf(node, node.tag, what);
  count(inner, 1, 1, what);
  return inner[0]!;
}

/** RSAES-OAEP-params (RFC 4055 section 4.1): hash and MGF1 hash must agree, label empty. */
function oaepAlgorithm(node: BerNode | undefined): KeyEncryptionAlgorithm {
  const parts = constructedOf(node, 0x30, 'keyEncryptionAlgorithm');
  count(parts, 1, 2, 'keyEncryptionAlgorithm');
  if (!bytesEqual(oid(parts[0], 'keyEncryptionAlgorithm'), CMS_OID.rsaesOaep)) {
    throw unsupported('CMS key transport is not RSAES-OAEP');
  }
  // Parameters MUST be present for an encrypted value (RFC 4055 section 4.1).
  const params = constructedOf(parts[1], 0x30, 'RSAES-OAEP-params');
  let hash: DigestName = 'sha1';
  let mgfHash: DigestName = 'sha1';
  let next = 0;
  const field = (tag: number): BerNode | undefined => {
    const candidate = params[next];
    if (candidate === undefined || candidate.tag !== tag) return undefined;
    next++;
    return explicit(candidate, `RSAES-OAEP-params [${tag & 0x1f}]`);
  };
  const hashField = field(0xa0);
  if (hashField !== undefined) hash = digestAlgorithm(hashField, 'OAEP hashFunc');
  const mgfField = field(0xa1);
  if (mgfField !== undefined) {
    const mgf = constructedOf(mgfField, 0x30, 'OAEP maskGenFunc');
    count(mgf, 2, 2, 'OAEP maskGenFunc');
    if (!bytesEqual(oid(mgf[0], 'OAEP maskGenFunc'), CMS_OID.mgf1)) throw unsupported('CMS OAEP mask generation is not MGF1');
    mgfHash = digestAlgorithm(mgf[1], 'MGF1 hash');
  }
  const sourceField = field(0xa2);
  if (sourceField !== undefined) {
    const source = constructedOf(sourceField, 0x30, 'OAEP pSourceFunc');
    count(source, 2, 2, 'OAEP pSourceFunc');
    if (!bytesEqual(oid(source[0], 'OAEP pSourceFunc'), CMS_OID.pSpecified)) throw unsupported('CMS OAEP pSourceFunc is not pSpecified');
    if (primitiveOf(source[1], 0x04, 'OAEP label').length !== 0) throw unsupported('CMS OAEP label is not empty');
  }
  if (next !== params.length) throw malformed('CMS RSAES-OAEP-params has unexpected elements');
  if (hash !== mgfHash) throw unsupported(`CMS OAEP hash ${hash} differs from MGF1 hash ${mgfHash}`);
  return hash === 'sha256' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
}

/** encryptedContent [0] IMPLICIT OCTET STRING: primitive, or constructed of primitive chunks. */
function encryptedContent(node: BerNode): Uint8Array {
  if (node.tag === 0x80 && node.bytes !== undefined) return node.bytes.slice();
  return concatByteList(constructedOf(node, 0xa0, 'encryptedContent').map((c) => primitiveOf(c, 0x04, 'encryptedContent chunk')));
}

function keyTransRecipient(recipientInfos: readonly BerNode[]): Pick<ParsedEnvelopedData, 'subjectKeyIdentifier' | 'encryptedKey' | 'keyEncryption'> {
  if (recipientInfos.length === 0) throw malformed('CMS has no recipientInfos');
  if (recipientInfos.length > 1) throw unsupported(`CMS has ${recipientInfos.length} recipients, expected 1`);
  const ri = recipientInfos[0]!;
  if (ri.tag !== 0x30) throw unsupported(`CMS recipient is not a KeyTransRecipientInfo (tag ${hex(ri.tag)})`);
  const ktri = constructedOf(ri, 0x30, 'KeyTransRecipientInfo');
  count(ktri, 4, 4, 'KeyTransRecipientInfo');
  if (smallInteger(ktri[0], 'KeyTransRecipientInfo version') !== 2) throw unsupported('CMS KeyTransRecipientInfo version is not 2');
  const rid = ktri[1]!;
  if (rid.tag !== 0x80) throw unsupported(`CMS rid is not a [0] subjectKeyIdentifier (tag ${hex(rid.tag)})`);
  const subjectKeyIdentifier = primitiveOf(rid, 0x80, 'subjectKeyIdentifier');
  if (subjectKeyIdentifier.length === 0) throw malformed('CMS subjectKeyIdentifier is empty');
  const keyEncryption = oaepAlgorithm(ktri[2]);
  const encryptedKey = primitiveOf(ktri[3], 0x04, 'encryptedKey');
  if (encryptedKey.length === 0) throw malformed('CMS encryptedKey is empty');
  return { subjectKeyIdentifier: subjectKeyIdentifier.slice(), encryptedKey: encryptedKey.slice(), keyEncryption };
}

function encryptedContentInfo(node: BerNode | undefined): Pick<ParsedEnvelopedData, 'contentEncryption' | 'iv' | 'ciphertext'> {
  const eci = constructedOf(node, 0x30, 'EncryptedContentInfo');
  count(eci, 2, 3, 'EncryptedContentInfo');
  if (!bytesEqual(oid(eci[0], 'EncryptedContentInfo contentType'), CMS_OID.data)) throw unsupported('CMS encrypted content type is not id-data');
  const alg = constructedOf(eci[1], 0x30, 'contentEncryptionAlgorithm');
  count(alg, 2, 2, 'contentEncryptionAlgorithm');
  if (!bytesEqual(oid(alg[0], 'contentEncryptionAlgorithm'), CMS_OID.aes256Cbc)) throw unsupported('CMS content encryption is not AES-256-CBC');
  const iv = primitiveOf(alg[1], 0x04, 'AES-CBC IV');
  if (iv.length !== AES_BLOCK) throw malformed(`CMS AES-CBC IV is ${iv.length} bytes, expected ${AES_BLOCK}`);
  if (eci[2] === undefined) throw unsupported('CMS encryptedContent is absent (detached content)');
  const ciphertext = encryptedContent(eci[2]);
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) {
    throw malformed(`CMS ciphertext is ${ciphertext.length} bytes, not a positive multiple of ${AES_BLOCK}`);
  }
  return { contentEncryption: 'AES_256_CBC', iv: iv.slice(), ciphertext };
}

/** Parse KMS CiphertextForRecipient. Throws CMS_MALFORMED or CMS_UNSUPPORTED. */
export function parseEnvelopedData(ber: Uint8Array): ParsedEnvelopedData {
  if (!(ber instanceof Uint8Array)) throw malformed('CMS input is not bytes');
  if (ber.length > CMS_MAX_INPUT_BYTES) throw malformed(`CMS is ${ber.length} bytes, above the ${CMS_MAX_INPUT_BYTES}-byte limit`);
  const reader = new BerReader(ber);
  const root = reader.readElement(ber.length, 0);
  // The only bytes allowed after the structure: the zero padding seen in real KMS test arrays.
  for (let i = reader.pos; i < ber.length; i++) {
    if (ber[i] !== 0x00) throw malformed(`CMS has non-zero bytes after the structure at offset ${i}`);
  }

  const contentInfo = constructedOf(root, 0x30, 'ContentInfo');
  count(contentInfo, 2, 2, 'ContentInfo');
  if (!bytesEqual(oid(contentInfo[0], 'ContentInfo contentType'), CMS_OID.envelopedData)) {
    throw unsupported('CMS content type is not envelopedData');
  }
  const wrapped = constructedOf(contentInfo[1], 0xa0, 'ContentInfo content');
  count(wrapped, 1, 1, 'ContentInfo content');
  const ed = constructedOf(wrapped[0], 0x30, 'EnvelopedData');
  count(ed, 3, 5, 'EnvelopedData');
  if (smallInteger(ed[0], 'EnvelopedData version') !== 2) throw unsupported('CMS EnvelopedData version is not 2');
  if (ed[1]!.tag === 0xa0) throw unsupported('CMS originatorInfo is not supported');
  if (ed.length !== 3) {
    if (ed[3]?.tag === 0xa1) throw unsupported('CMS unprotectedAttrs are not supported');
    throw malformed('CMS EnvelopedData has unexpected elements');
  }
  const recipient = keyTransRecipient(constructedOf(ed[1], 0x31, 'recipientInfos'));
  return { ...recipient, ...encryptedContentInfo(ed[2]) };
}

function decryptFailed(message: string, cause?: unknown): TeegateError {
  return new TeegateError('CMS_DECRYPT_FAILED', message, cause === undefined ? undefined : { cause });
}

/**
 * Decrypt KMS CiphertextForRecipient with the enclave's ephemeral RSA private key: RSAES-OAEP
 * unwrap of the AES-256 content key, then AES-256-CBC with PKCS#7 padding check. The content key
 * buffer is zeroed after use. Throws CMS_MALFORMED, CMS_UNSUPPORTED or CMS_DECRYPT_FAILED.
 */
export function decryptEnvelopedData(ber: Uint8Array, privateKey: KeyObject, options: DecryptEnvelopedDataOptions = {}): Uint8Array {
  const parsed = parseEnvelopedData(ber);
  const allowed = options.keyEncryptionAlgorithms ?? ['RSAES_OAEP_SHA_256'];
  if (!allowed.includes(parsed.keyEncryption)) throw unsupported(`CMS key transport ${parsed.keyEncryption} is not allowed`);
  if (!(privateKey instanceof KeyObject) || privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw unsupported('CMS private key is not an RSA private key');
  }
  if (options.subjectKeyIdentifier !== undefined && !bytesEqual(options.subjectKeyIdentifier, parsed.subjectKeyIdentifier)) {
    throw decryptFailed('CMS recipient subjectKeyIdentifier is not the expected one');
  }
  const modulusBits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (parsed.encryptedKey.length !== Math.ceil(modulusBits / 8)) {
    throw decryptFailed(`CMS encryptedKey is ${parsed.encryptedKey.length} bytes, the RSA key has ${modulusBits} bits`);
  }

  let contentKey: Buffer | undefined;
  let head: Buffer | undefined;
  let tail: Buffer | undefined;
  try {
    try {
      contentKey = privateDecrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: parsed.keyEncryption === 'RSAES_OAEP_SHA_256' ? 'sha256' : 'sha1' },
        parsed.encryptedKey,
      );
    } catch (err) {
      throw decryptFailed('CMS content key does not decrypt with this RSA key', err);
    }
    if (contentKey.length !== AES_256_KEY_BYTES) throw decryptFailed(`CMS content key is ${contentKey.length} bytes, expected ${AES_256_KEY_BYTES}`);
    const decipher = createDecipheriv('aes-256-cbc', contentKey, parsed.iv);
    head = decipher.update(parsed.ciphertext);
    try {
      tail = decipher.final();
    } catch (err) {
      throw decryptFailed('CMS content does not decrypt (bad padding)', err);
    }
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  } finally {
    contentKey?.fill(0);
    head?.fill(0);
    tail?.fill(0);
  }
}
