/**
 * COSE_Sign1 (RFC 9052 §4.2) as AWS Nitro uses it, on the real documents in shared/vectors/nitro and
 * on COSE structures rebuilt around their real payloads and signatures.
 */
import { errorCodeOrKind as codeOf } from '../support/error-code';
import { X509Certificate, verify as nodeVerify } from 'node:crypto';
import { parseCoseSign1, sigStructure, verifyCoseSign1, MAX_COSE_BYTES } from '../../attestation/cose/sign1';
import { decodeCbor, encodeCbor, type CborEncodable, type CborKey } from '../../attestation/cbor';
import { isTeegateError } from '../../attestation/errors';
import { concatBytes, fromHex, toHex, utf8 } from '../../attestation/bytes';
import { importP384PublicKey } from '../../attestation/crypto/ecdsa-p384';
import { parseNitroPayload } from '../../attestation/nitro/document';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { buildCoseSign1, documentLayout, flipBit, parsedNitroVector, parsedNitroVectors, validNitroVectors } from '../support/nitro-vectors';


const real = parsedNitroVector('anchorage');
const layout = documentLayout(real.bytes);
const ES384 = fromHex('a1013822');
const cose = (items: CborEncodable[]): Uint8Array => encodeCbor(items);

describe('parseCoseSign1 on the real documents', () => {
  it.each(parsedNitroVectors().map((v) => [v.file, v] as const))('%s parses untagged, ES384, 96-byte signature', (_f, v) => {
    const s = parseCoseSign1(v.bytes);
    const l = documentLayout(v.bytes);
    expect(s.tagged).toBe(false);
    expect(toHex(s.protectedHeader)).toBe('a1013822');
    expect(s.signature).toHaveLength(96);
    expect(toHex(s.payload)).toBe(toHex(l.payload));
    expect(toHex(s.signature)).toBe(toHex(l.signature));
  });

  it('parses the same document tagged 18 and untagged, and both verify', async () => {
    const tagged = concatBytes(new Uint8Array([0xd2]), real.bytes);
    const s = parseCoseSign1(tagged);
    expect(s.tagged).toBe(true);
    expect(toHex(s.payload)).toBe(toHex(parseCoseSign1(real.bytes).payload));
    // The tag is not part of Sig_structure: the tagged form verifies under the same signature.
    const at = real.timestamp_ms + 1000;
    const a = await verifyAttestation(tagged, { at });
    const b = await verifyAttestation(real.bytes, { at });
    expect(a.moduleId).toBe(b.moduleId);
    expect(a.documentSha384).not.toBe(b.documentSha384);
  });

  it.each<[string, string]>([
    ['tag 17 (COSE_Mac0)', 'd1'],
    ['tag 98 (COSE_Sign)', 'd862'],
    ['tag 0', 'c0'],
    ['tag 55799 (self-described CBOR)', 'd9d9f7'],
  ])('rejects %s with CBOR_UNSUPPORTED', (_name, prefix) => {
    expect(codeOf(() => parseCoseSign1(concatBytes(fromHex(prefix), real.bytes)))).toBe('CBOR_UNSUPPORTED');
  });

  it('rejects tag 18 inside tag 18 as malformed COSE', () => {
    expect(codeOf(() => parseCoseSign1(concatBytes(fromHex('d2d2'), real.bytes)))).toBe('COSE_MALFORMED');
  });

  it('rejects input above MAX_COSE_BYTES before decoding', () => {
    expect(codeOf(() => parseCoseSign1(new Uint8Array(MAX_COSE_BYTES + 1)))).toBe('CBOR_LIMIT_EXCEEDED');
  });
});

