/**
 * X.509 v3 certificate (RFC 5280) reduced to what Nitro path validation needs, parsed strictly from
 * DER. Only ECDSA with SHA-384 signatures and P-384 keys are accepted: that is all the AWS Nitro PKI
 * (and the dev attester) uses.
 */
import { TeegateError } from '../errors';
import { TAG, children, content, expectTlv, oidToString, raw, readTlv, timeToMillis, unsignedInteger, type DerNode } from './der';

export const OID = {
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const;

const KNOWN_CRITICAL = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage]);

const NAME_ATTRIBUTES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};

export const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

export interface Certificate {
  /** The whole DER, as received. */
  readonly der: Uint8Array;
  /** The signed part, as received. */
  readonly tbs: Uint8Array;
  /** Raw r||s of the issuer's signature (96 bytes). */
  readonly signature: Uint8Array;
  readonly serialNumberHex: string;
  /** DER of the issuer and subject Names, compared byte for byte when chaining. */
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** RFC 4514-style rendering for reports. */
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The SubjectPublicKeyInfo DER (a P-384 key). */
  readonly spki: Uint8Array;
  /** The key as an uncompressed P-384 point (0x04 || x || y, 97 bytes). */
  readonly publicKeyPoint: Uint8Array;
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** First byte of the keyUsage bits (digitalSignature 0x80 ... cRLSign 0x02), if present. */
  readonly keyUsage?: number;
}

function malformed(message: string): never {
  throw new TeegateError('CERT_MALFORMED', message);
}

function algorithmOid(bytes: Uint8Array, node: DerNode): string {
  const parts = children(bytes, node);
  if (parts.length < 1 || parts.length > 2 || parts[0]!.tag !== TAG.OID) malformed('bad AlgorithmIdentifier');
  return oidToString(content(bytes, parts[0]!));
}

function renderName(bytes: Uint8Array, node: DerNode): string {
  const out: string[] = [];
  for (const rdn of children(bytes, node)) {
    if (rdn.tag !== TAG.SET) malformed('bad RelativeDistinguishedName');
    for (const atv of children(bytes, rdn)) {
      const [type, value] = children(bytes, atv);
      if (!type || !value || type.tag !== TAG.OID) malformed('bad AttributeTypeAndValue');
      const oid = oidToString(content(bytes, type));
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(content(bytes, value));
      } catch {
        text = '#binary';
      }
      out.push(`${NAME_ATTRIBUTES[oid] ?? oid}=${text}`);
    }
  }
  return out.join(', ');
}

/** DER ECDSA-Sig-Value SEQUENCE {r, s} to raw r||s of 48 bytes each. */
export function ecdsaDerToRaw(sig: Uint8Array, size = 48): Uint8Array {
  const seq = readTlv(sig, 0);
  if (seq.tag !== TAG.SEQUENCE || seq.end !== sig.length) malformed('bad ECDSA signature encoding');
  const parts = children(sig, seq);
  if (parts.length !== 2) malformed('ECDSA signature must have r and s');
  const out = new Uint8Array(size * 2);
  parts.forEach((p, i) => {
    const v = unsignedInteger(sig, p);
    if (v.length > size) malformed('ECDSA signature component too long');
    out.set(v, size * (i + 1) - v.length);
  });
  return out;
}

function parseExtensions(bytes: Uint8Array, node: DerNode): Pick<Certificate, 'basicConstraints' | 'keyUsage'> {
  const result: { basicConstraints?: Certificate['basicConstraints']; keyUsage?: number } = {};
  const seen = new Set<string>();
  const [exts] = children(bytes, node);
  if (!exts || exts.tag !== TAG.SEQUENCE) malformed('bad extensions');
  for (const ext of children(bytes, exts)) {
    const parts = children(bytes, ext);
    if (parts.length < 2 || parts.length > 3 || parts[0]!.tag !== TAG.OID) malformed('bad Extension');
    const oid = oidToString(content(bytes, parts[0]!));
    if (seen.has(oid)) malformed(`extension ${oid} appears twice`);
    seen.add(oid);
    let critical = false;
    if (parts.length === 3) {
      const b = parts[1]!;
      if (b.tag !== TAG.BOOLEAN || b.end - b.contentStart !== 1) malformed('bad critical flag');
      critical = bytes[b.contentStart] === 0xff;
      if (!critical) malformed('critical flag FALSE must be omitted in DER');
    }
    const valueNode = parts[parts.length - 1]!;
    if (valueNode.tag !== TAG.OCTET_STRING) malformed('extension value must be an OCTET STRING');
    const v = content(bytes, valueNode);
    if (oid === OID.basicConstraints) {
      const seq = readTlv(v, 0);
      if (seq.tag !== TAG.SEQUENCE || seq.end !== v.length) malformed('bad basicConstraints');
      // SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }: each at most
      // once and in that order; anything else would let two parsers read different constraints.
      let ca = false;
      let pathLen: number | undefined;
      const items = children(v, seq);
      let next = 0;
      if (items[next]?.tag === TAG.BOOLEAN) {
        const item = items[next++]!;
        // AWS leaf certificates encode cA FALSE explicitly (DER would omit the default): accept it.
        const flag = v[item.contentStart];
        if (item.end - item.contentStart !== 1 || (flag !== 0xff && flag !== 0x00)) malformed('bad cA flag');
        ca = flag === 0xff;
      }
      if (items[next]?.tag === TAG.INTEGER) {
        const n = unsignedInteger(v, items[next++]!);
        if (n.length > 2) malformed('pathLenConstraint too large');
        pathLen = n.reduce((acc, b) => acc * 256 + b, 0);
      }
      if (next !== items.length) malformed('bad basicConstraints element');
      result.basicConstraints = pathLen === undefined ? { ca } : { ca, pathLen };
    } else if (oid === OID.keyUsage) {
      const bs = readTlv(v, 0);
      if (bs.tag !== TAG.BIT_STRING || bs.end !== v.length || bs.end - bs.contentStart < 2) malformed('bad keyUsage');
      result.keyUsage = v[bs.contentStart + 1]!;
    } else if (critical && !KNOWN_CRITICAL.has(oid)) {
      throw new TeegateError('CERT_CONSTRAINTS_INVALID', `unrecognised critical extension ${oid}`);
    }
  }
  return result;
}

