/**
 * X.509 parsing and path validation on the real AWS Nitro certificate chains in shared/vectors/nitro.
 * Negative cases edit the real DER at offsets located by searching its bytes (or by a small DER walker
 * written here, independent of attestation/x509/der.ts). Nothing can be re-signed, so each mutated
 * certificate fails either at a structural check that runs before any signature (and the test expects
 * that structural code) or at the signature check (CERT_SIGNATURE_INVALID); the comment at each case
 * says which and why.
 */
import { errorCodeOrKind as codeOf, errorCodeOrKindAsync as asyncCodeOf } from '../support/error-code';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { concatBytes, fromHex, sha256, toHex } from '../../attestation/bytes';
import { type ErrorCode } from '../../attestation/errors';
import { parseCoseSign1 } from '../../attestation/cose/sign1';
import { parseNitroPayload, type NitroDocument } from '../../attestation/nitro/document';
import { verifyAttestation, verifyAttestationReport } from '../../attestation/nitro/verify';
import { AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from '../../attestation/nitro/aws-root';
import { parseCertificate } from '../../attestation/x509/certificate';
import { CertificateCache } from '../../attestation/x509/certificate-cache';
import { checkValidity, validatePath } from '../../attestation/x509/path';
import { derToPem, pemToDerList } from '../../attestation/x509/pem';
import { encodeCbor, decodeCbor, type CborEncodable } from '../../attestation/cbor';
import { awsRootPemFromVectors, buildCoseSign1, flipBit, indexOfBytes, parsedNitroVectors, validNitroVectors, type ParsedNitroVector } from '../support/nitro-vectors';



// ---- a minimal DER walker and writer, for building mutated certificates ----
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}
function tlvAt(b: Uint8Array, off: number): Tlv {
  const first = b[off + 1]!;
  let len = first;
  let hdr = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i]!;
    hdr += n;
  }
  return { tag: b[off]!, start: off, contentStart: off + hdr, end: off + hdr + len };
}
function kids(b: Uint8Array, node: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = node.contentStart; p < node.end; p = out[out.length - 1]!.end) out.push(tlvAt(b, p));
  return out;
}
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concatBytes(new Uint8Array([tag, ...len]), content);
}
const rawOf = (b: Uint8Array, t: Tlv): Uint8Array => b.subarray(t.start, t.end);

/** The three parts of a certificate and the fields of its tbsCertificate, as raw TLVs. */
function split(der: Uint8Array): { tbsFields: Uint8Array[]; sigAlg: Uint8Array; sigValue: Uint8Array } {
  const [tbs, sigAlg, sigValue] = kids(der, tlvAt(der, 0)) as [Tlv, Tlv, Tlv];
  return { tbsFields: kids(der, tbs).map((t) => rawOf(der, t)), sigAlg: rawOf(der, sigAlg), sigValue: rawOf(der, sigValue) };
}
function join(parts: { tbsFields: Uint8Array[]; sigAlg: Uint8Array; sigValue: Uint8Array }): Uint8Array {
  return tlv(0x30, concatBytes(tlv(0x30, concatBytes(...parts.tbsFields)), parts.sigAlg, parts.sigValue));
}

/** Replaces `from` by `to` (same length) at its first occurrence at or after `after`. */
function patch(der: Uint8Array, from: string, to: string, after = 0): Uint8Array {
  const needle = fromHex(from);
  const at = indexOfBytes(der, needle, after);
  if (at < 0) throw new Error(`${from} not found`);
  const out = der.slice();
  out.set(fromHex(to), at);
  return out;
}
/** Offset of an extension's OID (06 03 55 1d xx) in a certificate. */
function extensionAt(der: Uint8Array, oidLastByte: number): number {
  const at = indexOfBytes(der, new Uint8Array([0x06, 0x03, 0x55, 0x1d, oidLastByte]));
  if (at < 0) throw new Error(`extension 2.5.29.${oidLastByte} not found`);
  return at;
}
const BASIC_CONSTRAINTS = 0x13;
const KEY_USAGE = 0x0f;

