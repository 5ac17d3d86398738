/**
 * Builds X.509 v3 certificates (RFC 5280) signed with ECDSA P-384 / SHA-384 through WebCrypto, in
 * the shape of the AWS Nitro Enclaves PKI: names of PrintableString country and UTF8String other
 * attributes, basicConstraints always critical, keyUsage critical unless told otherwise (AWS leaf
 * certificates carry it non-critical), optional subject and authority key identifiers.
 */
import { bufferSource, webcrypto } from '../bytes';
import { TeegateError } from '../errors';
import { OID } from '../x509/certificate';
import {
  derBitString,
  derBoolean,
  derContext,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derPrintableString,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
} from '../x509/der-writer';

export type NameAttributeType = 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN';

export interface NameAttribute {
  readonly type: NameAttributeType;
  readonly value: string;
}

/** RFC 5280 §4.2.1.3 bit numbers. */
export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

export interface CertificateSpec {
  /** Positive serial number, big-endian magnitude (at most 20 octets). */
  readonly serialNumber: Uint8Array;
  /** The issuer's Name: attributes, or the DER of the issuer certificate's subject (copied byte for byte). */
  readonly issuer: readonly NameAttribute[] | Uint8Array;
  readonly subject: readonly NameAttribute[];
  /** Milliseconds since the epoch; written at whole seconds (truncated). */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The subject's P-384 public key. */
  readonly subjectPublicKey: CryptoKey;
  /** The issuer's P-384 private key (the subject's own for a self-signed root). */
  readonly issuerPrivateKey: CryptoKey;
  /** cA and pathLenConstraint; `{ ca: false }` is written as an empty SEQUENCE, as AWS does. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen?: number };
  readonly keyUsage: readonly KeyUsageName[];
  /** Default true. */
  readonly keyUsageCritical?: boolean;
  /** Add a subjectKeyIdentifier (SHA-1 of the subject key, RFC 5280 §4.2.1.2 method 1). */
  readonly subjectKeyIdentifier?: boolean;
  /** Add an authorityKeyIdentifier with this keyIdentifier (the issuer's SKI). */
  readonly authorityKeyIdentifier?: Uint8Array;
}

const ATTRIBUTE_OIDS: Record<NameAttributeType, string> = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
};

const SIGN = { name: 'ECDSA', hash: 'SHA-384' } as const;
const P384_COORDINATE = 48;

function specError(message: string): never {
  throw new TeegateError('INTERNAL', `certificate builder: ${message}`);
}

/** Name: one AttributeTypeAndValue per RDN, in the order given. */
export function encodeName(attributes: readonly NameAttribute[]): Uint8Array {
  return derSequence(
    ...attributes.map((a) =>
      derSet(derSequence(derOid(ATTRIBUTE_OIDS[a.type]), a.type === 'C' ? derPrintableString(a.value) : derUtf8String(a.value))),
    ),
  );
}

/** WebCrypto's raw r||s (96 bytes for P-384) to DER ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER }. */
export function ecdsaRawToDer(raw: Uint8Array, size = P384_COORDINATE): Uint8Array {
  if (raw.length !== size * 2) specError(`ECDSA signature must be ${size * 2} bytes, got ${raw.length}`);
  // derInteger drops leading zero octets and adds a sign octet where the high bit is set.
  return derSequence(derInteger(raw.subarray(0, size)), derInteger(raw.subarray(size)));
}

export async function exportSpki(publicKey: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto().exportKey('spki', publicKey));
}

/** SHA-1 of the subjectPublicKey BIT STRING contents (no unused-bits octet): RFC 5280 §4.2.1.2 (1). */
export async function keyIdentifier(publicKey: CryptoKey): Promise<Uint8Array> {
  const raw = new Uint8Array(await webcrypto().exportKey('raw', publicKey));
  return new Uint8Array(await webcrypto().digest('SHA-1', bufferSource(raw)));
}

/** ECDSA P-384 / SHA-384 signature, raw r||s (96 bytes), as COSE ES384 wants it. */
export async function signP384Raw(privateKey: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto().sign(SIGN, privateKey, bufferSource(data)));
}

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? derSequence(derOid(oid), derBoolean(true), derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));
}

async function extensions(spec: CertificateSpec): Promise<Uint8Array> {
  const { ca, pathLen } = spec.basicConstraints;
  if (pathLen !== undefined && (!ca || !Number.isInteger(pathLen) || pathLen < 0 || pathLen > 255)) {
    specError('pathLen needs a CA and a value in 0..255');
  }
  const bc = ca ? derSequence(derBoolean(true), ...(pathLen !== undefined ? [derInteger(pathLen)] : [])) : derSequence();
  const list = [
    extension(OID.basicConstraints, true, bc),
    extension(OID.keyUsage, spec.keyUsageCritical ?? true, derNamedBits(spec.keyUsage.map((k) => KEY_USAGE_BITS[k]))),
  ];
  if (spec.subjectKeyIdentifier) {
    list.push(extension(OID.subjectKeyIdentifier, false, derOctetString(await keyIdentifier(spec.subjectPublicKey))));
  }
  if (spec.authorityKeyIdentifier) {
    list.push(extension(OID.authorityKeyIdentifier, false, derSequence(derContext(0, spec.authorityKeyIdentifier, false))));
  }
  return derContext(3, derSequence(...list));
}

/** Builds and signs one certificate; returns its DER. */
export async function buildCertificate(spec: CertificateSpec): Promise<Uint8Array> {
  if (spec.serialNumber.length === 0 || spec.serialNumber.length > 20 || spec.serialNumber.every((b) => b === 0)) {
    specError('serial number must be 1..20 octets and positive');
  }
  if (!(spec.notBefore <= spec.notAfter)) specError('notBefore is after notAfter');
  if (spec.keyUsage.length === 0) specError('keyUsage must name at least one usage');
  const signatureAlgorithm = derSequence(derOid(OID.ecdsaWithSHA384));
  const tbs = derSequence(
    derContext(0, derInteger(2)),
    derInteger(spec.serialNumber),
    signatureAlgorithm,
    spec.issuer instanceof Uint8Array ? spec.issuer : encodeName(spec.issuer),
    derSequence(derTime(spec.notBefore), derTime(spec.notAfter)),
    encodeName(spec.subject),
    await exportSpki(spec.subjectPublicKey),
    await extensions(spec),
  );
  const signature = ecdsaRawToDer(await signP384Raw(spec.issuerPrivateKey, tbs));
  return derSequence(tbs, signatureAlgorithm, derBitString(signature));
}

/** A fresh P-384 ECDSA key pair; `extractable` covers the private key (CA keys are exported). */
export async function generateP384KeyPair(extractable: boolean): Promise<CryptoKeyPair> {
  return webcrypto().generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, extractable, ['sign', 'verify']);
}

/** Random positive serial number of `length` octets (high bit clear, first octet non-zero). */
export function randomSerial(length = 16): Uint8Array {
  const serial = new Uint8Array(length);
  globalThis.crypto.getRandomValues(serial);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}
