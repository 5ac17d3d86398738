/**
 * Open Inference Protocol (KServe v2) tensors: strict validation of JSON tensors, their raw bytes,
 * and the canonical form whose salted SHA-256 a receipt carries for the inputs and the outputs.
 * Browser-safe: Uint8Array, DataView and WebCrypto only.
 *
 * A JSON tensor is `{name, datatype, shape, data, parameters?}`. `data` holds the elements in
 * row-major order, either flat (`[1, 2, 3, 4]` for shape [2, 2]) or nested exactly as the shape
 * says (`[[1, 2], [3, 4]]`). BOOL elements are `true`/`false`, BYTES elements are strings, every
 * other datatype takes JSON numbers. Tensors are untrusted: everything is checked and copied into a
 * fresh object (flat data) before use.
 *
 * Raw bytes of a tensor (the layout of the OIP binary tensor data extension): elements row-major,
 * little-endian, each in the native size of its datatype, no padding; BOOL is one byte 0 or 1, FP16
 * is IEEE 754 binary16 (round to nearest even); a BYTES element is u32le(length) || UTF-8 bytes.
 *
 * Canonical tensors (what `tensorsDigest` hashes after the salt), all integers big-endian:
 *
 *   canonical = u32be(count) || tensor_1 || ... || tensor_count
 *   tensor    = u32be(len(name)) || name (UTF-8)
 *               u32be(len(datatype)) || datatype (ASCII, e.g. "FP32")
 *               u32be(rank) || u64be(dim_1) || ... || u64be(dim_rank)
 *               u64be(len(raw)) || raw (as above)
 *
 * Tensors are sorted by the UTF-8 bytes of their names (names are unique); `parameters` are not
 * part of the canonical form. Because numbers are converted to their datatype before encoding,
 * `[1, 2.0]` and `[1.0, 2]` (or flat and nested data) give the same bytes; negative zero is
 * encoded as zero, since JSON.stringify cannot carry it.
 */
import { compareBytes, concatByteList, concatBytes, isWellFormedText, sha256, toHex, utf8 } from './bytes';
import { TeegateError, describeUntrusted } from './errors';

export const OIP_DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;
export type OipDatatype = (typeof OIP_DATATYPES)[number];

/** One element as JSON carries it: a number, a boolean (BOOL) or a string (BYTES). */
export type TensorElement = number | boolean | string;
/** Tensor data: flat elements, or arrays nested as the shape says. */
export type TensorData = TensorElement | readonly TensorData[];
/** OIP `$parameters`: a map of string, number or boolean values. */
export type TensorParameters = Record<string, string | number | boolean>;

export interface InferTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: TensorData[];
  parameters?: TensorParameters;
}

export const TENSOR_LIMITS = {
  /** Tensors in one request or response. */
  maxTensors: 64,
  /** Dimensions of one tensor. */
  maxRank: 8,
  /** Raw bytes of all tensors of one request or response together. */
  maxRawBytes: 16 * 1024 * 1024,
  /** UTF-8 bytes of a tensor name. */
  maxNameBytes: 256,
} as const;

const ELEMENT_SIZE: Record<OipDatatype, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 4, // the smallest element: an empty string is its 4-byte length alone
};

const INTEGER_RANGE: Partial<Record<OipDatatype, readonly [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};


export function isOipDatatype(value: unknown): value is OipDatatype {
  return typeof value === 'string' && (OIP_DATATYPES as readonly string[]).includes(value);
}