// ---- the real chains ----
function documentOf(v: ParsedNitroVector): NitroDocument {
  return parseNitroPayload(parseCoseSign1(v.bytes).payload);
}
const ref = validNitroVectors()[0]!;
const refDoc = documentOf(ref);
const [rootDer, regionalDer, zonalDer, instanceDer] = refDoc.cabundle as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const leafDer = refDoc.certificate;
let pinned: ReadonlySet<string>;
beforeAll(async () => {
  pinned = new Set([toHex(await sha256(rootDer))]);
});
const path = (leaf: Uint8Array, bundle: readonly Uint8Array[], roots = pinned) => validatePath(leaf, bundle, roots, new CertificateCache());

describe('the pinned AWS Nitro Enclaves Root-G1', () => {
  it('matches the PEM shipped beside the vectors and its published SHA-256 fingerprint', async () => {
    const [fromVectors] = pemToDerList(awsRootPemFromVectors());
    const [builtIn] = pemToDerList(AWS_NITRO_ROOT_G1_PEM);
    expect(toHex(builtIn!)).toBe(toHex(fromVectors!));
    expect(toHex(await sha256(builtIn!))).toBe(AWS_NITRO_ROOT_G1_SHA256);
    expect(toHex(builtIn!)).toBe(toHex(rootDer));
    expect(pemToDerList(derToPem(builtIn!))).toEqual([builtIn]);
  });

  it('rejects PEM text without a CERTIFICATE block', () => {
    expect(codeOf(() => pemToDerList('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'))).toBe('INPUT_ENCODING_INVALID');
  });
});

describe.each(parsedNitroVectors().map((v) => [v.file, v] as const))('real certificates of %s', (_file, v) => {
  const doc = documentOf(v);
  const ders = [...doc.cabundle, doc.certificate];
  const certs = ders.map((d) => parseCertificate(d));

  it('parse, and agree with OpenSSL on subject, issuer and validity', () => {
    for (const [i, der] of ders.entries()) {
      const ossl = new X509Certificate(Buffer.from(der));
      const c = certs[i]!;
      expect(c.subject.split(', ').sort()).toEqual(ossl.subject.split('\n').sort());
      expect(c.issuer.split(', ').sort()).toEqual(ossl.issuer.split('\n').sort());
      expect(c.notBefore).toBe(Date.parse(ossl.validFrom));
      expect(c.notAfter).toBe(Date.parse(ossl.validTo));
      expect(c.serialNumberHex.replace(/^00/, '').toUpperCase()).toBe(ossl.serialNumber.replace(/^0+/, '').padStart(c.serialNumberHex.replace(/^00/, '').length, '0'));
      expect(c.signature).toHaveLength(96);
      if (i > 0) expect(toHex(c.issuerDer)).toBe(toHex(certs[i - 1]!.subjectDer));
    }
  });

  it('root is aws.nitro-enclaves, leaf is the enclave named by module_id', () => {
    expect(certs[0]!.subject).toBe('C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves');
    expect(certs[certs.length - 1]!.subject).toContain(`CN=${v.module_id}.`);
    expect(certs.map((c) => c.basicConstraints?.ca)).toEqual([true, true, true, true, false]);
    expect(certs.map((c) => c.basicConstraints?.pathLen)).toEqual([undefined, 2, 1, 0, undefined]);
  });

  it('validity matches MANIFEST leaf_cert_validity and chain_validity_window', () => {
    const iso = (s: string): number => Date.parse(s);
    const leaf = certs[certs.length - 1]!;
    expect([leaf.notBefore, leaf.notAfter]).toEqual(v.leaf_cert_validity.map(iso));
    const window = [Math.max(...certs.map((c) => c.notBefore)), Math.min(...certs.map((c) => c.notAfter))];
    expect(window).toEqual(v.chain_validity_window.map(iso));
    expect(codeOf(() => checkValidity(certs, window[0]!))).toBe('no error');
    expect(codeOf(() => checkValidity(certs, window[1]!))).toBe('no error');
    expect(codeOf(() => checkValidity(certs, window[0]! - 1))).toBe('CERT_NOT_YET_VALID');
    expect(codeOf(() => checkValidity(certs, window[1]! + 1))).toBe('CERT_EXPIRED');
  });

  it('validates to the pinned root', async () => {
    const p = await validatePath(doc.certificate, doc.cabundle, pinned, new CertificateCache());
    expect(p.chain).toHaveLength(5);
    expect(p.rootFingerprint).toBe(AWS_NITRO_ROOT_G1_SHA256);
    expect(p.leaf.subject).toBe(certs[4]!.subject);
  });
});