describe('protected header must be exactly {1: -35}', () => {
  it.each<[string, string]>([
    ['{1: -7} (ES256)', 'a10126'],
    ['{1: -36} (ES512)', 'a1013823'],
    ['{1: -35, 4: h\'00\'} (extra kid)', 'a20138220441 00'],
    ['{4: h\'00\', 1: -35} (extra kid first)', 'a20441000138 22'],
    ['{} (no alg)', 'a0'],
    ['empty bstr', ''],
    ['{1: -35} with -35 in a two-byte form', 'a1013900 22'],
    ['{1: -35} with key 1 in a one-byte form', 'a118013822'],
    ['{1: -35} as an indefinite map', 'bf013822ff'],
    ['{1: "ES384"} (text alg)', 'a1016545533338 34'],
    ['not a map: [1, -35]', '82013822'],
    ['not a map: integer', '01'],
    ['not CBOR: truncated map', 'a101'],
    ['not CBOR: trailing byte', 'a101382200'],
  ])('%s → COSE_ALG_UNSUPPORTED', (_name, hex) => {
    const doc = cose([fromHex(hex.replace(/\s+/g, '')), new Map(), layout.payload, layout.signature]);
    expect(codeOf(() => parseCoseSign1(doc))).toBe('COSE_ALG_UNSUPPORTED');
  });

  it('the rebuilt structure with the real header parses (the cases above differ only in the header)', () => {
    const doc = buildCoseSign1(ES384, layout.payload, layout.signature);
    expect(toHex(doc)).toBe(toHex(real.bytes));
    expect(codeOf(() => parseCoseSign1(doc))).toBe('no error');
  });
});

describe('COSE_Sign1 structure', () => {
  const p = layout.payload;
  const sig = layout.signature;
  it.each<[string, CborEncodable]>([
    ['an array of 3', [ES384, new Map(), p]],
    ['an array of 5', [ES384, new Map(), p, sig, sig]],
    ['an empty array', []],
    ['a map', new Map<number, CborEncodable>([[1, ES384]])],
    ['a byte string', p],
    ['protected header as a map, not a bstr', [new Map([[1, -35]]), new Map(), p, sig]],
    ['unprotected header with a kid', [ES384, new Map([[4, fromHex('00')]]), p, sig]],
    ['unprotected header repeating alg', [ES384, new Map([[1, -35]]), p, sig]],
    ['unprotected header as a bstr', [ES384, new Uint8Array(0), p, sig]],
    ['detached (null) payload', [ES384, new Map(), null, sig]],
    ['payload as text', [ES384, new Map(), 'payload', sig]],
    ['payload as a map', [ES384, new Map(), new Map(), sig]],
    ['signature as an array', [ES384, new Map(), p, [sig]]],
    ['64-byte signature', [ES384, new Map(), p, sig.subarray(0, 64)]],
    ['95-byte signature', [ES384, new Map(), p, sig.subarray(0, 95)]],
    ['97-byte signature', [ES384, new Map(), p, concatBytes(sig, new Uint8Array(1))]],
    ['empty signature', [ES384, new Map(), p, new Uint8Array(0)]],
  ])('%s → COSE_MALFORMED', (_name, value) => {
    expect(codeOf(() => parseCoseSign1(encodeCbor(value)))).toBe('COSE_MALFORMED');
  });

  it('checks the header before the signature length (a bad alg with a 64-byte signature is an alg error)', () => {
    expect(codeOf(() => parseCoseSign1(cose([fromHex('a10126'), new Map(), p, sig.subarray(0, 64)])))).toBe('COSE_ALG_UNSUPPORTED');
  });

  it('rejects a COSE_Sign1 with trailing bytes', () => {
    expect(codeOf(() => parseCoseSign1(concatBytes(real.bytes, new Uint8Array([0]))))).toBe('CBOR_TRAILING_BYTES');
  });
});

