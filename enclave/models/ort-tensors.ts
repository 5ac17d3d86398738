/** Conversions between OIP tensors (flat JSON data) and onnxruntime tensors. */
import { Tensor } from 'onnxruntime-node';
import { TeegateError } from '../../attestation/errors';
import { float16Bits, type InferTensor, type OipDatatype } from '../../attestation/tensors';

const ORT_TO_OIP: Record<string, OipDatatype> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

/** The OIP datatype of an onnxruntime element type, or undefined (int4, uint4, ...). */
export function oipDatatypeOf(ortType: string): OipDatatype | undefined {
  return Object.prototype.hasOwnProperty.call(ORT_TO_OIP, ortType) ? ORT_TO_OIP[ortType] : undefined;
}

/** An onnxruntime tensor holding a validated OIP tensor (flat data, as parseInferTensor returns it). */
export function toOrtTensor(t: InferTensor): Tensor {
  const numbers = t.data as number[];
  const dims = t.shape;
  switch (t.datatype) {
    case 'BOOL': return new Tensor('bool', Uint8Array.from(t.data as boolean[], (b) => (b ? 1 : 0)), dims);
    case 'UINT8': return new Tensor('uint8', Uint8Array.from(numbers), dims);
    case 'UINT16': return new Tensor('uint16', Uint16Array.from(numbers), dims);
    case 'UINT32': return new Tensor('uint32', Uint32Array.from(numbers), dims);
    case 'UINT64': return new Tensor('uint64', BigUint64Array.from(numbers, (v) => BigInt(v)), dims);
    case 'INT8': return new Tensor('int8', Int8Array.from(numbers), dims);
    case 'INT16': return new Tensor('int16', Int16Array.from(numbers), dims);
    case 'INT32': return new Tensor('int32', Int32Array.from(numbers), dims);
    case 'INT64': return new Tensor('int64', BigInt64Array.from(numbers, (v) => BigInt(v)), dims);
    case 'FP16': return new Tensor('float16', Uint16Array.from(numbers, (v) => float16Bits(v) as number), dims);
    case 'FP32': return new Tensor('float32', Float32Array.from(numbers), dims);
    case 'FP64': return new Tensor('float64', Float64Array.from(numbers), dims);
    case 'BYTES': return new Tensor('string', t.data as string[], dims);
  }
}

/** Value of IEEE 754 binary16 bits. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function notJson(name: string, what: string): TeegateError {
  return new TeegateError('MODEL_OUTPUT_UNREPRESENTABLE', `model output "${name}" holds ${what}, which JSON cannot carry`);
}

/** An OIP tensor (flat data) from a model output; non-finite floats and int64 beyond 2^53 are refused. */
export function fromOrtTensor(name: string, tensor: Tensor): InferTensor {
  const datatype = oipDatatypeOf(tensor.type);
  if (datatype === undefined) throw new TeegateError('INTERNAL', `model output "${name}" has unsupported type ${tensor.type}`);
  const shape = tensor.dims.map(Number);
  const source = tensor.data;
  let data: InferTensor['data'];
  if (datatype === 'BYTES') {
    data = [...(source as string[])];
  } else if (datatype === 'BOOL') {
    data = Array.from(source as Uint8Array, (v) => v !== 0);
  } else if (datatype === 'INT64' || datatype === 'UINT64') {
    data = Array.from(source as BigInt64Array | BigUint64Array, (v) => {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw notJson(name, `${v}`);
      return Number(v);
    });
  } else {
    const values = datatype === 'FP16' ? Array.from(source as Uint16Array, float16Value) : Array.from(source as Float32Array);
    for (const v of values) if (!Number.isFinite(v)) throw notJson(name, `${v}`);
    data = values;
  }
  return { name, datatype, shape, data };
}
