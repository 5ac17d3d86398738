/**
 * Strict CBOR (RFC 8949) decoder and preferred-form encoder. Hand-written byte vectors (several from
 * RFC 8949 Appendix A) plus the payloads of the real AWS Nitro documents in shared/vectors/nitro.
 */
import { errorCodeOrKind as codeOf, refusalOfSync as refusal } from '../support/error-code';
import { decodeCbor, encodeCbor, CborIndefinite, CborTag, type CborDecodeOptions, type CborEncodable, type CborMap, type CborValue } from '../../attestation/cbor';
import { fromHex, toHex, utf8 } from '../../attestation/bytes';
import { type ErrorCode } from '../../attestation/errors';
import { parseCoseSign1 } from '../../attestation/cose/sign1';
import { validNitroVectors } from '../support/nitro-vectors';

const h = (hex: string): Uint8Array => fromHex(hex.replace(/\s+/g, ''));


const decodeHex = (hex: string, options?: CborDecodeOptions): CborValue => decodeCbor(h(hex), options);

function repeat(byte: number, n: number, tail: number[] = []): Uint8Array {
  const out = new Uint8Array(n + tail.length).fill(byte);
  out.set(tail, n);
  return out;
}

describe('decodeCbor: accepted items', () => {
  it.each<[string, string, CborValue]>([
    ['0', '00', 0],
    ['23', '17', 23],
    ['24', '1818', 24],
    ['1000', '1903e8', 1000],
    ['1000000', '1a000f4240', 1000000],
    ['2^53-1 stays a number', '1b001fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['2^53 is a bigint', '1b0020000000000000', 9007199254740992n],
    ['2^64-1', '1bffffffffffffffff', 18446744073709551615n],
    ['-1', '20', -1],
    ['-100', '3863', -100],
    ['-1000', '3903e7', -1000],
    ['-(2^53-1) stays a number', '3b001ffffffffffffe', -Number.MAX_SAFE_INTEGER],
    ['-2^53 is a bigint', '3b001fffffffffffff', -9007199254740992n],
    ['-2^64', '3bffffffffffffffff', -18446744073709551616n],
    ['false', 'f4', false],
    ['true', 'f5', true],
    ['null', 'f6', null],
    ['empty text', '60', ''],
    ['text "IETF"', '6449455446', 'IETF'],
    ['text with U+00FC', '62c3bc', '\u00fc'],
    ['text with U+6C34', '63e6b0b4', '\u6c34'],
    ['text with U+10151 (surrogate pair)', '64f0908591', '\u{10151}'],
    ['indefinite text "streaming"', '7f657374726561646d696e67ff', 'streaming'],
    ['indefinite text, no chunks', '7fff', ''],
  ])('%s', (_name, hex, expected) => {
    expect(decodeHex(hex)).toEqual(expected);
  });

  it('decodes definite and indefinite (chunked) byte strings', () => {
    expect(decodeHex('4401020304')).toEqual(h('01020304'));
    expect(decodeHex('40')).toEqual(new Uint8Array(0));
    expect(decodeHex('5f42010243030405ff')).toEqual(h('0102030405'));
    expect(decodeHex('5f40ff')).toEqual(new Uint8Array(0));
    expect(decodeHex('5fff')).toEqual(new Uint8Array(0));
  });

  it('joins an indefinite byte string of 150,000 empty chunks (no argument spread of one chunk each)', () => {
    const item = new Uint8Array(150_002).fill(0x40); // 0x40: an empty byte string
    item[0] = 0x5f;
    item[150_001] = 0xff;
    expect(decodeCbor(item)).toEqual(new Uint8Array(0));
  });

  it('returns byte strings that do not alias the input', () => {
    const input = h('42aabb');
    const out = decodeCbor(input) as Uint8Array;
    input[1] = 0;
    expect(toHex(out)).toBe('aabb');
  });

  it('decodes definite and indefinite arrays, nested both ways', () => {
    expect(decodeHex('80')).toEqual([]);
    expect(decodeHex('83010203')).toEqual([1, 2, 3]);
    expect(decodeHex('8301820203820405')).toEqual([1, [2, 3], [4, 5]]);
    expect(decodeHex('9fff')).toEqual([]);
    expect(decodeHex('9f018202039f0405ffff')).toEqual([1, [2, 3], [4, 5]]);
    expect(decodeHex('83018202039f0405ff')).toEqual([1, [2, 3], [4, 5]]);
    expect(decodeHex('83019f0203ff820405')).toEqual([1, [2, 3], [4, 5]]);
  });

  it('decodes definite and indefinite maps with text and integer keys', () => {
    expect(decodeHex('a0')).toEqual(new Map());
    expect(decodeHex('a201020304')).toEqual(new Map([[1, 2], [3, 4]]));
    expect(decodeHex('a26161016162820203')).toEqual(new Map<string, CborValue>([['a', 1], ['b', [2, 3]]]));
    expect(decodeHex('bf61610161629f0203ffff')).toEqual(new Map<string, CborValue>([['a', 1], ['b', [2, 3]]]));
    expect(decodeHex('bf6346756ef563416d7421ff')).toEqual(new Map<string, CborValue>([['Fun', true], ['Amt', -2]]));
    expect(decodeHex('a2200138220f')).toEqual(new Map([[-1, 1], [-35, 15]]));
    // A chunked text key is the same key as its definite form.
    expect(decodeHex('a17f61616162ff01')).toEqual(new Map([['ab', 1]]));
  });

  it('decodes tag 18 only when the caller allows it', () => {
    expect(codeOf(() => decodeHex('d28401020304'))).toBe('CBOR_UNSUPPORTED');
    const tagged = decodeHex('d28401020304', { allowedTags: [18] });
    expect(tagged).toBeInstanceOf(CborTag);
    expect((tagged as CborTag).tag).toBe(18);
    expect((tagged as CborTag).value).toEqual([1, 2, 3, 4]);
    // Same tag in its one-byte-argument (non-preferred) form is the same tag number.
    expect((decodeHex('d81280', { allowedTags: [18] }) as CborTag).tag).toBe(18);
    expect(codeOf(() => decodeHex('c074323031332d30332d32315432303a30343a30305a', { allowedTags: [18] }))).toBe('CBOR_UNSUPPORTED');
    expect(codeOf(() => decodeHex('d2', { allowedTags: [18] }))).toBe('CBOR_MALFORMED');
    expect(codeOf(() => decodeHex('d2ff', { allowedTags: [18] }))).toBe('CBOR_MALFORMED');
    expect(codeOf(() => decodeHex('d18401020304', { allowedTags: [18] }))).toBe('CBOR_UNSUPPORTED');
    expect(codeOf(() => decodeHex('dbffffffffffffffff80', { allowedTags: [18] }))).toBe('CBOR_UNSUPPORTED');
    expect(codeOf(() => decodeHex('a101d280', { allowedTags: [] }))).toBe('CBOR_UNSUPPORTED');
  });

  it('accepts bytes after the item only with allowTrailing', () => {
    expect(codeOf(() => decodeHex('0100'))).toBe('CBOR_TRAILING_BYTES');
    expect(codeOf(() => decodeHex('80ff'))).toBe('CBOR_TRAILING_BYTES');
    expect(decodeHex('0100', { allowTrailing: true })).toBe(1);
  });

  it('accepts exactly maxDepth levels of nesting', () => {
    expect(decodeHex('8181818100', { maxDepth: 4 })).toEqual([[[[0]]]]);
    expect(codeOf(() => decodeHex('818181818100', { maxDepth: 4 }))).toBe('CBOR_LIMIT_EXCEEDED');
    expect(codeOf(() => decodeCbor(repeat(0x81, 16, [0])))).toBe('no error');
    expect(codeOf(() => decodeCbor(repeat(0x81, 17, [0])))).toBe('CBOR_LIMIT_EXCEEDED');
  });
});

describe('decodeCbor: rejections with their exact codes', () => {
  it.each<[string, string, ErrorCode]>([
    // Truncation
    ['empty input', '', 'CBOR_MALFORMED'],
    ['uint16 missing a byte', '1901', 'CBOR_MALFORMED'],
    ['uint64 missing bytes', '1b000000', 'CBOR_MALFORMED'],
    ['uint8 argument missing', '18', 'CBOR_MALFORMED'],
    ['text shorter than declared', '6261', 'CBOR_MALFORMED'],
    ['bytes shorter than declared', '450102', 'CBOR_MALFORMED'],
    ['array missing an item', '8201', 'CBOR_MALFORMED'],
    ['map missing a value', 'a2010203', 'CBOR_MALFORMED'],
    ['indefinite array without break', '9f0102', 'CBOR_MALFORMED'],
    ['indefinite map without break', 'bf0102', 'CBOR_MALFORMED'],
    ['indefinite bytes without break', '5f4161', 'CBOR_MALFORMED'],
    // Reserved additional information 28..30, on every major type
    ['uint info 28', '1c', 'CBOR_MALFORMED'],
    ['uint info 29', '1d', 'CBOR_MALFORMED'],
    ['uint info 30', '1e', 'CBOR_MALFORMED'],
    ['nint info 28', '3c', 'CBOR_MALFORMED'],
    ['bytes info 29', '5d', 'CBOR_MALFORMED'],
    ['text info 30', '7e', 'CBOR_MALFORMED'],
    ['array info 28', '9c', 'CBOR_MALFORMED'],
    ['map info 29', 'bd', 'CBOR_MALFORMED'],
    ['tag info 30', 'de', 'CBOR_MALFORMED'],
    ['simple info 28', 'fc', 'CBOR_MALFORMED'],
    ['simple info 29', 'fd', 'CBOR_MALFORMED'],
    ['simple info 30', 'fe', 'CBOR_MALFORMED'],
    ['chunk with info 28', '5f5cff', 'CBOR_MALFORMED'],
    // Indefinite length where none is allowed
    ['indefinite uint', '1f', 'CBOR_MALFORMED'],
    ['indefinite nint', '3f', 'CBOR_MALFORMED'],
    ['indefinite tag', 'df', 'CBOR_MALFORMED'],
    // Break code outside an indefinite item
    ['break at top level', 'ff', 'CBOR_MALFORMED'],
    ['break inside a definite array', '8201ff', 'CBOR_MALFORMED'],
    ['break as a definite map key', 'a1ff', 'CBOR_MALFORMED'],
    ['break as a definite map value', 'a101ff', 'CBOR_MALFORMED'],
    ['break as an indefinite map value', 'bf01ffff', 'CBOR_MALFORMED'],
    // Chunks of indefinite strings
    ['nested indefinite byte chunk', '5f5f4101ffff', 'CBOR_MALFORMED'],
    ['nested indefinite text chunk', '7f7f6161ffff', 'CBOR_MALFORMED'],
    ['text chunk in bytes', '5f6161ff', 'CBOR_MALFORMED'],
    ['bytes chunk in text', '7f4161ff', 'CBOR_MALFORMED'],
    ['integer chunk in bytes', '5f01ff', 'CBOR_MALFORMED'],
    ['array chunk in text', '7f80ff', 'CBOR_MALFORMED'],
    // UTF-8
    ['invalid UTF-8 (lone continuation byte)', '6180', 'CBOR_MALFORMED'],
    ['invalid UTF-8 (truncated sequence)', '62c328', 'CBOR_MALFORMED'],
    ['invalid UTF-8 (overlong NUL)', '62c080', 'CBOR_MALFORMED'],
    ['invalid UTF-8 (surrogate half)', '63eda080', 'CBOR_MALFORMED'],
    ['invalid UTF-8 in a chunk', '7f616161ffff', 'CBOR_MALFORMED'],
    // RFC 8949 §3.2.3: a UTF-8 character cannot be spread between chunks.
    ['UTF-8 character split across chunks', '7f61c361bcff', 'CBOR_MALFORMED'],
    ['invalid UTF-8 in a map key', 'a161ff01', 'CBOR_MALFORMED'],
    // Floats, undefined and other simple values
    ['half float', 'f93c00', 'CBOR_UNSUPPORTED'],
    ['single float', 'fa47c35000', 'CBOR_UNSUPPORTED'],
    ['double float', 'fb3ff199999999999a', 'CBOR_UNSUPPORTED'],
    ['undefined', 'f7', 'CBOR_UNSUPPORTED'],
    ['simple value 16', 'f0', 'CBOR_UNSUPPORTED'],
    ['simple value 255', 'f8ff', 'CBOR_UNSUPPORTED'],
    ['simple value 32 (two-byte form)', 'f820', 'CBOR_UNSUPPORTED'],
    ['float inside a map', 'a16161f93c00', 'CBOR_UNSUPPORTED'],
    // Map keys
    ['byte string key', 'a1410001', 'CBOR_UNSUPPORTED'],
    ['array key', 'a18001', 'CBOR_UNSUPPORTED'],
    ['map key', 'a1a001', 'CBOR_UNSUPPORTED'],
    ['boolean key', 'a1f501', 'CBOR_UNSUPPORTED'],
    ['null key', 'a1f601', 'CBOR_UNSUPPORTED'],
    ['64-bit (bigint) key', 'a11bffffffffffffffff01', 'CBOR_UNSUPPORTED'],
    ['byte string key in an indefinite map', 'bf410001ff', 'CBOR_UNSUPPORTED'],
    // Duplicate keys
    ['duplicate integer key', 'a201010102', 'CBOR_DUPLICATE_KEY'],
    ['duplicate negative key', 'a220012002', 'CBOR_DUPLICATE_KEY'],
    ['duplicate text key', 'a2616101616102', 'CBOR_DUPLICATE_KEY'],
    ['int 1 and int 1 in an indefinite map', 'bf01010102ff', 'CBOR_DUPLICATE_KEY'],
    ['text key twice in an indefinite map', 'bf616101616102ff', 'CBOR_DUPLICATE_KEY'],
    ['same integer key, second in a longer form', 'a20100180100', 'CBOR_DUPLICATE_KEY'],
    ['same text key, second chunked', 'a26162007f6162ff01', 'CBOR_DUPLICATE_KEY'],
    ['duplicate key in a nested map', '81a2616101616102', 'CBOR_DUPLICATE_KEY'],
    // Trailing bytes
    ['one trailing byte', '0000', 'CBOR_TRAILING_BYTES'],
    ['a second complete item', '8001', 'CBOR_TRAILING_BYTES'],
    ['a trailing break', 'a0ff', 'CBOR_TRAILING_BYTES'],
  ])('%s', (_name, hex, code) => {
    expect(codeOf(() => decodeHex(hex))).toBe(code);
  });
});

describe('decodeCbor: limits (length bombs, depth, item count)', () => {
  // Each is refused by the length check named in its message, before any allocation or any item is
  // read (a decoder that allocated first, or read item by item, would run out of input with another
  // message, or of memory).
  it.each<[string, string, ErrorCode, string]>([
    ['byte string of 2^63 bytes', '5b8000000000000000', 'CBOR_LIMIT_EXCEEDED', 'byte string length too large'],
    ['byte string of 2^64-1 bytes', '5bffffffffffffffff', 'CBOR_LIMIT_EXCEEDED', 'byte string length too large'],
    ['byte string of 2^53-1 bytes', '5b001fffffffffffff', 'CBOR_LIMIT_EXCEEDED', 'byte string of 9007199254740991 bytes exceeds the limit of 1048576'],
    ['byte string of 4 GiB', '5affffffff', 'CBOR_LIMIT_EXCEEDED', 'byte string of 4294967295 bytes exceeds the limit of 1048576'],
    ['text string of 2^63 bytes', '7b8000000000000000', 'CBOR_LIMIT_EXCEEDED', 'text string length too large'],
    ['array of 2^63 items', '9b8000000000000000', 'CBOR_LIMIT_EXCEEDED', 'array length too large'],
    ['map of 2^63 pairs', 'bb8000000000000000', 'CBOR_LIMIT_EXCEEDED', 'map length too large'],
    ['chunk of 2^63 bytes', '5f5b8000000000000000ff', 'CBOR_LIMIT_EXCEEDED', 'byte string length too large'],
    // Under the string limit but longer than the input: a truncation, found before any allocation.
    ['byte string of 1 MiB - 1 in 5 bytes', '5a000fffff', 'CBOR_MALFORMED', 'truncated: need 1048575 bytes at offset 5'],
    ['array of 2^32-1 items in 5 bytes', '9affffffff', 'CBOR_MALFORMED', 'array of 4294967295 items exceeds the remaining input'],
    ['array of 2^53-1 items', '9b001fffffffffffff', 'CBOR_MALFORMED', 'array of 9007199254740991 items exceeds the remaining input'],
    ['map of 2^32-1 pairs in 5 bytes', 'baffffffff', 'CBOR_MALFORMED', 'map of 4294967295 pairs exceeds the remaining input'],
    ['map of 3 pairs in 4 bytes', 'a3010203', 'CBOR_MALFORMED', 'map of 3 pairs exceeds the remaining input'],
    // Checked before the pairs are read: the repeated key 1 would otherwise be reported first.
    ['map of 3 pairs in 4 bytes, a key repeated', 'a3010001', 'CBOR_MALFORMED', 'map of 3 pairs exceeds the remaining input'],
  ])('%s is rejected without allocating', (_name, hex, code, message) => {
    const before = process.memoryUsage().arrayBuffers;
    expect(refusal(() => decodeHex(hex))).toEqual({ code, message });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });

  it.each<[string, number, number[]]>([
    ['definite arrays', 0x81, [0x00]],
    ['indefinite arrays', 0x9f, []],
    ['maps', 0xa1, []],
  ])('10,000 nested %s fail fast with CBOR_LIMIT_EXCEEDED, not a stack overflow', (_name, byte, tail) => {
    // Refused by the depth limit (its message), not by running out of stack or input.
    expect(refusal(() => decodeCbor(repeat(byte, 10_000, tail)))).toEqual({ code: 'CBOR_LIMIT_EXCEEDED', message: 'nesting deeper than 16' });
  });

  it('10,000 nested allowed tags fail with CBOR_LIMIT_EXCEEDED', () => {
    expect(codeOf(() => decodeCbor(repeat(0xd2, 10_000, [0x00]), { allowedTags: [18] }))).toBe('CBOR_LIMIT_EXCEEDED');
    // Tags count towards the depth: two tags inside two arrays is four levels.
    expect(codeOf(() => decodeHex('8181d2d200', { allowedTags: [18], maxDepth: 4 }))).toBe('no error');
    expect(codeOf(() => decodeHex('8181d2d28100', { allowedTags: [18], maxDepth: 4 }))).toBe('CBOR_LIMIT_EXCEEDED');
  });

  it('limits the number of data items', () => {
    const ten = h('8a00000000000000000000');
    expect(decodeCbor(ten, { maxItems: 11 })).toHaveLength(10);
    expect(codeOf(() => decodeCbor(ten, { maxItems: 10 }))).toBe('CBOR_LIMIT_EXCEEDED');
    // Default limit 100,000: an array header plus 100,000 zeros is 100,001 items.
    const big = new Uint8Array(5 + 100_000);
    big.set([0x9a, 0x00, 0x01, 0x86, 0xa0]);
    expect(codeOf(() => decodeCbor(big))).toBe('CBOR_LIMIT_EXCEEDED');
    expect((decodeCbor(big.subarray(0, big.length - 1).map((b, i) => (i === 4 ? 0x9f : b)), { maxItems: 100_000 }) as unknown[]).length).toBe(99_999);
  });

  it('limits string and input lengths', () => {
    expect(codeOf(() => decodeHex('4401020304', { maxStringLength: 3 }))).toBe('CBOR_LIMIT_EXCEEDED');
    expect(codeOf(() => decodeHex('5f4201024103ff', { maxStringLength: 2 }))).toBe('CBOR_LIMIT_EXCEEDED');
    expect(codeOf(() => decodeHex('4401020304', { maxInputLength: 4 }))).toBe('CBOR_LIMIT_EXCEEDED');
    expect(codeOf(() => decodeCbor(new Uint8Array((1 << 20) + 1)))).toBe('CBOR_LIMIT_EXCEEDED');
  });
});

describe('encodeCbor', () => {
  it.each<[string, CborEncodable, string]>([
    ['0', 0, '00'],
    ['23', 23, '17'],
    ['24', 24, '1818'],
    ['255', 255, '18ff'],
    ['256', 256, '190100'],
    ['65536', 65536, '1a00010000'],
    ['2^32-1', 4294967295, '1affffffff'],
    ['2^32', 4294967296, '1b0000000100000000'],
    ['2^53-1', Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    ['2^64-1 (bigint)', 18446744073709551615n, '1bffffffffffffffff'],
    ['small bigint in its shortest form', 5n, '05'],
    ['bigint 1000 in its shortest form', 1000n, '1903e8'],
    ['-1', -1, '20'],
    ['-1000', -1000, '3903e7'],
    ['-2^64 (bigint)', -18446744073709551616n, '3bffffffffffffffff'],
    ['-24n in its shortest form', -24n, '37'],
    ['false', false, 'f4'],
    ['true', true, 'f5'],
    ['null', null, 'f6'],
    ['text', 'IETF', '6449455446'],
    ['bytes', h('01020304'), '4401020304'],
    ['array', [1, [2, 3], [4, 5]], '8301820203820405'],
    ['map in insertion order', new Map<string, CborEncodable>([['b', 1], ['a', 2]]), 'a2616201616102'],
    ['indefinite array', new CborIndefinite([1, 2]), '9f0102ff'],
    ['indefinite map', new CborIndefinite(new Map([['a', 1]])), 'bf616101ff'],
    ['tag 18', new CborTag(18, [1]), 'd28101'],
  ])('%s', (_name, value, hex) => {
    expect(toHex(encodeCbor(value))).toBe(hex);
  });

  it('refuses numbers that are not safe integers', () => {
    expect(codeOf(() => encodeCbor(1.5))).toBe('INTERNAL');
    expect(codeOf(() => encodeCbor(2 ** 60))).toBe('INTERNAL');
    expect(codeOf(() => encodeCbor(2n ** 64n))).toBe('INTERNAL');
  });

  it('round-trips a structure using every supported type', () => {
    const value = new Map<string | number, CborEncodable>([
      ['ints', [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -24, -25, -(2 ** 32) - 1, -Number.MAX_SAFE_INTEGER]],
      ['big', [2n ** 53n, 2n ** 64n - 1n, -(2n ** 53n) - 1n, -(2n ** 64n)]],
      ['text', ['', 'a', '\u00fc\u6c34\u{10151}', 'x'.repeat(300)]],
      ['bytes', [new Uint8Array(0), h('00ff'), new Uint8Array(70000).fill(7)]],
      [1, true],
      [-1, false],
      [2, null],
      ['nested', [[[]], new Map([[0, new Map()]])]],
    ]);
    const bytes = encodeCbor(value);
    expect(decodeCbor(bytes)).toEqual(value);
    // Preferred form is a fixed point: decode → encode gives the same bytes.
    expect(toHex(encodeCbor(decodeCbor(bytes) as CborEncodable))).toBe(toHex(bytes));
  });

  it('round-trips indefinite containers to the equal definite value', () => {
    const bytes = encodeCbor(new CborIndefinite([1, new Map([['k', utf8('v')]])]));
    expect(toHex(bytes)).toBe('9f01a1616b4176ff');
    expect(decodeCbor(bytes)).toEqual([1, new Map([['k', utf8('v')]])]);
    const nested = encodeCbor(new Map<string, CborEncodable>([['a', new CborIndefinite(new Map([[1, 2]]))]]));
    expect(toHex(nested)).toBe('a16161bf0102ff');
    expect(decodeCbor(nested)).toEqual(new Map([['a', new Map([[1, 2]])]]));
  });

  // AWS writes the payload in preferred form (definite map before 2025, indefinite map after): the
  // encoder reproduces each real payload byte for byte from its decoded value.
  it.each(validNitroVectors().map((v) => [v.file, v] as const))('re-encodes the real payload of %s byte for byte', (_file, v) => {
    const { payload } = parseCoseSign1(v.bytes);
    const decoded = decodeCbor(payload) as CborMap;
    const indefinite = payload[0] === 0xbf;
    expect(indefinite || (payload[0]! & 0xe0) === 0xa0).toBe(true);
    const again = encodeCbor(indefinite ? new CborIndefinite(decoded) : decoded);
    expect(toHex(again)).toBe(toHex(payload));
  });
});