export function parseCertificate(der: Uint8Array): Certificate {
  const cert = readTlv(der, 0);
  if (cert.tag !== TAG.SEQUENCE || cert.end !== der.length) malformed('certificate is not one DER SEQUENCE');
  const top = children(der, cert);
  if (top.length !== 3) malformed('certificate must have tbsCertificate, signatureAlgorithm, signatureValue');
  const [tbsNode, sigAlgNode, sigNode] = top as [DerNode, DerNode, DerNode];
  if (tbsNode.tag !== TAG.SEQUENCE || sigAlgNode.tag !== TAG.SEQUENCE || sigNode.tag !== TAG.BIT_STRING) {
    malformed('bad certificate structure');
  }
  const sigAlg = algorithmOid(der, sigAlgNode);
  if (sigAlg !== OID.ecdsaWithSHA384) {
    throw new TeegateError('CERT_ALG_UNSUPPORTED', `signature algorithm ${sigAlg} is not ecdsa-with-SHA384`);
  }
  const sigBits = content(der, sigNode);
  if (sigBits.length < 2 || sigBits[0] !== 0) malformed('signature BIT STRING must have 0 unused bits');
  const signature = ecdsaDerToRaw(sigBits.subarray(1));

  const f = children(der, tbsNode);
  let i = 0;
  const version = f[i];
  if (!version || version.tag !== 0xa0) malformed('only X.509 v3 certificates are accepted');
  const vInt = expectTlv(der, version.contentStart, version.end, TAG.INTEGER, 'version');
  if (vInt.end !== version.end || vInt.end - vInt.contentStart !== 1 || der[vInt.contentStart] !== 2) {
    malformed('only X.509 v3 certificates are accepted');
  }
  i++;
  const serial = f[i++];
  // RFC 5280: at most 20 octets of value; a positive 20-octet value needs a 21st (sign) octet in DER.
  if (!serial || serial.tag !== TAG.INTEGER || serial.end - serial.contentStart > 21) malformed('bad serialNumber');
  const innerAlg = f[i++];
  if (!innerAlg || innerAlg.tag !== TAG.SEQUENCE || algorithmOid(der, innerAlg) !== sigAlg) {
    malformed('tbsCertificate signature algorithm differs from signatureAlgorithm');
  }
  const issuer = f[i++];
  const validity = f[i++];
  const subject = f[i++];
  const spki = f[i++];
  if (!issuer || !validity || !subject || !spki) malformed('tbsCertificate is missing fields');
  if (issuer.tag !== TAG.SEQUENCE || subject.tag !== TAG.SEQUENCE || validity.tag !== TAG.SEQUENCE || spki.tag !== TAG.SEQUENCE) {
    malformed('bad tbsCertificate field types');
  }
  const times = children(der, validity);
  if (times.length !== 2) malformed('bad validity');
  const notBefore = timeToMillis(der, times[0]!);
  const notAfter = timeToMillis(der, times[1]!);

  const [keyAlg, keyBits] = children(der, spki);
  if (!keyAlg || !keyBits || keyAlg.tag !== TAG.SEQUENCE || keyBits.tag !== TAG.BIT_STRING) malformed('bad SubjectPublicKeyInfo');
  const keyAlgParts = children(der, keyAlg);
  const keyOid = keyAlgParts[0] && keyAlgParts[0].tag === TAG.OID ? oidToString(content(der, keyAlgParts[0])) : '';
  const curve = keyAlgParts[1] && keyAlgParts[1].tag === TAG.OID ? oidToString(content(der, keyAlgParts[1])) : '';
  if (keyOid !== OID.ecPublicKey || curve !== OID.secp384r1) {
    throw new TeegateError('CERT_ALG_UNSUPPORTED', 'certificate key is not an EC P-384 key');
  }

  const keyBitsContent = content(der, keyBits);
  if (keyBitsContent.length !== 98 || keyBitsContent[0] !== 0 || keyBitsContent[1] !== 0x04) {
    throw new TeegateError('CERT_ALG_UNSUPPORTED', 'certificate key is not an uncompressed P-384 point');
  }
  const publicKeyPoint = keyBitsContent.subarray(1);

  let extensions: Pick<Certificate, 'basicConstraints' | 'keyUsage'> = {};
  for (; i < f.length; i++) {
    const node = f[i]!;
    if (node.tag === 0x81 || node.tag === 0x82) malformed('issuer/subject unique identifiers are not accepted');
    if (node.tag !== 0xa3 || i !== f.length - 1) malformed('unexpected field in tbsCertificate');
    extensions = parseExtensions(der, node);
  }

  return {
    der,
    tbs: raw(der, tbsNode),
    signature,
    serialNumberHex: Array.from(content(der, serial), (b) => b.toString(16).padStart(2, '0')).join(''),
    issuerDer: raw(der, issuer),
    subjectDer: raw(der, subject),
    subject: renderName(der, subject),
    issuer: renderName(der, issuer),
    notBefore,
    notAfter,
    spki: raw(der, spki),
    publicKeyPoint,
    ...extensions,
  };
}
