import { errorCodeOf as code } from '../support/error-code';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { type ErrorCode } from '../../attestation/errors';
import { receiptDigest } from '../../enclave/enclave-service';
import {
  canonicalTensorBytes,
  float16Bits,
  parseInferTensor,
  parseInferTensors,
  tensorRawBytes,
  tensorsDigest,
  type InferTensor,
} from '../../attestation/tensors';


const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const salt = Uint8Array.from({ length: 32 }, (_, i) => i);

/** Canonical framing built independently of the implementation (node Buffer, written by hand). */
function frame(tensors: { name: string; datatype: string; shape: number[]; raw: Buffer }[]): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const u64 = (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const parts = [u32(tensors.length)];
  for (const t of tensors) {
    parts.push(u32(Buffer.byteLength(t.name)), Buffer.from(t.name), u32(t.datatype.length), Buffer.from(t.datatype));
    parts.push(u32(t.shape.length), ...t.shape.map(u64), u64(t.raw.length), t.raw);
  }
  return Buffer.concat(parts);
}

describe('canonical tensors', () => {
  it('matches a known-answer digest computed independently with node:crypto', async () => {
    const raw = Buffer.alloc(8);
    raw.writeFloatLE(1, 0);
    raw.writeFloatLE(2.5, 4);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from(salt), frame([{ name: 'x', datatype: 'FP32', shape: [2], raw }])]))
      .digest('hex');
    const tensor: InferTensor = { name: 'x', datatype: 'FP32', shape: [2], data: [1, 2.5] };
    expect(await tensorsDigest(salt, [tensor])).toBe(expected);
    // Pinned so other implementations (CLI, browser, third parties) can check themselves against it.
    expect(expected).toBe('c187cf9d3bcfb78a87ebdf1e3c25e1ed0beaa2115bb3baea8083f77258759754');
  });

  it('frames a BYTES tensor of 200,000 elements (no argument spread of one part per element)', () => {
    const tensor: InferTensor = { name: 'x', datatype: 'BYTES', shape: [200_000], data: Array.from({ length: 200_000 }, () => 'a') };
    const bytes = canonicalTensorBytes([tensor]);
    // count, name, datatype, rank, one dim, raw length, then a u32 length and one byte per element
    expect(bytes.length).toBe(4 + 4 + 1 + 4 + 5 + 4 + 8 + 8 + 200_000 * 5);
  });

  it('gives the same digest whatever the JSON number formatting', async () => {
    const a = JSON.parse('{"name":"x","datatype":"FP32","shape":[2],"data":[1, 2.0]}') as InferTensor;
    const b = JSON.parse('{"name":"x","datatype":"FP32","shape":[2],"data":[1.0, 2]}') as InferTensor;
    const c = JSON.parse('{"name":"x","datatype":"FP32","shape":[2],"data":[1e0, 0.2e1]}') as InferTensor;
    const d = await tensorsDigest(salt, [a]);
    expect(await tensorsDigest(salt, [b])).toBe(d);
    expect(await tensorsDigest(salt, [c])).toBe(d);
    // An FP32 value that differs only beyond FP32 precision is the same FP32 number.
    const e = JSON.parse('{"name":"x","datatype":"FP32","shape":[2],"data":[1.00000000001, 2]}') as InferTensor;
    expect(await tensorsDigest(salt, [e])).toBe(d);
    expect(await tensorsDigest(salt, [{ ...a, data: [1, 2.5] }])).not.toBe(d);
    // JSON.stringify writes -0 as 0, so negative zero is canonicalised to zero.
    expect(await tensorsDigest(salt, [{ ...a, data: [-0, 2] }])).toBe(await tensorsDigest(salt, [{ ...a, data: [0, 2] }]));
  });

  it('gives the same bytes for flat and nested data', () => {
    const flat: InferTensor = { name: 'm', datatype: 'INT32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] };
    const nested: InferTensor = { ...flat, data: [[1, 2, 3], [4, 5, 6]] };
    expect(hex(canonicalTensorBytes([nested]))).toBe(hex(canonicalTensorBytes([flat])));
    const deep: InferTensor = { name: 'd', datatype: 'UINT8', shape: [2, 1, 2], data: [[[1, 2]], [[3, 4]]] };
    expect(parseInferTensor(deep).data).toEqual([1, 2, 3, 4]);
  });

  it('sorts by the UTF-8 bytes of the names, whatever the order given', () => {
    const t = (name: string): InferTensor => ({ name, datatype: 'BOOL', shape: [1], data: [true] });
    // U+FF61 is EF BD A1 in UTF-8 and sorts before U+1F600 (F0 ...), although its UTF-16 unit is larger.
    const names = ['b', '\u{1F600}', 'a', '\uFF61', 'B'];
    const bytes = canonicalTensorBytes(names.map(t));
    const reversed = canonicalTensorBytes([...names].reverse().map(t));
    expect(hex(reversed)).toBe(hex(bytes));
    const raw = Buffer.from([1]);
    const expected = ['B', 'a', 'b', '\uFF61', '\u{1F600}'].map((name) => ({ name, datatype: 'BOOL', shape: [1], raw }));
    expect(hex(bytes)).toBe(frame(expected).toString('hex'));
  });

  it('frames BYTES elements as u32le length and UTF-8 bytes, and shapes as u64be', () => {
    const t: InferTensor = { name: 's', datatype: 'BYTES', shape: [3], data: ['ab', '', 'é'] };
    expect(hex(tensorRawBytes(t))).toBe('02000000' + '6162' + '00000000' + '02000000' + 'c3a9');
    const raw = Buffer.from(tensorRawBytes(t));
    expect(hex(canonicalTensorBytes([t]))).toBe(frame([{ name: 's', datatype: 'BYTES', shape: [3], raw }]).toString('hex'));
    const scalar: InferTensor = { name: 'z', datatype: 'INT8', shape: [], data: [-1] };
    expect(hex(canonicalTensorBytes([scalar]))).toBe('00000001' + '00000001' + '7a' + '00000004' + '494e5438' + '00000000' + '0000000000000001' + 'ff');
  });

  it('encodes every datatype as little-endian raw bytes', () => {
    const raw = (datatype: InferTensor['datatype'], data: InferTensor['data']): string =>
      hex(tensorRawBytes({ name: 'v', datatype, shape: [data.length], data }));
    expect(raw('BOOL', [true, false])).toBe('0100');
    expect(raw('UINT8', [0, 255])).toBe('00ff');
    expect(raw('UINT16', [258])).toBe('0201');
    expect(raw('UINT32', [0xdeadbeef])).toBe('efbeadde');
    expect(raw('UINT64', [2 ** 53 - 1])).toBe('ffffffffffff1f00');
    expect(raw('INT8', [-128, 127])).toBe('807f');
    expect(raw('INT16', [-2])).toBe('feff');
    expect(raw('INT32', [-2147483648])).toBe('00000080');
    expect(raw('INT64', [-2])).toBe('feffffffffffffff');
    expect(raw('FP16', [1, -2, 65504, 2 ** -24, 0])).toBe('003c' + '00c0' + 'ff7b' + '0100' + '0000');
    expect(raw('FP32', [1])).toBe('0000803f');
    expect(raw('FP64', [1])).toBe('000000000000f03f');
  });

  it('rounds FP16 to nearest even', () => {
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and the next half: even (1)
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, rounds up to even
    expect(float16Bits(65519)).toBe(0x7bff);
    expect(float16Bits(65520)).toBeNull(); // rounds to infinity
    expect(float16Bits(-0)).toBe(0x8000);
    expect(float16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // subnormal rounding up into the smallest normal
  });

  it('changes the digest with the salt and with any byte of the tensors', async () => {
    const t: InferTensor = { name: 'x', datatype: 'INT64', shape: [1], data: [7] };
    const d = await tensorsDigest(salt, [t]);
    expect(await tensorsDigest(new Uint8Array(32), [t])).not.toBe(d);
    expect(await tensorsDigest(salt, [{ ...t, data: [8] }])).not.toBe(d);
    expect(await tensorsDigest(salt, [{ ...t, shape: [1, 1], data: [7] }])).not.toBe(d);
    expect(await tensorsDigest(salt, [{ ...t, datatype: 'INT32' }])).not.toBe(d);
    expect(await tensorsDigest(salt, [{ ...t, name: 'y' }])).not.toBe(d);
    // parameters are not part of the canonical form
    expect(await tensorsDigest(salt, [{ ...t, parameters: { content_type: 'np' } }])).toBe(d);
  });

  it("equals the enclave's synchronous receipt digest for every datatype, several tensors and any salt", async () => {
    const tensors: InferTensor[] = [
      { name: 'z', datatype: 'BYTES', shape: [2], data: ['héllo', ''] },
      { name: 'a', datatype: 'FP16', shape: [2], data: [1, -2] },
      { name: 'b', datatype: 'BOOL', shape: [1, 2], data: [[true, false]] },
      { name: 'c', datatype: 'INT64', shape: [1], data: [-(2 ** 53) + 1] },
      { name: 'd', datatype: 'FP64', shape: [0], data: [] },
    ];
    for (const s of [salt, new Uint8Array(32), Uint8Array.from({ length: 32 }, () => 0xff)]) {
      expect(receiptDigest(s, tensors)).toBe(await tensorsDigest(s, tensors));
      expect(receiptDigest(s, tensors.slice(1))).toBe(await tensorsDigest(s, tensors.slice(1)));
    }
    expect(() => receiptDigest(salt, [{ name: 'x', datatype: 'INT8', shape: [2], data: [1] }])).toThrow(expect.objectContaining({ code: 'TENSOR_DATA_LENGTH_MISMATCH' }));
  });

  it('gives the same digest after a JSON round trip and for nested data (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 6, maxLength: 6 }),
        async (values) => {
          const flat: InferTensor = { name: 'p', datatype: 'FP32', shape: [2, 3], data: values };
          const nested: InferTensor = { ...flat, data: [values.slice(0, 3), values.slice(3)] };
          const roundTrip = JSON.parse(JSON.stringify(nested)) as InferTensor;
          const d = await tensorsDigest(salt, [flat]);
          expect(await tensorsDigest(salt, [roundTrip])).toBe(d);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('tensor validation', () => {
  const ok = { name: 'x', datatype: 'FP32', shape: [2], data: [1, 2] };
  const cases: [string, unknown, ErrorCode][] = [
    ['not an object', [1], 'TENSOR_INVALID'],
    ['null', null, 'TENSOR_INVALID'],
    ['empty name', { ...ok, name: '' }, 'TENSOR_INVALID'],
    ['name not a string', { ...ok, name: 3 }, 'TENSOR_INVALID'],
    ['name with a lone surrogate', { ...ok, name: 'a\uD800' }, 'TENSOR_INVALID'],
    ['name longer than 256 bytes', { ...ok, name: 'n'.repeat(257) }, 'TENSOR_INVALID'],
    ['unknown datatype', { ...ok, datatype: 'FLOAT32' }, 'TENSOR_INVALID'],
    ['a datatype nested 10,000 arrays deep', { ...ok, datatype: JSON.parse(`${'['.repeat(10_000)}${']'.repeat(10_000)}`) as unknown }, 'TENSOR_INVALID'],
    ['missing datatype', { name: 'x', shape: [2], data: [1, 2] }, 'TENSOR_INVALID'],
    ['shape not an array', { ...ok, shape: 2 }, 'TENSOR_INVALID'],
    ['negative dimension', { ...ok, shape: [-1] }, 'TENSOR_INVALID'],
    ['fractional dimension', { ...ok, shape: [1.5] }, 'TENSOR_INVALID'],
    ['dimension as a string', { ...ok, shape: ['2'] }, 'TENSOR_INVALID'],
    ['rank 9', { ...ok, shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] }, 'TENSOR_INVALID'],
    ['data not an array', { ...ok, data: 1 }, 'TENSOR_INVALID'],
    ['data missing', { name: 'x', datatype: 'FP32', shape: [2] }, 'TENSOR_INVALID'],
    ['mixed nesting', { ...ok, shape: [2, 2], data: [[1, 2], 3] }, 'TENSOR_INVALID'],
    ['flat data with a nested element', { ...ok, shape: [4], data: [1, 2, [3], 4] }, 'TENSOR_INVALID'],
    ['nested deeper than the shape', { ...ok, shape: [2, 1], data: [[[1]], [[2]]] }, 'TENSOR_INVALID'],
    ['nested data for a rank-0 tensor', { ...ok, shape: [], data: [[1]] }, 'TENSOR_INVALID'],
    ['string in FP32', { ...ok, data: [1, '2'] }, 'TENSOR_INVALID'],
    ['null in FP32', { ...ok, data: [1, null] }, 'TENSOR_INVALID'],
    ['NaN in FP64', { ...ok, datatype: 'FP64', data: [1, NaN] }, 'TENSOR_INVALID'],
    ['FP32 out of range', { ...ok, data: [1, 1e39] }, 'TENSOR_INVALID'],
    ['FP16 out of range', { ...ok, datatype: 'FP16', data: [1, 70000] }, 'TENSOR_INVALID'],
    ['fraction in INT32', { ...ok, datatype: 'INT32', data: [1, 2.5] }, 'TENSOR_INVALID'],
    ['UINT8 256', { ...ok, datatype: 'UINT8', data: [1, 256] }, 'TENSOR_INVALID'],
    ['INT8 -129', { ...ok, datatype: 'INT8', data: [1, -129] }, 'TENSOR_INVALID'],
    ['negative UINT64', { ...ok, datatype: 'UINT64', data: [1, -1] }, 'TENSOR_INVALID'],
    ['INT64 beyond 2^53', { ...ok, datatype: 'INT64', data: [1, 2 ** 60] }, 'TENSOR_INVALID'],
    ['number as BOOL', { ...ok, datatype: 'BOOL', data: [1, 0] }, 'TENSOR_INVALID'],
    ['number as BYTES', { ...ok, datatype: 'BYTES', data: ['a', 1] }, 'TENSOR_INVALID'],
    ['BYTES with a lone surrogate', { ...ok, datatype: 'BYTES', data: ['a', '\uDC00'] }, 'TENSOR_INVALID'],
    ['parameters not an object', { ...ok, parameters: [1] }, 'TENSOR_INVALID'],
    ['parameter value an object', { ...ok, parameters: { a: {} } }, 'TENSOR_INVALID'],
    ['flat data too short', { ...ok, data: [1] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['flat data too long', { ...ok, data: [1, 2, 3] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['nested row too short', { ...ok, shape: [2, 2], data: [[1, 2], [3]] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['nested with too many rows', { ...ok, shape: [1, 2], data: [[1, 2], [3, 4]] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['empty data for a scalar', { ...ok, shape: [], data: [] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['64 MiB of FP32', { ...ok, shape: [4096, 4096], data: [] }, 'TENSOR_TOO_LARGE'],
    ['a dimension of 2^52', { ...ok, shape: [2 ** 52], data: [] }, 'TENSOR_TOO_LARGE'],
  ];
  it.each(cases)('rejects %s', (_label, value, expected) => {
    expect(code(() => parseInferTensor(value))).toBe(expected);
  });

  it('names a bad datatype briefly in its message, however long or deep it is', () => {
    const message = (datatype: unknown): string => {
      try {
        parseInferTensor({ ...ok, datatype });
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(message('FLOAT32')).toBe('tensor "x": unknown datatype "FLOAT32"');
    expect(message('F'.repeat(1_000_000))).toBe(`tensor "x": unknown datatype "${'F'.repeat(64)}"… (1000000 characters)`);
    expect(message(JSON.parse(`${'['.repeat(10_000)}${']'.repeat(10_000)}`))).toBe('tensor "x": unknown datatype an array');
    expect(message({ t: 1 })).toBe('tensor "x": unknown datatype a value of type object');
    expect(message(undefined)).toBe('tensor "x": unknown datatype undefined');
  });

  it('accepts the edge values of every datatype and empty tensors', () => {
    const accept = (value: unknown): void => expect(code(() => parseInferTensor(value))).toBe('no error');
    accept({ name: 'a', datatype: 'INT64', shape: [2], data: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] });
    accept({ name: 'a', datatype: 'UINT32', shape: [2], data: [0, 0xffffffff] });
    accept({ name: 'a', datatype: 'FP32', shape: [0], data: [] });
    accept({ name: 'a', datatype: 'FP32', shape: [2, 0], data: [[], []] });
    accept({ name: 'a', datatype: 'FP32', shape: [0, 2 ** 52], data: [] });
    accept({ name: 'a', datatype: 'FP16', shape: [1], data: [65504] });
    accept({ name: 'a', datatype: 'BYTES', shape: [], data: ['scalar'], parameters: { x: 1, y: 'z', b: true } });
  });

  it('copies untrusted input instead of keeping references', () => {
    const input = { name: 'x', datatype: 'FP32', shape: [2], data: [1, 2] };
    const parsed = parseInferTensor(input);
    input.data[0] = 9;
    input.shape[0] = 9;
    expect(parsed.data).toEqual([1, 2]);
    expect(parsed.shape).toEqual([2]);
  });

  it('rejects lists that are not arrays, too long, with repeated names or too large together', () => {
    const t = (name: string): unknown => ({ name, datatype: 'BOOL', shape: [1], data: [true] });
    expect(code(() => parseInferTensors({}))).toBe('TENSOR_INVALID');
    expect(code(() => parseInferTensors(Array.from({ length: 64 }, (_, i) => t(`t${i}`))))).toBe('no error');
    expect(code(() => parseInferTensors(Array.from({ length: 65 }, (_, i) => t(`t${i}`))))).toBe('TENSOR_INVALID');
    expect(code(() => parseInferTensors([t('a'), t('b'), t('a')]))).toBe('TENSOR_INVALID');
    const big = 'x'.repeat(9 * 1024 * 1024);
    const bytes = (name: string): unknown => ({ name, datatype: 'BYTES', shape: [1], data: [big] });
    expect(code(() => parseInferTensors([bytes('a')]))).toBe('no error');
    expect(code(() => parseInferTensors([bytes('a'), bytes('b')]))).toBe('TENSOR_TOO_LARGE');
    expect(code(() => canonicalTensorBytes([bytes('a'), bytes('b')] as InferTensor[]))).toBe('TENSOR_TOO_LARGE');
  });

  it('validates before digesting, so untrusted JSON can be passed straight in', async () => {
    const bad = { name: 'x', datatype: 'FP32', shape: [2], data: [1] } as InferTensor;
    await expect(tensorsDigest(salt, [bad])).rejects.toMatchObject({ code: 'TENSOR_DATA_LENGTH_MISMATCH' });
  });
});