describe('mutated DER → exact codes from parseCertificate', () => {
  const parts = split(leafDer);
  const certContent = leafDer.subarray(tlvAt(leafDer, 0).contentStart);
  const rsaSpki = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }));
  const p256Spki = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }));
  const spkiIndex = parts.tbsFields.findIndex((f) => indexOfBytes(f, fromHex('2a8648ce3d0201')) >= 0);
  const withTbs = (fields: Uint8Array[]): Uint8Array => join({ ...parts, tbsFields: fields });
  const ecdsaSha384 = '06082a8648ce3d040303';
  const ecdsaSha256 = '06082a8648ce3d040302';
  const outerAlgAt = leafDer.length - parts.sigValue.length - parts.sigAlg.length;

  it('the rebuilt (unmutated) leaf is byte-identical, so the rebuilding itself changes nothing', () => {
    expect(toHex(join(parts))).toBe(toHex(leafDer));
    expect(spkiIndex).toBe(6);
  });

  it.each<[string, ErrorCode, () => Uint8Array]>([
    ['indefinite length (BER) on the outer SEQUENCE', 'CERT_MALFORMED', () => concatBytes(fromHex('3080'), certContent, fromHex('0000'))],
    ['non-minimal outer length (3 octets, leading zero)', 'CERT_MALFORMED', () => concatBytes(fromHex('308300'), leafDer.subarray(2))],
    ['non-minimal short length (81 03) on the version', 'CERT_MALFORMED', () => withTbs([fromHex('a08103020102'), ...parts.tbsFields.slice(1)])],
    ['high tag number', 'CERT_MALFORMED', () => withTbs([...parts.tbsFields.slice(0, 7), fromHex('bf1f00')])],
    ['extra trailing byte', 'CERT_MALFORMED', () => concatBytes(leafDer, fromHex('00'))],
    ['truncated by one byte', 'CERT_MALFORMED', () => leafDer.subarray(0, leafDer.length - 1)],
    ['outer signatureAlgorithm ecdsa-with-SHA256', 'CERT_ALG_UNSUPPORTED', () => patch(leafDer, ecdsaSha384, ecdsaSha256, outerAlgAt)],
    ['inner signature algorithm differs from the outer one', 'CERT_MALFORMED', () => patch(leafDer, ecdsaSha384, ecdsaSha256)],
    ['both algorithm fields ecdsa-with-SHA256', 'CERT_ALG_UNSUPPORTED', () => patch(patch(leafDer, ecdsaSha384, ecdsaSha256), ecdsaSha384, ecdsaSha256)],
    ['RSA-2048 subject key', 'CERT_ALG_UNSUPPORTED', () => withTbs(parts.tbsFields.map((f, i) => (i === spkiIndex ? rsaSpki : f)))],
    ['P-256 subject key', 'CERT_ALG_UNSUPPORTED', () => withTbs(parts.tbsFields.map((f, i) => (i === spkiIndex ? p256Spki : f)))],
    ['v1 certificate (no version field)', 'CERT_MALFORMED', () => withTbs(parts.tbsFields.slice(1))],
    ['v2 certificate', 'CERT_MALFORMED', () => withTbs([fromHex('a003020101'), ...parts.tbsFields.slice(1)])],
    ['issuerUniqueID present', 'CERT_MALFORMED', () => withTbs([...parts.tbsFields.slice(0, 7), fromHex('810200ff'), ...parts.tbsFields.slice(7)])],
    ['signature BIT STRING with 1 unused bit', 'CERT_MALFORMED', () => patch(leafDer, toHex(parts.sigValue.subarray(0, 4)), toHex(parts.sigValue.subarray(0, 3)) + '01', leafDer.length - parts.sigValue.length)],
    ['a duplicated serialNumber', 'CERT_MALFORMED', () => withTbs([parts.tbsFields[0]!, parts.tbsFields[1]!, ...parts.tbsFields.slice(1)])],
  ])('%s → %s', (_name, code, make) => {
    expect(codeOf(() => parseCertificate(make()))).toBe(code);
  });

  it('an impossible date (month 13) is malformed', () => {
    // notBefore is the first UTCTime: 17 0d YYMMDDHHMMSSZ; set MM to 13.
    const at = indexOfBytes(leafDer, fromHex('170d'));
    const bad = leafDer.slice();
    bad.set(new TextEncoder().encode('13'), at + 4);
    expect(codeOf(() => parseCertificate(bad))).toBe('CERT_MALFORMED');
  });

  // A structural failure in the leaf surfaces in the pipeline's chain step: certificates are parsed
  // there, before any signature is checked, so the code is the parser's, not CERT_SIGNATURE_INVALID.
  it.each<[string, ErrorCode, () => Uint8Array]>([
    ['trailing byte', 'CERT_MALFORMED', () => concatBytes(leafDer, fromHex('00'))],
    ['RSA key', 'CERT_ALG_UNSUPPORTED', () => withTbs(parts.tbsFields.map((f, i) => (i === spkiIndex ? rsaSpki : f)))],
    ['v1', 'CERT_MALFORMED', () => withTbs(parts.tbsFields.slice(1))],
  ])('leaf with %s in a whole document fails the chain step with %s', async (_name, code, make) => {
    const report = await verifyAttestationReport(documentWith(ref, { certificate: make() }), { at: ref.timestamp_ms + 1000 });
    expect(report.error?.code).toBe(code);
    expect(report.steps.map((s) => s.status)).toEqual(['passed', 'failed', 'skipped', 'skipped', 'skipped', 'skipped']);
  });
});