describe('Sig_structure', () => {
  /** RFC 9052 §4.4 built by hand: array(4) "Signature1" bstr(protected) bstr(external_aad = '') bstr(payload). */
  function sigStructureByHand(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
    const bstrHead = (n: number): number[] =>
      n < 24 ? [0x40 | n] : n < 256 ? [0x58, n] : n < 65536 ? [0x59, n >> 8, n & 0xff] : [0x5a, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    return concatBytes(
      new Uint8Array([0x84, 0x6a]),
      utf8('Signature1'),
      new Uint8Array(bstrHead(protectedHeader.length)),
      protectedHeader,
      new Uint8Array([0x40]),
      new Uint8Array(bstrHead(payload.length)),
      payload,
    );
  }

  it.each(parsedNitroVectors().map((v) => [v.file, v] as const))('%s: equals the hand-built bytes', (_f, v) => {
    const s = parseCoseSign1(v.bytes);
    const l = documentLayout(v.bytes);
    const expected = sigStructureByHand(l.protectedHeader, l.payload);
    expect(toHex(sigStructure(s))).toBe(toHex(expected));
    expect(sigStructure(s)).toHaveLength(1 + 11 + 5 + 1 + 3 + l.payload.length);
  });

  // Independent check of the whole construction: node's OpenSSL verifies the hand-built Sig_structure
  // with the leaf key exactly when MANIFEST says the COSE signature is good, and so does the library.
  it.each(parsedNitroVectors().map((v) => [v.file, v] as const))('%s: signature verdict agrees with OpenSSL and MANIFEST', async (_f, v) => {
    const s = parseCoseSign1(v.bytes);
    const doc = parseNitroPayload(s.payload);
    const leaf = new X509Certificate(Buffer.from(doc.certificate));
    const byHand = sigStructureByHand(s.protectedHeader, s.payload);
    const openssl = nodeVerify('sha384', byHand, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, s.signature);
    const spki = new Uint8Array(leaf.publicKey.export({ type: 'spki', format: 'der' }));
    const ours = await verifyCoseSign1(s, await importP384PublicKey(spki));
    expect({ openssl, ours }).toEqual({ openssl: v.cose_sig_ok, ours: v.cose_sig_ok });
  });

  it('does not verify when the payload changes by one bit', async () => {
    const v = validNitroVectors()[0]!;
    const s = parseCoseSign1(v.bytes);
    const leaf = new X509Certificate(Buffer.from(parseNitroPayload(s.payload).certificate));
    const key = await importP384PublicKey(new Uint8Array(leaf.publicKey.export({ type: 'spki', format: 'der' })));
    const payload = flipBit(s.payload, s.payload.length - 1, 0);
    expect(await verifyCoseSign1({ ...s, payload }, key)).toBe(false);
    expect(await verifyCoseSign1(s, key)).toBe(true);
  });
});

describe('Nitro payload schema (parseNitroPayload) on a real AWS payload with one field changed', () => {
  const real = (): Map<CborKey, CborEncodable> => decodeCbor(parseCoseSign1(validNitroVectors()[0]!.bytes).payload) as Map<CborKey, CborEncodable>;
  const edited = (edit: (m: Map<CborKey, CborEncodable>) => void): Uint8Array => {
    const m = real();
    edit(m);
    return encodeCbor(m);
  };
  const refusal = (payload: Uint8Array): { code: string; message: string } => {
    try {
      parseNitroPayload(payload);
    } catch (err) {
      if (!isTeegateError(err)) throw err;
      return { code: err.code, message: err.message };
    }
    return { code: 'no error', message: '' };
  };

  it('parses the unedited payload re-encoded (the control)', () => {
    expect(parseNitroPayload(edited(() => undefined)).moduleId).toBe(validNitroVectors()[0]!.module_id);
  });

  const pcrs = (m: Map<CborKey, CborEncodable>) => m.get('pcrs') as Map<CborKey, CborEncodable>;
  it.each<[string, (m: Map<CborKey, CborEncodable>) => void, string]>([
    ['an unknown field', (m) => m.set('enclave_name', 'x'), 'unknown field "enclave_name"'],
    ['a non-text key', (m) => m.set(7, 'x'), 'unknown field 7'],
    ['no module_id', (m) => m.delete('module_id'), 'module_id must be a non-empty text string'],
    ['an empty module_id', (m) => m.set('module_id', ''), 'module_id must be a non-empty text string'],
    ['a module_id of bytes', (m) => m.set('module_id', utf8('i-0123')), 'module_id must be a non-empty text string'],
    ['a module_id of 257 characters', (m) => m.set('module_id', 'i'.repeat(257)), 'module_id must be a non-empty text string'],
    ['digest SHA256', (m) => m.set('digest', 'SHA256'), 'digest must be "SHA384", got "SHA256"'],
    ['timestamp 0', (m) => m.set('timestamp', 0), 'timestamp must be a positive integer (milliseconds)'],
    ['a negative timestamp', (m) => m.set('timestamp', -1), 'timestamp must be a positive integer (milliseconds)'],
    ['a timestamp as text', (m) => m.set('timestamp', '1732924800000'), 'timestamp must be a positive integer (milliseconds)'],
    ['pcrs as an array', (m) => m.set('pcrs', [new Uint8Array(48)]), 'pcrs must be a map of 1..32 entries'],
    ['no PCRs', (m) => m.set('pcrs', new Map()), 'pcrs must be a map of 1..32 entries'],
    ['33 PCRs', (m) => m.set('pcrs', new Map(Array.from({ length: 33 }, (_, i) => [i, new Uint8Array(48)]))), 'pcrs must be a map of 1..32 entries'],
    ['PCR index 32', (m) => pcrs(m).set(32, new Uint8Array(48)), 'PCR index 32 out of range 0..31'],
    ['PCR index -1', (m) => pcrs(m).set(-1, new Uint8Array(48)), 'PCR index -1 out of range 0..31'],
    ['PCR index "0"', (m) => pcrs(m).set('0', new Uint8Array(48)), 'PCR index 0 out of range 0..31'],
    ['a PCR of 47 bytes', (m) => pcrs(m).set(0, new Uint8Array(47)), 'PCR0 must be a byte string of 32, 48 or 64 bytes'],
    ['no certificate', (m) => m.delete('certificate'), 'certificate must be a byte string'],
    ['a certificate of 1025 bytes', (m) => m.set('certificate', new Uint8Array(1025)), 'certificate must be 1..1024 bytes, got 1025'],
    ['an empty cabundle', (m) => m.set('cabundle', []), 'cabundle must be an array of 1..8 certificates'],
    ['a cabundle of 9', (m) => m.set('cabundle', Array.from({ length: 9 }, () => new Uint8Array(10))), 'cabundle must be an array of 1..8 certificates'],
    ['a cabundle entry of text', (m) => m.set('cabundle', ['MIIB']), 'cabundle[0] must be a byte string of 1..1024 bytes'],
    ['a cabundle entry of 1025 bytes', (m) => m.set('cabundle', [new Uint8Array(1025)]), 'cabundle[0] must be a byte string of 1..1024 bytes'],
    ['public_key as text', (m) => m.set('public_key', 'key'), 'public_key must be a byte string or null'],
    ['user_data of 1025 bytes', (m) => m.set('user_data', new Uint8Array(1025)), 'user_data must be at most 1024 bytes, got 1025'],
    ['nonce as a number', (m) => m.set('nonce', 42), 'nonce must be a byte string or null'],
  ])('refuses %s: DOCUMENT_SCHEMA_INVALID', (_what, edit, message) => {
    expect(refusal(edited(edit))).toEqual({ code: 'DOCUMENT_SCHEMA_INVALID', message });
  });

  it('refuses a payload that is not a map, and one nested deeper than a document is', () => {
    expect(refusal(encodeCbor(['module_id']))).toEqual({ code: 'DOCUMENT_SCHEMA_INVALID', message: 'payload must be a CBOR map' });
    expect(refusal(edited((m) => m.set('nonce', [[[[new Uint8Array(1)]]]])))).toEqual({ code: 'CBOR_LIMIT_EXCEEDED', message: 'nesting deeper than 4' });
  });
});
