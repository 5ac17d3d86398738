/**
 * Tamper resistance on real AWS Nitro documents: hundreds of deterministic edits of each valid
 * document in shared/vectors/nitro, each verified at the document's own time + 1 s with debug allowed
 * (so the only reason to fail is the edit). Each must be rejected with a registered TeegateError code
 * other than INTERNAL; where the pipeline order fixes the code, the exact code is asserted.
 */
import { concatBytes } from '../../attestation/bytes';
import { decodeCbor, encodeCbor, CborIndefinite, type CborEncodable, type CborMap, type CborValue } from '../../attestation/cbor';
import { ERROR_REGISTRY, isTeegateError, type ErrorCode } from '../../attestation/errors';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { buildCoseSign1, documentLayout, fieldOf, flipBit, indexOfBytes, validNitroVectors, type DocumentLayout } from '../support/nitro-vectors';

interface Mutation {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The exact code when the pipeline order determines it; otherwise any registered code but INTERNAL. */
  readonly code?: ErrorCode;
}

function splice(b: Uint8Array, at: number, oldLength: number, replacement: Uint8Array): Uint8Array {
  return concatBytes(b.subarray(0, at), replacement, b.subarray(at + oldLength));
}

function bitFlips(doc: Uint8Array, layout: DocumentLayout): Mutation[] {
  const out: Mutation[] = [];
  // COSE structure and protected header: array head, bstr head, {1: -35}, empty map, payload bstr head.
  for (let off = 0; off < layout.payloadOffset; off++) {
    for (const bit of [0, 3, 7]) out.push({ name: `COSE head byte ${off} bit ${bit}`, bytes: flipBit(doc, off, bit) });
  }
  // Payload fields: first, middle and last byte of each field's content.
  for (const f of layout.fields) {
    const offsets = [...new Set([0, f.length >> 1, f.length - 1])];
    for (const rel of offsets) {
      // PCR values, public_key, user_data and nonce are only covered by the COSE signature.
      const signatureOnly = /^pcr\d+$|^public_key$|^user_data$|^nonce$/.test(f.name);
      out.push({ name: `${f.name} byte ${rel} bit 0`, bytes: flipBit(doc, f.offset + rel, 0), ...(signatureOnly ? { code: 'SIGNATURE_INVALID' as const } : {}) });
    }
  }
  // Field names: the last letter of each key.
  for (const key of ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce']) {
    const at = indexOfBytes(layout.payload, encodeCbor(key));
    if (at < 0) continue;
    const keyEnd = layout.payloadOffset + at + encodeCbor(key).length - 1;
    out.push({ name: `key "${key}" last letter`, bytes: flipBit(doc, keyEnd, 0), code: 'DOCUMENT_SCHEMA_INVALID' });
  }
  // The signature: every 8th byte, and the top bit of the first and last bytes.
  for (let rel = 0; rel < layout.signature.length; rel += 8) {
    out.push({ name: `signature byte ${rel} bit 0`, bytes: flipBit(doc, layout.signatureOffset + rel, 0), code: 'SIGNATURE_INVALID' });
  }
  out.push({ name: 'signature byte 0 bit 7', bytes: flipBit(doc, layout.signatureOffset, 7), code: 'SIGNATURE_INVALID' });
  out.push({ name: 'signature byte 95 bit 7', bytes: flipBit(doc, layout.signatureOffset + 95, 7), code: 'SIGNATURE_INVALID' });
  return out;
}

function truncationsAndTrailers(doc: Uint8Array, layout: DocumentLayout): Mutation[] {
  const cuts = new Set([0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 100, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000,
    layout.payloadOffset + layout.payload.length - 1, layout.signatureOffset - 2, layout.signatureOffset - 1,
    layout.signatureOffset, layout.signatureOffset + 48, doc.length - 1]);
  const out: Mutation[] = [...cuts].map((n) => ({ name: `truncated to ${n} bytes`, bytes: doc.subarray(0, n), code: 'CBOR_MALFORMED' as const }));
  for (const [name, tail] of [['00', [0x00]], ['ff', [0xff]], ['0000', [0, 0]], ['f6', [0xf6]]] as const) {
    out.push({ name: `trailing ${name}`, bytes: concatBytes(doc, new Uint8Array(tail)), code: 'CBOR_TRAILING_BYTES' });
  }
  out.push({ name: 'trailing copy of the signature', bytes: concatBytes(doc, encodeCbor(layout.signature)), code: 'CBOR_TRAILING_BYTES' });
  return out;
}