/** The document with payload fields replaced (re-encoded; the COSE signature is left as it was). */
function documentWith(v: ParsedNitroVector, changes: Record<string, CborEncodable>): Uint8Array {
  const s = parseCoseSign1(v.bytes);
  const map = decodeCbor(s.payload) as Map<string, CborEncodable>;
  for (const [k, x] of Object.entries(changes)) map.set(k, x);
  return buildCoseSign1(s.protectedHeader, encodeCbor(map), s.signature);
}

/**
 * Replaces `oldLength` bytes at `at` with `replacement` and re-encodes every enclosing TLV's length,
 * descending into OCTET STRINGs that wrap DER (extension values).
 */
function spliceDer(der: Uint8Array, at: number, oldLength: number, replacement: Uint8Array): Uint8Array {
  const rebuild = (node: Tlv): Uint8Array => {
    if (node.start === at && node.end === at + oldLength) return replacement;
    if (node.tag & 0x20) {
      const parts = kids(der, node).map((k) => (at >= k.start && at + oldLength <= k.end ? rebuild(k) : rawOf(der, k)));
      return tlv(node.tag, concatBytes(...parts));
    }
    return tlv(node.tag, rebuild(tlvAt(der, node.contentStart)));
  };
  return rebuild(tlvAt(der, 0));
}

/** The real leaf with basicConstraints {cA TRUE} instead of its empty SEQUENCE (cA FALSE by default). */
function leafWithCa(): Uint8Array {
  const ext = extensionAt(leafDer, BASIC_CONSTRAINTS);
  const at = indexOfBytes(leafDer, fromHex('04023000'), ext) + 2;
  return spliceDer(leafDer, at, 2, fromHex('30030101ff'));
}

/** The real leaf with `extra` (whole Extension TLVs) added after its keyUsage extension. */
function leafWithExtension(extra: Uint8Array): Uint8Array {
  const ext = tlvAt(leafDer, extensionAt(leafDer, KEY_USAGE) - 2);
  return spliceDer(leafDer, ext.start, ext.end - ext.start, concatBytes(rawOf(leafDer, ext), extra));
}

/** The real leaf with its basicConstraints value (an empty SEQUENCE) replaced by `value`. */
function leafWithBasicConstraints(value: string): Uint8Array {
  const at = indexOfBytes(leafDer, fromHex('04023000'), extensionAt(leafDer, BASIC_CONSTRAINTS)) + 2;
  return spliceDer(leafDer, at, 2, fromHex(value));
}