function invalid(label: string, message: string): TeegateError {
  return new TeegateError('TENSOR_INVALID', `${label}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Number of elements of a shape; throws TENSOR_TOO_LARGE when it exceeds what a request may hold. */
export function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > TENSOR_LIMITS.maxRawBytes) {
      throw new TeegateError('TENSOR_TOO_LARGE', `shape [${shape.join(', ')}] has too many elements`);
    }
  }
  return count;
}

function parseName(value: unknown, label: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(label, 'name must be a non-empty string');
  if (!isWellFormedText(value)) throw invalid(label, 'name is not well-formed Unicode');
  if (utf8(value).length > TENSOR_LIMITS.maxNameBytes) {
    throw invalid(label, `name is longer than ${TENSOR_LIMITS.maxNameBytes} bytes`);
  }
  return value;
}

function parseShape(value: unknown, label: string): number[] {
  if (!Array.isArray(value)) throw invalid(label, 'shape must be an array');
  if (value.length > TENSOR_LIMITS.maxRank) {
    throw invalid(label, `rank ${value.length} exceeds ${TENSOR_LIMITS.maxRank}`);
  }
  return value.map((dim: unknown, i) => {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw invalid(label, `shape[${i}] must be a non-negative integer`);
    }
    return dim;
  });
}

/** Flat data as given, or nested data walked along the shape; at most `count` elements are read. */
function flattenData(value: unknown, shape: readonly number[], count: number, label: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(label, 'data must be an array');
  const nested = shape.length > 0 && value.some((element) => Array.isArray(element));
  if (!nested) {
    if (value.length !== count) {
      throw new TeegateError(
        'TENSOR_DATA_LENGTH_MISMATCH',
        `${label}: data has ${value.length} elements, shape [${shape.join(', ')}] needs ${count}`,
      );
    }
    return value;
  }
  const out: unknown[] = [];
  // The position of the node being walked; its text (data[1][2]) is built only for an error.
  const at: number[] = [];
  const path = (): string => at.map((i) => `[${i}]`).join('');
  const walk = (node: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw invalid(label, `data${path()} is nested deeper than the shape`);
      out.push(node);
      return;
    }
    if (!Array.isArray(node)) throw invalid(label, `data${path()} mixes nested and flat elements`);
    if (node.length !== shape[depth]) {
      throw new TeegateError(
        'TENSOR_DATA_LENGTH_MISMATCH',
        `${label}: data${path()} has ${node.length} elements, dimension ${depth} is ${shape[depth]}`,
      );
    }
    for (let i = 0; i < node.length; i++) {
      at.push(i);
      walk(node[i], depth + 1);
      at.pop();
    }
  };
  walk(value, 0);
  return out;
}

function checkElement(datatype: OipDatatype, element: unknown, label: string, index: number): TensorElement {
  if (datatype === 'BOOL') {
    if (typeof element !== 'boolean') throw invalid(label, `data element ${index} must be a boolean`);
    return element;
  }
  if (datatype === 'BYTES') {
    if (typeof element !== 'string') throw invalid(label, `data element ${index} must be a string`);
    if (!isWellFormedText(element)) throw invalid(label, `data element ${index} is not well-formed Unicode`);
    return element;
  }
  if (typeof element !== 'number' || !Number.isFinite(element)) {
    throw invalid(label, `data element ${index} must be a finite number`);
  }
  const range = INTEGER_RANGE[datatype];
  if (range) {
    if (!Number.isInteger(element) || element < range[0] || element > range[1]) {
      throw invalid(label, `data element ${index} (${element}) is not an exact ${datatype} value`);
    }
  } else if (datatype === 'FP32' && !Number.isFinite(Math.fround(element))) {
    throw invalid(label, `data element ${index} (${element}) is out of FP32 range`);
  } else if (datatype === 'FP16' && float16Bits(element) === null) {
    throw invalid(label, `data element ${index} (${element}) is out of FP16 range`);
  }
  // JSON.stringify writes -0 as 0: the canonical value of negative zero is zero.
  return element === 0 ? 0 : element;
}

function parseParameters(value: unknown, label: string): TensorParameters {
  if (!isPlainObject(value)) throw invalid(label, 'parameters must be an object');
  const out: TensorParameters = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      throw invalid(label, `parameter "${key}" must be a string, number or boolean`);
    }
    out[key] = v;
  }
  return out;
}

/**
 * Strictly validates one JSON tensor (attacker-controlled) and returns a fresh copy with flat data.
 * Throws TENSOR_INVALID, TENSOR_DATA_LENGTH_MISMATCH or TENSOR_TOO_LARGE.
 */
export function parseInferTensor(value: unknown, label = 'tensor'): InferTensor {
  if (!isPlainObject(value)) throw invalid(label, 'must be an object');
  const name = parseName(value['name'], label);
  const named = `${label} "${name}"`;
  const datatype = value['datatype'];
  if (!isOipDatatype(datatype)) throw invalid(named, `unknown datatype ${describeUntrusted(datatype)}`);
  const shape = parseShape(value['shape'], named);
  const count = elementCount(shape);
  if (count * ELEMENT_SIZE[datatype] > TENSOR_LIMITS.maxRawBytes) {
    throw new TeegateError('TENSOR_TOO_LARGE', `${named}: more than ${TENSOR_LIMITS.maxRawBytes} raw bytes`);
  }
  const flat = flattenData(value['data'], shape, count, named);
  const data = flat.map((element, i) => checkElement(datatype, element, named, i));
  const tensor: InferTensor = { name, datatype, shape, data };
  if (value['parameters'] !== undefined) tensor.parameters = parseParameters(value['parameters'], named);
  return tensor;
}

/**
 * Validates a list of JSON tensors (a request's `inputs` or a response's `outputs`): at most 64,
 * unique names, at most 16 MiB of raw bytes together. Returns fresh copies with flat data.
 */
export function parseInferTensors(value: unknown, label = 'tensors'): InferTensor[] {
  if (!Array.isArray(value)) throw invalid(label, 'must be an array');
  if (value.length > TENSOR_LIMITS.maxTensors) {
    throw invalid(label, `${value.length} tensors exceed the limit of ${TENSOR_LIMITS.maxTensors}`);
  }
  const tensors = value.map((v: unknown, i) => parseInferTensor(v, `${label}[${i}]`));
  const names = new Set<string>();
  let total = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw invalid(label, `tensor name "${t.name}" appears twice`);
    names.add(t.name);
    total += rawSize(t);
    if (total > TENSOR_LIMITS.maxRawBytes) {
      throw new TeegateError('TENSOR_TOO_LARGE', `${label}: more than ${TENSOR_LIMITS.maxRawBytes} raw bytes together`);
    }
  }
  return tensors;
}

function rawSize(tensor: InferTensor): number {
  if (tensor.datatype !== 'BYTES') return tensor.data.length * ELEMENT_SIZE[tensor.datatype];
  let size = 0;
  for (const element of tensor.data) size += 4 + utf8(element as string).length;
  return size;
}

/** IEEE 754 binary16 bits of a number, rounded to nearest even; null if it overflows to infinity. */
export function float16Bits(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const x = Math.abs(value);
  if (x === 0) return sign;
  if (x < 2 ** -14) return sign | roundHalfEven(x / 2 ** -24); // subnormal (1024 becomes the smallest normal)
  let exponent = Math.floor(Math.log2(x));
  if (2 ** exponent > x) exponent--;
  if (2 ** (exponent + 1) <= x) exponent++;
  let mantissa = roundHalfEven((x / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent++;
  }
  if (exponent > 15) return null;
  return sign | ((exponent + 15) << 10) | mantissa;
}

function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const diff = v - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Raw bytes of a tensor in the OIP binary layout (see the file comment). Validates the tensor first. */
export function tensorRawBytes(tensor: InferTensor): Uint8Array {
  return encodeRaw(parseInferTensor(tensor));
}

function encodeRaw(tensor: InferTensor): Uint8Array {
  const { datatype, data } = tensor;
  if (datatype === 'BYTES') {
    const parts: Uint8Array[] = [];
    for (const element of data) {
      const bytes = utf8(element as string);
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, bytes.length, true);
      parts.push(length, bytes);
    }
    return concatByteList(parts);
  }
  const size = ELEMENT_SIZE[datatype];
  const out = new Uint8Array(data.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number | boolean;
    const at = i * size;
    switch (datatype) {
      case 'BOOL': view.setUint8(at, v ? 1 : 0); break;
      case 'UINT8': view.setUint8(at, v as number); break;
      case 'UINT16': view.setUint16(at, v as number, true); break;
      case 'UINT32': view.setUint32(at, v as number, true); break;
      case 'UINT64': view.setBigUint64(at, BigInt(v as number), true); break;
      case 'INT8': view.setInt8(at, v as number); break;
      case 'INT16': view.setInt16(at, v as number, true); break;
      case 'INT32': view.setInt32(at, v as number, true); break;
      case 'INT64': view.setBigInt64(at, BigInt(v as number), true); break;
      case 'FP16': view.setUint16(at, float16Bits(v as number) as number, true); break;
      case 'FP32': view.setFloat32(at, v as number, true); break;
      case 'FP64': view.setFloat64(at, v as number, true); break;
    }
  }
  return out;
}


function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

/**
 * The canonical bytes of a set of tensors (framing in the file comment). Validates every tensor
 * (untrusted callers may pass JSON straight in) and enforces the request limits.
 */
export function canonicalTensorBytes(tensors: readonly InferTensor[]): Uint8Array {
  return canonicalBytesOfParsed(parseInferTensors(tensors));
}

/**
 * canonicalTensorBytes of tensors that parseInferTensors returned and nobody changed since: the
 * enclave's request inputs, parsed once when the request arrives, are not validated again.
 */
export function canonicalBytesOfParsed(checked: readonly InferTensor[]): Uint8Array {
  const entries = checked.map((t) => ({ name: utf8(t.name), tensor: t }));
  entries.sort((a, b) => compareBytes(a.name, b.name));
  const parts: Uint8Array[] = [u32be(entries.length)];
  for (const { name, tensor } of entries) {
    const datatype = utf8(tensor.datatype);
    const raw = encodeRaw(tensor);
    parts.push(u32be(name.length), name, u32be(datatype.length), datatype, u32be(tensor.shape.length));
    for (const dim of tensor.shape) parts.push(u64be(dim));
    parts.push(u64be(raw.length), raw);
  }
  return concatByteList(parts);
}

/** Hex SHA-256(salt || canonicalTensorBytes(tensors)): the `input`/`output` digest of a receipt. */
export async function tensorsDigest(salt: Uint8Array, tensors: readonly InferTensor[]): Promise<string> {
  return toHex(await sha256(concatBytes(salt, canonicalTensorBytes(tensors))));
}
