import { errorCodeOf as codeOf } from '../support/error-code';
/**
 * The NSM CBOR protocol (enclave/nsm/nsm-protocol.ts) against hand-built CBOR.
 * Expected bytes are written out from the serde forms of aws-nitro-enclaves-nsm-api src/api/mod.rs
 * (externally tagged enums, struct fields in declaration order, Option::None as null, serde_bytes
 * as byte strings) with RFC 8949 shortest-form heads; `tstr` below writes a short text string by
 * hand (0x60 + length, then ASCII) so nothing here goes through the encoder under test.
 */
import fc from 'fast-check';
import { concatBytes, fromHex, toHex } from '../../attestation/bytes';
import { TeegateError, type ErrorCode } from '../../attestation/errors';
import {
  NSM_ERROR_CODES,
  NSM_REQUEST_MAX_SIZE,
  NSM_RESPONSE_MAX_SIZE,
  decodeNsmRequest,
  decodeNsmResponse,
  encodeNsmRequest,
  encodeNsmResponse,
  expectNsmResponse,
  nsmErrorToTeegateError,
  type NsmRequest,
  type NsmResponse,
} from '../../enclave/nsm/nsm-protocol';

/** A text string shorter than 24 bytes, encoded by hand. */
function tstr(s: string): string {
  expect(s.length).toBeLessThan(24);
  return (0x60 + s.length).toString(16) + Buffer.from(s, 'ascii').toString('hex');
}
const h = (...parts: string[]): Uint8Array => fromHex(parts.join('').replace(/\s+/g, ''));


const pcr48 = new Uint8Array(48).map((_, i) => i);
const PCR48_HEX = '5830' + toHex(pcr48);