describe('extensions and keys a strict parser refuses (RFC 5280, DER)', () => {
  it.each<[string, ErrorCode, () => Uint8Array]>([
    ['a critical extension it does not know (nameConstraints)', 'CERT_CONSTRAINTS_INVALID', () => leafWithExtension(fromHex('300c0603551d1e0101ff04023000'))],
    ['an extension twice (keyUsage)', 'CERT_MALFORMED', () => {
      const ext = tlvAt(leafDer, extensionAt(leafDer, KEY_USAGE) - 2);
      return leafWithExtension(rawOf(leafDer, ext));
    }],
    ['basicConstraints {pathLen, cA} (out of order)', 'CERT_MALFORMED', () => leafWithBasicConstraints('30060201000101ff')],
    ['basicConstraints {TRUE, FALSE} (cA twice)', 'CERT_MALFORMED', () => leafWithBasicConstraints('30060101ff010100')],
    ['basicConstraints {1, 0} (pathLen twice)', 'CERT_MALFORMED', () => leafWithBasicConstraints('3006020101020100')],
    ['a key declared on another curve (secp521r1) with a P-384 point', 'CERT_ALG_UNSUPPORTED', () => patch(leafDer, '06052b81040022', '06052b81040023')],
  ])('%s → %s', (_name, code, make) => {
    expect(codeOf(() => parseCertificate(make()))).toBe(code);
  });

  it('the same extensions in their valid forms parse (the splicing itself is sound)', () => {
    expect(parseCertificate(leafWithExtension(fromHex('30090603551d1e04023000'))).subject).toBe(parseCertificate(leafDer).subject); // not critical: ignored
    expect(parseCertificate(leafWithBasicConstraints('30060101ff020101')).basicConstraints).toEqual({ ca: true, pathLen: 1 });
    expect(parseCertificate(leafWithBasicConstraints('3003020102')).basicConstraints).toEqual({ ca: false, pathLen: 2 });
  });

  it('the pinned root\'s own validity bounds the chain: an expired or not yet valid root anchors nothing', () => {
    const chain = [rootDer, regionalDer, zonalDer, instanceDer, leafDer].map((d) => parseCertificate(d));
    const at = ref.timestamp_ms;
    expect(() => checkValidity(chain, at)).not.toThrow();
    const [root, ...rest] = chain as [ReturnType<typeof parseCertificate>, ...ReturnType<typeof parseCertificate>[]];
    expect(codeOf(() => checkValidity([{ ...root, notAfter: at - 1 }, ...rest], at))).toBe('CERT_EXPIRED');
    expect(codeOf(() => checkValidity([{ ...root, notBefore: at + 1 }, ...rest], at))).toBe('CERT_NOT_YET_VALID');
  });
});

