import { errorCodeOf as code } from '../support/error-code';
/** Canonical typed log entries (attestation/log/entry.ts) and tlog-tiles entry bundles. */
import { toBase64, utf8 } from '../../attestation/bytes';
import { decodeEntry, encodeEntry, entryLeafHash, MAX_ENTRY_BYTES } from '../../attestation/log/entry';
import { encodeEntryBundle, parseEntryBundle } from '../../attestation/log/entry-bundle';
import { leafHash } from '../../attestation/log/merkle';


test('receipt and attestation entries encode as RFC 8785 JSON and decode back', () => {
  const receipt = encodeEntry({ type: 'receipt', jws: 'a.b.c' });
  expect(new TextDecoder().decode(receipt)).toBe('{"jws":"a.b.c","type":"receipt"}');
  expect(decodeEntry(receipt)).toEqual({ type: 'receipt', jws: 'a.b.c' });

  const document = new Uint8Array([0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22]);
  const att = encodeEntry({ type: 'attestation', document, manifest: { z: 1, a: [true, null] } });
  expect(new TextDecoder().decode(att)).toBe(`{"document":"${toBase64(document)}","manifest":{"a":[true,null],"z":1},"type":"attestation"}`);
  expect(decodeEntry(att)).toEqual({ type: 'attestation', document, manifest: { a: [true, null], z: 1 } });
});

test('the leaf hash is the RFC 9162 leaf hash of the canonical bytes', async () => {
  const bytes = encodeEntry({ type: 'receipt', jws: 'x.y.z' });
  expect(await entryLeafHash(bytes)).toEqual(await leafHash(bytes));
});

test.each([
  ['not JSON', '{'],
  ['not an object', '[1]'],
  ['not canonical (spacing)', '{"jws": "a.b.c","type":"receipt"}'],
  ['not canonical (member order)', '{"type":"receipt","jws":"a.b.c"}'],
  ['unknown type', '{"type":"other"}'],
  ['extra member', '{"extra":1,"jws":"a.b.c","type":"receipt"}'],
  ['missing jws', '{"type":"receipt"}'],
  ['empty jws', '{"jws":"","type":"receipt"}'],
  ['jws not a string', '{"jws":1,"type":"receipt"}'],
  ['document not base64', '{"document":"!!","manifest":{},"type":"attestation"}'],
  ['document unpadded', '{"document":"AAE","manifest":{},"type":"attestation"}'],
  ['document url alphabet', '{"document":"-_-_","manifest":{},"type":"attestation"}'],
  ['missing manifest', '{"document":"AAE=","type":"attestation"}'],
])('decodeEntry rejects %s with LOG_ENTRY_MALFORMED', (_what, text) => {
  expect(code(() => decodeEntry(utf8(text)))).toBe('LOG_ENTRY_MALFORMED');
});

test('invalid UTF-8, oversized entries and bad inputs to encodeEntry are typed errors', () => {
  expect(code(() => decodeEntry(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe('LOG_ENTRY_MALFORMED');
  // A byte order mark before canonical bytes is another leaf hash for the same entry: refused.
  expect(code(() => decodeEntry(Uint8Array.of(0xef, 0xbb, 0xbf, ...encodeEntry({ type: 'receipt', jws: 'a.b.c' }))))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => decodeEntry(new Uint8Array(MAX_ENTRY_BYTES + 1)))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntry({ type: 'receipt', jws: 'x'.repeat(MAX_ENTRY_BYTES) }))).toBe('LOG_ENTRY_TOO_LARGE');
  expect(code(() => encodeEntry({ type: 'receipt', jws: '' }))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntry({ type: 'attestation', document: new Uint8Array(0), manifest: {} }))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntry({ type: 'attestation', document: new Uint8Array(1), manifest: undefined }))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntry({ type: 'nope' } as never))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntry({ type: 'attestation', document: new Uint8Array(1), manifest: { n: 1n } }))).toBe('LOG_ENTRY_MALFORMED');
});

test('entry bundles are big-endian uint16 length-prefixed entries', () => {
  const a = utf8('a');
  const b = new Uint8Array(300).fill(7);
  const bundle = encodeEntryBundle([a, b, new Uint8Array(0)]);
  expect(Array.from(bundle.subarray(0, 3))).toEqual([0x00, 0x01, 0x61]);
  expect(Array.from(bundle.subarray(3, 5))).toEqual([0x01, 0x2c]);
  expect(bundle.length).toBe(2 + 1 + 2 + 300 + 2);
  expect(parseEntryBundle(bundle, 3)).toEqual([a, b, new Uint8Array(0)]);
  expect(parseEntryBundle(new Uint8Array(0), 0)).toEqual([]);
});

test('malformed entry bundles are LOG_ENTRY_MALFORMED', () => {
  const bundle = encodeEntryBundle([utf8('abc'), utf8('de')]);
  expect(code(() => parseEntryBundle(bundle, 3))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => parseEntryBundle(bundle.subarray(0, bundle.length - 1)))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => parseEntryBundle(new Uint8Array([0x00])))).toBe('LOG_ENTRY_MALFORMED');
  const tooMany = encodeEntryBundle(Array.from({ length: 256 }, () => new Uint8Array(0)));
  expect(code(() => parseEntryBundle(new Uint8Array([...tooMany, 0, 0])))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntryBundle(Array.from({ length: 257 }, () => new Uint8Array(0))))).toBe('LOG_ENTRY_MALFORMED');
  expect(code(() => encodeEntryBundle([new Uint8Array(0x10000)]))).toBe('LOG_ENTRY_TOO_LARGE');
});

test.each([
  ['a number', '{"document":1,"manifest":{},"type":"attestation"}', 'attestation entry document is not a base64 string'],
  ['null', '{"document":null,"manifest":{},"type":"attestation"}', 'attestation entry document is not a base64 string'],
  ['empty', '{"document":"","manifest":{},"type":"attestation"}', 'attestation entry document is not a base64 string'],
  // A length no base64 has, and padding at a length that is not a multiple of four.
  ['of five characters', '{"document":"AAAAA","manifest":{},"type":"attestation"}', 'attestation entry document is not base64'],
  ['padded to three characters', '{"document":"AA=","manifest":{},"type":"attestation"}', 'attestation entry document is not base64'],
])('decodeEntry rejects an attestation document that is %s with LOG_ENTRY_MALFORMED', (_what, text, message) => {
  expect(() => decodeEntry(utf8(text))).toThrow(expect.objectContaining({ code: 'LOG_ENTRY_MALFORMED', message }));
});