describe('NSM requests: byte-exact serde CBOR', () => {
  const cases: [string, NsmRequest, string][] = [
    ['GetRandom (unit variant: bare text)', { type: 'GetRandom' }, tstr('GetRandom')],
    ['DescribeNSM (unit variant)', { type: 'DescribeNSM' }, tstr('DescribeNSM')],
    ['DescribePCR index 0', { type: 'DescribePCR', index: 0 }, `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 00`],
    ['DescribePCR index 23 (1-byte head)', { type: 'DescribePCR', index: 23 }, `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 17`],
    ['DescribePCR index 300 (u16 head)', { type: 'DescribePCR', index: 300 }, `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 19 012c`],
    ['DescribePCR index 65535', { type: 'DescribePCR', index: 65535 }, `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 19 ffff`],
    [
      'ExtendPCR index 16, data 010203',
      { type: 'ExtendPCR', index: 16, data: h('010203') },
      `a1 ${tstr('ExtendPCR')} a2 ${tstr('index')} 10 ${tstr('data')} 43 010203`,
    ],
    ['ExtendPCR empty data', { type: 'ExtendPCR', index: 31, data: new Uint8Array(0) }, `a1 ${tstr('ExtendPCR')} a2 ${tstr('index')} 18 1f ${tstr('data')} 40`],
    ['LockPCR index 16', { type: 'LockPCR', index: 16 }, `a1 ${tstr('LockPCR')} a1 ${tstr('index')} 10`],
    ['LockPCRs range 16', { type: 'LockPCRs', range: 16 }, `a1 ${tstr('LockPCRs')} a1 ${tstr('range')} 10`],
    [
      'Attestation with no fields (all null)',
      { type: 'Attestation' },
      `a1 ${tstr('Attestation')} a3 ${tstr('user_data')} f6 ${tstr('nonce')} f6 ${tstr('public_key')} f6`,
    ],
    [
      'Attestation with user_data, nonce, public_key (declaration order)',
      { type: 'Attestation', publicKey: new Uint8Array(24).fill(0xcc), nonce: new Uint8Array(32).fill(0xbb), userData: h('aabb') },
      `a1 ${tstr('Attestation')} a3 ${tstr('user_data')} 42 aabb ${tstr('nonce')} 5820 ${'bb'.repeat(32)} ${tstr('public_key')} 5818 ${'cc'.repeat(24)}`,
    ],
    [
      'Attestation with only a nonce',
      { type: 'Attestation', nonce: h('00ff') },
      `a1 ${tstr('Attestation')} a3 ${tstr('user_data')} f6 ${tstr('nonce')} 42 00ff ${tstr('public_key')} f6`,
    ],
  ];

  it.each(cases)('%s', (_name, req, hex) => {
    expect(toHex(encodeNsmRequest(req))).toBe(toHex(h(hex)));
  });

  it.each(cases)('the simulated NSM reads back %s', (_name, req, hex) => {
    const back = decodeNsmRequest(h(hex));
    expect(back).toEqual(Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined)));
  });

  it('round-trips random requests', () => {
    const bytes = (max: number) => fc.uint8Array({ maxLength: max });
    const req: fc.Arbitrary<NsmRequest> = fc.oneof(
      fc.constant<NsmRequest>({ type: 'GetRandom' }),
      fc.constant<NsmRequest>({ type: 'DescribeNSM' }),
      fc.integer({ min: 0, max: 0xffff }).map((index): NsmRequest => ({ type: 'DescribePCR', index })),
      fc.integer({ min: 0, max: 0xffff }).map((index): NsmRequest => ({ type: 'LockPCR', index })),
      fc.integer({ min: 0, max: 0xffff }).map((range): NsmRequest => ({ type: 'LockPCRs', range })),
      fc.record({ index: fc.integer({ min: 0, max: 0xffff }), data: bytes(512) }).map((r): NsmRequest => ({ type: 'ExtendPCR', ...r })),
      fc
        .record({ userData: bytes(1024), nonce: bytes(1024), publicKey: bytes(1024) }, { requiredKeys: [] })
        .map((r): NsmRequest => ({ type: 'Attestation', ...r })),
    );
    fc.assert(
      fc.property(req, (r) => {
        expect(decodeNsmRequest(encodeNsmRequest(r))).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });
});

describe('NSM request limits', () => {
  it('rejects PCR indexes and ranges outside u16', () => {
    for (const index of [-1, 65536, 1.5, Number.NaN]) {
      expect(codeOf(() => encodeNsmRequest({ type: 'DescribePCR', index }))).toBe('NSM_REQUEST_INVALID');
      expect(codeOf(() => encodeNsmRequest({ type: 'ExtendPCR', index, data: h('00') }))).toBe('NSM_REQUEST_INVALID');
      expect(codeOf(() => encodeNsmRequest({ type: 'LockPCR', index }))).toBe('NSM_REQUEST_INVALID');
      expect(codeOf(() => encodeNsmRequest({ type: 'LockPCRs', range: index }))).toBe('NSM_REQUEST_INVALID');
    }
  });

  it('accepts attestation fields of 1024 bytes and rejects 1025', () => {
    const max = new Uint8Array(1024);
    expect(encodeNsmRequest({ type: 'Attestation', userData: max, nonce: max, publicKey: max }).length).toBeLessThanOrEqual(NSM_REQUEST_MAX_SIZE);
    for (const field of ['userData', 'nonce', 'publicKey'] as const) {
      expect(codeOf(() => encodeNsmRequest({ type: 'Attestation', [field]: new Uint8Array(1025) }))).toBe('NSM_REQUEST_INVALID');
    }
  });

  it('accepts a request of exactly NSM_REQUEST_MAX_SIZE (4096) bytes and rejects one byte more', () => {
    // a1 + "ExtendPCR"(10) + a2 + "index"(6) + 00 + "data"(5) + 59 hhhh = 27 bytes of overhead.
    const fits = encodeNsmRequest({ type: 'ExtendPCR', index: 0, data: new Uint8Array(4096 - 27) });
    expect(fits.length).toBe(4096);
    expect(codeOf(() => encodeNsmRequest({ type: 'ExtendPCR', index: 0, data: new Uint8Array(4096 - 26) }))).toBe('NSM_REQUEST_INVALID');
  });

  it('the simulated NSM refuses requests it cannot parse', () => {
    const bad: [string, string][] = [
      ['unknown unit variant', tstr('Reboot')],
      ['struct variant sent as bare text', tstr('DescribePCR')],
      ['unknown struct variant', `a1 ${tstr('Reboot')} a0`],
      ['unknown field', `a1 ${tstr('DescribePCR')} a2 ${tstr('index')} 00 ${tstr('extra')} 00`],
      ['missing index', `a1 ${tstr('DescribePCR')} a0`],
      ['index too large', `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 1a 00010000`],
      ['negative index', `a1 ${tstr('DescribePCR')} a1 ${tstr('index')} 20`],
      ['ExtendPCR data as text', `a1 ${tstr('ExtendPCR')} a2 ${tstr('index')} 00 ${tstr('data')} ${tstr('x')}`],
      ['Attestation nonce as an integer', `a1 ${tstr('Attestation')} a1 ${tstr('nonce')} 01`],
      ['two variants', `a2 ${tstr('GetRandom')} f6 ${tstr('DescribeNSM')} f6`],
      ['an array', `82 00 00`],
      ['truncated', `a1 ${tstr('DescribePCR')} a1`],
      ['empty', ``],
    ];
    for (const [what, hex] of bad) {
      expect({ what, code: codeOf(() => decodeNsmRequest(h(hex))) }).toEqual({ what, code: 'NSM_REQUEST_INVALID' });
    }
    expect(codeOf(() => decodeNsmRequest(new Uint8Array(NSM_REQUEST_MAX_SIZE + 1)))).toBe('NSM_REQUEST_INVALID');
  });
});

describe('NSM responses: decoding', () => {
  const cases: [string, string, NsmResponse][] = [
    [
      'Attestation',
      `a1 ${tstr('Attestation')} a1 ${tstr('document')} 44 d2845820`,
      { type: 'Attestation', document: h('d2845820') },
    ],
    ['GetRandom', `a1 ${tstr('GetRandom')} a1 ${tstr('random')} 48 0102030405060708`, { type: 'GetRandom', random: h('0102030405060708') }],
    ['DescribePCR unlocked', `a1 ${tstr('DescribePCR')} a2 ${tstr('lock')} f4 ${tstr('data')} ${PCR48_HEX}`, { type: 'DescribePCR', lock: false, data: pcr48 }],
    ['DescribePCR locked', `a1 ${tstr('DescribePCR')} a2 ${tstr('lock')} f5 ${tstr('data')} ${PCR48_HEX}`, { type: 'DescribePCR', lock: true, data: pcr48 }],
    ['ExtendPCR', `a1 ${tstr('ExtendPCR')} a1 ${tstr('data')} ${PCR48_HEX}`, { type: 'ExtendPCR', data: pcr48 }],
    ['LockPCR (unit variant)', tstr('LockPCR'), { type: 'LockPCR' }],
    ['LockPCRs (unit variant)', tstr('LockPCRs'), { type: 'LockPCRs' }],
    [
      'DescribeNSM',
      `a1 ${tstr('DescribeNSM')} a7 ${tstr('version_major')} 01 ${tstr('version_minor')} 00 ${tstr('version_patch')} 00 ` +
        `${tstr('module_id')} ${tstr('i-0abc-enc01')} ${tstr('max_pcrs')} 18 20 ${tstr('locked_pcrs')} 86 00 01 02 03 04 08 ${tstr('digest')} ${tstr('SHA384')}`,
      {
        type: 'DescribeNSM',
        versionMajor: 1,
        versionMinor: 0,
        versionPatch: 0,
        moduleId: 'i-0abc-enc01',
        maxPcrs: 32,
        lockedPcrs: [0, 1, 2, 3, 4, 8],
        digest: 'SHA384',
      },
    ],
  ];

  it.each(cases)('%s', (_name, hex, expected) => {
    expect(decodeNsmResponse(h(hex))).toEqual(expected);
  });

  it.each(cases)('the simulated NSM encodes %s byte for byte', (_name, hex, response) => {
    expect(toHex(encodeNsmResponse(response))).toBe(toHex(h(hex)));
  });

  it('ignores fields it does not know, as serde does (a newer NSM may add some)', () => {
    const hex = `a1 ${tstr('GetRandom')} a2 ${tstr('random')} 41 07 ${tstr('entropy_source')} ${tstr('hw')}`;
    expect(decodeNsmResponse(h(hex))).toEqual({ type: 'GetRandom', random: h('07') });
  });

  it('accepts a response of exactly NSM_RESPONSE_MAX_SIZE (12288) bytes and rejects one byte more', () => {
    // a1 + "Attestation"(12) + a1 + "document"(9) + 59 hhhh = 26 bytes of overhead.
    const fits = encodeNsmResponse({ type: 'Attestation', document: new Uint8Array(NSM_RESPONSE_MAX_SIZE - 26).fill(7) });
    expect(fits.length).toBe(NSM_RESPONSE_MAX_SIZE);
    expect(decodeNsmResponse(fits)).toMatchObject({ type: 'Attestation' });
    const over = encodeNsmResponse({ type: 'Attestation', document: new Uint8Array(NSM_RESPONSE_MAX_SIZE - 25) });
    expect(codeOf(() => decodeNsmResponse(over))).toBe('NSM_RESPONSE_MALFORMED');
  });
});

describe('NSM error responses → typed errors', () => {
  const expected: Record<(typeof NSM_ERROR_CODES)[number], ErrorCode> = {
    Success: 'NSM_RESPONSE_MALFORMED',
    InvalidArgument: 'NSM_REQUEST_INVALID',
    InvalidIndex: 'NSM_REQUEST_INVALID',
    InvalidResponse: 'NSM_FAILED',
    ReadOnlyIndex: 'NSM_PCR_LOCKED',
    InvalidOperation: 'NSM_REQUEST_INVALID',
    BufferTooSmall: 'NSM_FAILED',
    InputTooLarge: 'NSM_REQUEST_INVALID',
    InternalError: 'NSM_FAILED',
  };

  it('knows every ErrorCode variant of aws-nitro-enclaves-nsm-api, in order', () => {
    expect([...NSM_ERROR_CODES]).toEqual(Object.keys(expected));
  });

  it.each(Object.entries(expected))('{"Error": "%s"} → %s', (nsmCode, code) => {
    const bytes = h(`a1 ${tstr('Error')} ${tstr(nsmCode)}`);
    const res = decodeNsmResponse(bytes);
    expect(res).toEqual({ type: 'Error', error: nsmCode });
    expect(toHex(encodeNsmResponse(res))).toBe(toHex(bytes));
    let thrown: unknown;
    try {
      expectNsmResponse('ExtendPCR', res);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TeegateError);
    expect((thrown as TeegateError).code).toBe(code);
    expect((thrown as TeegateError).message).toBe(`the NSM answered ExtendPCR with Error(${nsmCode})`);
    expect(nsmErrorToTeegateError(nsmCode as (typeof NSM_ERROR_CODES)[number], 'Attestation').code).toBe(code);
  });

  it('returns the matching success variant and rejects a variant that answers another request', () => {
    const res = decodeNsmResponse(h(`a1 ${tstr('GetRandom')} a1 ${tstr('random')} 41 07`));
    expect(expectNsmResponse('GetRandom', res).random).toEqual(h('07'));
    expect(codeOf(() => expectNsmResponse('Attestation', res))).toBe('NSM_RESPONSE_MALFORMED');
    expect(codeOf(() => expectNsmResponse('LockPCRs', decodeNsmResponse(h(tstr('LockPCR')))))).toBe('NSM_RESPONSE_MALFORMED');
  });
});

describe('malformed NSM responses → NSM_RESPONSE_MALFORMED', () => {
  const bad: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['truncated map', h(`a1 ${tstr('Attestation')} a1`)],
    ['trailing bytes', h(`${tstr('LockPCR')} 00`)],
    ['invalid UTF-8 variant name', h('62 c328')],
    ['a tagged item', h(`d8 18 ${tstr('LockPCR')}`)],
    ['an array', h('82 00 00')],
    ['an integer', h('00')],
    ['a map of two variants', h(`a2 ${tstr('LockPCR')} f6 ${tstr('LockPCRs')} f6`)],
    ['an empty map', h('a0')],
    ['an integer variant name', h('a1 00 a0')],
    ['an unknown unit variant', h(tstr('Reboot'))],
    ['an unknown struct variant', h(`a1 ${tstr('Reboot')} a0`)],
    ['a struct variant as bare text', h(tstr('Attestation'))],
    ['a struct variant whose body is not a map', h(`a1 ${tstr('Attestation')} 40`)],
    ['Attestation without document', h(`a1 ${tstr('Attestation')} a0`)],
    ['Attestation document as text', h(`a1 ${tstr('Attestation')} a1 ${tstr('document')} ${tstr('doc')}`)],
    ['Attestation empty document', h(`a1 ${tstr('Attestation')} a1 ${tstr('document')} 40`)],
    ['GetRandom empty', h(`a1 ${tstr('GetRandom')} a1 ${tstr('random')} 40`)],
    ['DescribePCR lock as integer', h(`a1 ${tstr('DescribePCR')} a2 ${tstr('lock')} 00 ${tstr('data')} ${PCR48_HEX}`)],
    ['DescribePCR 47-byte value', h(`a1 ${tstr('DescribePCR')} a2 ${tstr('lock')} f4 ${tstr('data')} 582f ${'00'.repeat(47)}`)],
    ['ExtendPCR 32-byte value', h(`a1 ${tstr('ExtendPCR')} a1 ${tstr('data')} 5820 ${'00'.repeat(32)}`)],
    ['ExtendPCR data missing', h(`a1 ${tstr('ExtendPCR')} a0`)],
    ['Error with an unknown code', h(`a1 ${tstr('Error')} ${tstr('Busy')}`)],
    ['Error with an integer code', h(`a1 ${tstr('Error')} 01`)],
    ['Error as bare text', h(tstr('Error'))],
    ['DescribeNSM digest unknown', h(`a1 ${tstr('DescribeNSM')} a7 ${tstr('version_major')} 01 ${tstr('version_minor')} 00 ${tstr('version_patch')} 00 ${tstr('module_id')} ${tstr('m')} ${tstr('max_pcrs')} 18 20 ${tstr('locked_pcrs')} 80 ${tstr('digest')} ${tstr('MD5')}`)],
    ['DescribeNSM locked_pcrs not u16', h(`a1 ${tstr('DescribeNSM')} a7 ${tstr('version_major')} 01 ${tstr('version_minor')} 00 ${tstr('version_patch')} 00 ${tstr('module_id')} ${tstr('m')} ${tstr('max_pcrs')} 18 20 ${tstr('locked_pcrs')} 81 20 ${tstr('digest')} ${tstr('SHA384')}`)],
    ['DescribeNSM missing module_id', h(`a1 ${tstr('DescribeNSM')} a6 ${tstr('version_major')} 01 ${tstr('version_minor')} 00 ${tstr('version_patch')} 00 ${tstr('max_pcrs')} 18 20 ${tstr('locked_pcrs')} 80 ${tstr('digest')} ${tstr('SHA384')}`)],
    ['a length bomb', h('a1 69 476574 52616e646f6d a1 66 72616e646f6d 5a ffffffff')],
    ['nesting beyond the limit', h('81'.repeat(8) + '00')],
    ['over NSM_RESPONSE_MAX_SIZE', new Uint8Array(NSM_RESPONSE_MAX_SIZE + 1)],
  ];

  it.each(bad)('%s', (_name, bytes) => {
    expect(codeOf(() => decodeNsmResponse(bytes))).toBe('NSM_RESPONSE_MALFORMED');
  });

  it('never throws anything but a typed error on random bytes or mutated responses', () => {
    const valid = [
      encodeNsmResponse({ type: 'DescribePCR', lock: true, data: pcr48 }),
      encodeNsmResponse({ type: 'Attestation', document: new Uint8Array(64).fill(1) }),
      encodeNsmResponse({ type: 'Error', error: 'InternalError' }),
    ];
    const mutated = fc
      .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([v, at, b]) => {
        const copy = v.slice();
        copy[at % copy.length] = b;
        return copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated, fc.constantFrom(...valid).map((v) => concatBytes(v, h('00')))), (bytes) => {
        const code = codeOf(() => decodeNsmResponse(bytes));
        expect(['no error', 'NSM_RESPONSE_MALFORMED']).toContain(code);
      }),
      { numRuns: 1000 },
    );
  });
});