describe('path validation negatives', () => {
  // Constraints and name chaining are checked before signatures, so a certificate whose constraint
  // bytes were edited fails with CERT_CONSTRAINTS_INVALID even though its signature is now also bad.
  it('leaf with cA TRUE → CERT_CONSTRAINTS_INVALID', async () => {
    const leaf = leafWithCa();
    expect(parseCertificate(leafDer).basicConstraints).toEqual({ ca: false });
    // The splice itself is exact: putting the original bytes back gives the original certificate.
    const at = indexOfBytes(leafDer, fromHex('04023000'), extensionAt(leafDer, BASIC_CONSTRAINTS)) + 2;
    expect(toHex(spliceDer(leafDer, at, 2, fromHex('3000')))).toBe(toHex(leafDer));
    expect(parseCertificate(leaf).basicConstraints).toEqual({ ca: true });
    expect(await asyncCodeOf(path(leaf, refDoc.cabundle))).toBe('CERT_CONSTRAINTS_INVALID');
  });

  it('leaf without digitalSignature → CERT_CONSTRAINTS_INVALID', async () => {
    const leaf = patch(leafDer, '030206c0', '03020640', extensionAt(leafDer, KEY_USAGE));
    expect(await asyncCodeOf(path(leaf, refDoc.cabundle))).toBe('CERT_CONSTRAINTS_INVALID');
  });

  it('CA without keyCertSign → CERT_CONSTRAINTS_INVALID', async () => {
    const regional = patch(regionalDer, '03020186', '03020182', extensionAt(regionalDer, KEY_USAGE));
    expect(parseCertificate(regional).keyUsage).toBe(0x82);
    expect(await asyncCodeOf(path(leafDer, [rootDer, regional, zonalDer, instanceDer]))).toBe('CERT_CONSTRAINTS_INVALID');
  });

  it('intermediate with cA FALSE → CERT_CONSTRAINTS_INVALID', async () => {
    const zonal = patch(zonalDer, '0101ff020101', '010100020101', extensionAt(zonalDer, BASIC_CONSTRAINTS));
    expect(parseCertificate(zonal).basicConstraints).toEqual({ ca: false, pathLen: 1 });
    expect(await asyncCodeOf(path(leafDer, [rootDer, regionalDer, zonal, instanceDer]))).toBe('CERT_CONSTRAINTS_INVALID');
  });

  it('pathLen violated (zonal CA pathLen 1 → 0, one CA below it) → CERT_CONSTRAINTS_INVALID', async () => {
    const zonal = patch(zonalDer, '0101ff020101', '0101ff020100', extensionAt(zonalDer, BASIC_CONSTRAINTS));
    expect(parseCertificate(zonal).basicConstraints).toEqual({ ca: true, pathLen: 0 });
    expect(await asyncCodeOf(path(leafDer, [rootDer, regionalDer, zonal, instanceDer]))).toBe('CERT_CONSTRAINTS_INVALID');
  });

  it('the same edit at a place no constraint covers fails at the signature: CERT_SIGNATURE_INVALID', async () => {
    // One bit of the zonal certificate's serial number: still well-formed, still a CA, but the
    // regional CA's signature over it no longer verifies.
    const serial = kids(zonalDer, kids(zonalDer, tlvAt(zonalDer, 0))[0]!)[1]!;
    const zonal = flipBit(zonalDer, serial.end - 1, 0);
    expect(await asyncCodeOf(path(leafDer, [rootDer, regionalDer, zonal, instanceDer]))).toBe('CERT_SIGNATURE_INVALID');
    const leaf = flipBit(leafDer, leafDer.length - 10, 0); // inside s of the instance CA's signature on the leaf
    expect(await asyncCodeOf(path(leaf, refDoc.cabundle))).toBe('CERT_SIGNATURE_INVALID');
  });

  it('names not chaining (two intermediates swapped) → CHAIN_BROKEN', async () => {
    expect(await asyncCodeOf(path(leafDer, [rootDer, zonalDer, regionalDer, instanceDer]))).toBe('CHAIN_BROKEN');
  });

  it('an intermediate missing → CHAIN_BROKEN', async () => {
    expect(await asyncCodeOf(path(leafDer, [rootDer, regionalDer, instanceDer]))).toBe('CHAIN_BROKEN');
  });

  it('a leaf from another enclave → CHAIN_BROKEN', async () => {
    const other = documentOf(validNitroVectors()[1]!).certificate;
    expect(await asyncCodeOf(path(other, refDoc.cabundle))).toBe('CHAIN_BROKEN');
  });

  it('root not pinned → CHAIN_UNTRUSTED_ROOT', async () => {
    expect(await asyncCodeOf(path(leafDer, refDoc.cabundle, new Set([toHex(await sha256(regionalDer))])))).toBe('CHAIN_UNTRUSTED_ROOT');
    // A bundle that starts below the root: its first certificate is not the pinned one.
    expect(await asyncCodeOf(path(leafDer, [regionalDer, zonalDer, instanceDer]))).toBe('CHAIN_UNTRUSTED_ROOT');
    // One bit of the root changes its fingerprint.
    const root = flipBit(rootDer, 100, 0);
    expect(await asyncCodeOf(path(leafDer, [root, regionalDer, zonalDer, instanceDer]))).toBe('CHAIN_UNTRUSTED_ROOT');
  });

  it('root not pinned, through verifyAttestation with another trusted root → CHAIN_UNTRUSTED_ROOT', async () => {
    const code = await asyncCodeOf(verifyAttestation(ref.bytes, { at: ref.timestamp_ms + 1000, rootCertificates: [derToPem(regionalDer)] }));
    expect(code).toBe('CHAIN_UNTRUSTED_ROOT');
    expect(await asyncCodeOf(verifyAttestation(ref.bytes, { at: ref.timestamp_ms + 1000, rootCertificates: [rootDer] }))).toBe('no error');
    expect(await asyncCodeOf(verifyAttestation(ref.bytes, { at: ref.timestamp_ms + 1000, rootCertificates: [] }))).toBe('POLICY_INVALID');
  });

  it('empty cabundle → CHAIN_BROKEN from the path validator, DOCUMENT_SCHEMA_INVALID in a document', async () => {
    expect(await asyncCodeOf(path(leafDer, []))).toBe('CHAIN_BROKEN');
    const report = await verifyAttestationReport(documentWith(ref, { cabundle: [] }), { at: ref.timestamp_ms + 1000 });
    expect(report.error?.code).toBe('DOCUMENT_SCHEMA_INVALID');
  });

  it('a chain with an edited constraint inside a whole document fails the chain step, not the signature step', async () => {
    const leaf = leafWithCa();
    const report = await verifyAttestationReport(documentWith(ref, { certificate: leaf }), { at: ref.timestamp_ms + 1000 });
    expect(report.error?.code).toBe('CERT_CONSTRAINTS_INVALID');
    expect(report.steps[1]).toMatchObject({ step: 'chain', status: 'failed', code: 'CERT_CONSTRAINTS_INVALID' });
  });
});