/** Payload re-encodings that decode to the same document: the signature, over the bytes, must fail. */
function reencodings(layout: DocumentLayout): Mutation[] {
  const { payload, protectedHeader, signature } = layout;
  const map = decodeCbor(payload) as CborMap;
  const indefinite = payload[0] === 0xbf;
  const wrap = (m: CborMap): CborEncodable => (indefinite ? new CborIndefinite(m) : m);
  /** Offset in the payload just past a located field's content. */
  const endOf = (name: string): number => {
    const f = fieldOf(layout, name);
    return f.offset - layout.payloadOffset + f.length;
  };
  const variants: [string, Uint8Array][] = [];
  variants.push([
    indefinite ? 'indefinite map → definite' : 'definite map → indefinite',
    indefinite ? concatBytes(new Uint8Array([0xa0 | map.size]), payload.subarray(1, payload.length - 1)) : concatBytes(new Uint8Array([0xbf]), payload.subarray(1), new Uint8Array([0xff])),
  ]);
  variants.push(['keys in reverse order', encodeCbor(wrap(new Map([...map].reverse())))]);
  variants.push(['module_id and digest swapped', encodeCbor(wrap(new Map([...map].map((e, i, all) => (i === 0 ? all[1]! : i === 1 ? all[0]! : e)))))]);
  const moduleId = encodeCbor(map.get('module_id') as string);
  variants.push(['module_id text with a 2-byte length', splice(payload, indexOfBytes(payload, moduleId), 2, new Uint8Array([0x79, 0x00, moduleId[1]!]))]);
  const digest = encodeCbor('SHA384');
  variants.push(['digest text with a 1-byte length', splice(payload, indexOfBytes(payload, digest), 1, new Uint8Array([0x78, 0x06]))]);
  variants.push(['digest text in two chunks', splice(payload, indexOfBytes(payload, digest), 7, concatBytes(new Uint8Array([0x7f]), encodeCbor('SHA'), encodeCbor('384'), new Uint8Array([0xff])))]);
  const pcrsHead = indexOfBytes(payload, encodeCbor('pcrs')) + 5;
  variants.push(['PCR0 index with a 1-byte argument', splice(payload, pcrsHead + 1, 1, new Uint8Array([0x18, 0x00]))]);
  const pcrsCount = (map.get('pcrs') as CborMap).size;
  const asIndefinite = (p: Uint8Array, head: number, end: number): Uint8Array =>
    concatBytes(p.subarray(0, head), new Uint8Array([p[head]! | 0x1f]), p.subarray(head + 1, end), new Uint8Array([0xff]), p.subarray(end));
  expect(payload[pcrsHead]).toBe(0xa0 | pcrsCount);
  variants.push(['pcrs as an indefinite map', asIndefinite(payload, pcrsHead, endOf(`pcr${pcrsCount - 1}`))]);
  const bundleHead = indexOfBytes(payload, encodeCbor('cabundle')) + 9;
  const bundleCount = (map.get('cabundle') as Uint8Array[]).length;
  expect(payload[bundleHead]).toBe(0x80 | bundleCount);
  variants.push(['cabundle as an indefinite array', asIndefinite(payload, bundleHead, endOf(`cabundle[${bundleCount - 1}]`))]);
  const timestamp = indexOfBytes(payload, encodeCbor('timestamp')) + 10;
  variants.push(['timestamp key with a 1-byte length', splice(payload, timestamp - 10, 1, new Uint8Array([0x78, 0x09]))]);
  return variants.map(([name, p]) => {
    // Each variant is a different byte string carrying the same decoded document.
    expect(decodeCbor(p)).toEqual(map as unknown as CborValue);
    expect(p.length === payload.length && p.every((b, i) => b === payload[i])).toBe(false);
    return { name: `re-encoded payload: ${name}`, bytes: buildCoseSign1(protectedHeader, p, signature), code: 'SIGNATURE_INVALID' as const };
  });
}

async function rejection(bytes: Uint8Array, at: number): Promise<{ code: string; registered: boolean }> {
  try {
    await verifyAttestation(bytes, { at, policy: { allowDebug: true } });
    return { code: 'accepted', registered: false };
  } catch (err) {
    if (!isTeegateError(err)) return { code: `not a TeegateError: ${String(err)}`, registered: false };
    return { code: err.code, registered: Object.prototype.hasOwnProperty.call(ERROR_REGISTRY, err.code) };
  }
}

const docs = validNitroVectors();
const allMutations = docs.map((v) => {
  const layout = documentLayout(v.bytes);
  return { v, mutations: [...bitFlips(v.bytes, layout), ...truncationsAndTrailers(v.bytes, layout), ...reencodings(layout)] };
});

it('covers at least 400 mutations in all', () => {
  expect(allMutations.reduce((n, d) => n + d.mutations.length, 0)).toBeGreaterThanOrEqual(400);
  // The mutated documents are all distinct from the originals.
  for (const { v, mutations } of allMutations) {
    for (const m of mutations) expect(m.bytes.length === v.bytes.length && m.bytes.every((b, i) => b === v.bytes[i])).toBe(false);
  }
});

describe.each(allMutations.map((d) => [d.v.file, d] as const))('%s', (_file, { v, mutations }) => {
  const at = v.timestamp_ms + 1000;

  it('the unmutated document verifies (control)', async () => {
    await expect(verifyAttestation(v.bytes, { at, policy: { allowDebug: true } })).resolves.toBeDefined();
  });

  it.each(mutations.map((m) => [m.name, m] as const))('%s is rejected', async (_name, m) => {
    const r = await rejection(m.bytes, at);
    expect(r.registered).toBe(true);
    expect(r.code).not.toBe('INTERNAL');
    if (m.code) expect(r.code).toBe(m.code);
  });

  it('field offsets were located in the document', () => {
    const layout = documentLayout(v.bytes);
    expect(fieldOf(layout, 'module_id').length).toBe(v.module_id.length);
    expect(layout.fields.filter((f) => f.name.startsWith('pcr'))).toHaveLength(v.pcr_count);
  });
});