describe('CertificateCache', () => {
  const at = ref.timestamp_ms + 1000;

  it('verifying the same document twice with a shared cache gives the same result, with fewer signature checks', async () => {
    const cache = new CertificateCache();
    const verifySpy = jest.spyOn(globalThis.crypto.subtle, 'verify');
    try {
      const first = await verifyAttestation(ref.bytes, { at, cache });
      const firstCalls = verifySpy.mock.calls.length;
      const second = await verifyAttestation(ref.bytes, { at, cache });
      const secondCalls = verifySpy.mock.calls.length - firstCalls;
      expect(second).toEqual(first);
      // 4 certificate signatures + 1 COSE signature the first time; only the COSE one the second.
      expect(firstCalls).toBe(5);
      expect(secondCalls).toBe(1);
    } finally {
      verifySpy.mockRestore();
    }
  });

  it('a signature remembered as verified under one issuer does not count under another (even one of the same name)', () => {
    const cache = new CertificateCache();
    const [zonal, regional, root] = [zonalDer, regionalDer, rootDer].map((d) => cache.parse(d)) as [ReturnType<typeof parseCertificate>, ReturnType<typeof parseCertificate>, ReturnType<typeof parseCertificate>];
    expect(cache.wasVerified(zonal, regional)).toBe(false);
    cache.markVerified(zonal, regional);
    expect(cache.wasVerified(zonal, regional)).toBe(true);
    expect(cache.wasVerified(zonal, root)).toBe(false);
    expect(cache.wasVerified(zonal, { ...regional, signature: root.signature })).toBe(false);
  });

  it('a cached chain still fails with CERT_EXPIRED at a later time', async () => {
    const cache = new CertificateCache();
    await verifyAttestation(ref.bytes, { at, cache });
    const later = Date.parse(ref.chain_validity_window[1]) + 1000;
    expect(await asyncCodeOf(verifyAttestation(ref.bytes, { at: later, cache }))).toBe('CERT_EXPIRED');
    expect(await asyncCodeOf(verifyAttestation(ref.bytes, { at, cache }))).toBe('no error');
  });

  it('a document whose leaf differs by one byte misses the cache and fails its signature check', async () => {
    const cache = new CertificateCache();
    await verifyAttestation(ref.bytes, { at, cache });
    // One byte of the serial number: the last 104 bytes (the cache's lookup id) are the same, so only
    // the full-DER comparison tells the two apart.
    const serial = kids(leafDer, kids(leafDer, tlvAt(leafDer, 0))[0]!)[1]!;
    const leaf = flipBit(leafDer, serial.end - 1, 0);
    expect(toHex(leaf.subarray(leaf.length - 104))).toBe(toHex(leafDer.subarray(leafDer.length - 104)));
    const before = cache.parse(leafDer);
    expect(cache.parse(leaf)).not.toBe(before);
    expect(toHex(cache.parse(leaf).der)).toBe(toHex(leaf));
    expect(await asyncCodeOf(verifyAttestation(documentWith(ref, { certificate: leaf }), { at, cache }))).toBe('CERT_SIGNATURE_INVALID');
    expect(await asyncCodeOf(verifyAttestation(ref.bytes, { at, cache }))).toBe('no error');
  });

  it('parse returns the same object for the same DER (a hit)', () => {
    const cache = new CertificateCache();
    expect(cache.parse(leafDer)).toBe(cache.parse(leafDer.slice()));
  });

  it('evicts the oldest entry beyond maxEntries', () => {
    const cache = new CertificateCache(2);
    const a = cache.parse(rootDer);
    cache.parse(regionalDer);
    cache.parse(zonalDer);
    expect(cache.parse(rootDer)).not.toBe(a);
  });
});
