/**
 * The ONNX protobuf format (onnx/onnx.proto) as far as the enclave needs it: a writer for the
 * messages of small graphs (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto) and a strict reader of one message's top-level fields. Used to append a
 * reduction to a model's graph at load time (withLastAxisBest) and, in tests, to build tiny models
 * (testing/tiny-onnx.ts).
 *
 * Only the wire types ONNX uses are read: varint (0), 64-bit (1), length-delimited (2) and 32-bit
 * (5); groups, overlong varints and fields that run past their message are refused.
 */
import { concatBytes, fromUtf8, utf8 } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';

/** TensorProto.DataType values. */
export const ONNX_ELEMENT_TYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;
export type OnnxElementType = (typeof ONNX_ELEMENT_TYPE)[keyof typeof ONNX_ELEMENT_TYPE];

/** A graph input or output: a dimension is a fixed size or a symbolic name (dynamic); no shape: unknown rank. */
export interface ValueInfo {
  name: string;
  elemType: OnnxElementType;
  shape?: ReadonlyArray<number | string>;
}

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Defaults to `<optype>_<index in the graph spec>`. */
  name?: string;
  /** Integer attributes (e.g. ArgMax `axis`, `keepdims`). */
  intAttributes?: Record<string, number>;
  /** Integer-list attributes (e.g. ReduceMax `axes` before opset 18). */
  intsAttributes?: Record<string, readonly number[]>;
  /** Float attributes (e.g. HardSigmoid `alpha`, Clip `min` before opset 11), stored as float32. */
  floatAttributes?: Record<string, number>;
  /** Tensor attributes (a Constant node's `value`). */
  tensorAttributes?: Record<string, InitializerSpec>;
}

/** A constant FP32 or INT64 initializer stored as raw little-endian data. */
export interface InitializerSpec {
  name: string;
  elemType: typeof ONNX_ELEMENT_TYPE.FLOAT | typeof ONNX_ELEMENT_TYPE.INT64;
  dims: readonly number[];
  values: readonly number[];
}

// --- writer: varint (type 0) and length-delimited (type 2) fields ---

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value)); // negative int64 is ten bytes of two's complement
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

export function intField(field: number, value: number): number[] {
  return [...varint(field << 3), ...varint(value)];
}

export function bytesField(field: number, bytes: Uint8Array | readonly number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
}

/** A float field (wire type 5, fixed32 little-endian float32). */
export function float32Field(field: number, value: number): number[] {
  const f = new Uint8Array(4);
  new DataView(f.buffer).setFloat32(0, value, true);
  return [...varint((field << 3) | 5), ...f];
}

export function stringField(field: number, text: string): number[] {
  return bytesField(field, utf8(text));
}

export function message(...fields: number[][]): number[] {
  return fields.flat();
}

/** NodeProto, AttributeProto and TensorProto field numbers (onnx.proto), for the writer and readers. */
export const NODE_INPUT = 1;
export const NODE_OUTPUT = 2;
const NODE_NAME = 3;
export const NODE_OP_TYPE = 4;
export const NODE_ATTRIBUTE = 5;
export const NODE_DOMAIN = 7;
export const ATTRIBUTE_NAME = 1;
export const ATTRIBUTE_F = 2;
const ATTRIBUTE_I = 3;
export const ATTRIBUTE_T = 5;
const ATTRIBUTE_INTS_VALUES = 8;
export const ATTRIBUTE_TYPE = 20;
export const TENSOR_DIMS = 1;
export const TENSOR_DATA_TYPE = 2;
export const TENSOR_FLOAT_DATA = 4;
export const TENSOR_NAME = 8;
export const TENSOR_RAW_DATA = 9;

/** AttributeProto.AttributeType values used here. */
export const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_TENSOR = 4;
const ATTRIBUTE_INTS = 7;

/** An AttributeProto: its name, value fields and type. */
const attribute = (name: string, type: number, ...value: number[][]): number[] =>
  bytesField(NODE_ATTRIBUTE, message(stringField(ATTRIBUTE_NAME, name), ...value, intField(ATTRIBUTE_TYPE, type)));

function dimension(dim: number | string): number[] {
  return typeof dim === 'number' ? intField(1, dim) : stringField(2, dim);
}

/** A ValueInfoProto. */
export function encodeValueInfo(info: ValueInfo): number[] {
  const shape = info.shape === undefined ? [] : bytesField(2, message(...info.shape.map((d) => bytesField(1, dimension(d)))));
  const tensorType = message(intField(1, info.elemType), shape);
  return message(stringField(1, info.name), bytesField(2, bytesField(1, tensorType)));
}

/** A NodeProto in the default domain. */
export function encodeNode(spec: NodeSpec, index: number): number[] {
  const ints = Object.entries(spec.intAttributes ?? {}).map(([name, value]) => attribute(name, ATTRIBUTE_INT, intField(ATTRIBUTE_I, value)));
  const lists = Object.entries(spec.intsAttributes ?? {}).map(([name, values]) =>
    attribute(name, ATTRIBUTE_INTS, ...values.map((v) => intField(ATTRIBUTE_INTS_VALUES, v))),
  );
  const floats = Object.entries(spec.floatAttributes ?? {}).map(([name, value]) => attribute(name, ATTRIBUTE_FLOAT, float32Field(ATTRIBUTE_F, value)));
  const tensors = Object.entries(spec.tensorAttributes ?? {}).map(([name, tensor]) =>
    attribute(name, ATTRIBUTE_TENSOR, bytesField(ATTRIBUTE_T, encodeInitializer(tensor))),
  );
  return message(
    ...spec.inputs.map((name) => stringField(NODE_INPUT, name)),
    ...spec.outputs.map((name) => stringField(NODE_OUTPUT, name)),
    stringField(NODE_NAME, spec.name ?? `${spec.opType.toLowerCase()}_${index}`),
    stringField(NODE_OP_TYPE, spec.opType),
    ...ints,
    ...lists,
    ...floats,
    ...tensors,
  );
}

/** A TensorProto with raw little-endian data. */
export function encodeInitializer(spec: InitializerSpec): number[] {
  const isFloat = spec.elemType === ONNX_ELEMENT_TYPE.FLOAT;
  const raw = new Uint8Array(spec.values.length * (isFloat ? 4 : 8));
  const view = new DataView(raw.buffer);
  spec.values.forEach((v, i) => (isFloat ? view.setFloat32(i * 4, v, true) : view.setBigInt64(i * 8, BigInt(v), true)));
  return message(
    ...spec.dims.map((d) => intField(TENSOR_DIMS, d)),
    intField(TENSOR_DATA_TYPE, spec.elemType),
    stringField(TENSOR_NAME, spec.name),
    bytesField(TENSOR_RAW_DATA, raw),
  );
}

// --- reader ---

/** One top-level field of a message: where it starts and, for length-delimited fields, its bytes. */
export interface ProtoField {
  readonly field: number;
  readonly wireType: 0 | 1 | 2 | 5;
  /** Offset of the field's key in the message. */
  readonly start: number;
  /** Offset just past the field. */
  readonly end: number;
  /** Varint fields: the value (exact up to 2^53). */
  readonly value?: number;
  /** Length-delimited fields: the payload (a view, no copy). */
  readonly bytes?: Uint8Array;
}

export function malformed(what: string, detail: string): TeegateError {
  return new TeegateError('MODEL_LOAD_FAILED', `${what} is not a valid ONNX protobuf: ${detail}`);
}

function readVarint(bytes: Uint8Array, offset: number, what: string): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const byte = bytes[offset + i];
    if (byte === undefined) throw malformed(what, `a varint at byte ${offset} runs past the end`);
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, offset + i + 1];
  }
  throw malformed(what, `a varint at byte ${offset} is longer than 10 bytes`);
}

/** The top-level fields of one protobuf message, in order. */
export function protoFields(bytes: Uint8Array, what: string): ProtoField[] {
  const fields: ProtoField[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const start = offset;
    const [key, afterKey] = readVarint(bytes, offset, what);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw malformed(what, `field number 0 at byte ${start}`);
    if (wireType === 0) {
      const [value, next] = readVarint(bytes, afterKey, what);
      fields.push({ field, wireType, start, end: next, value });
      offset = next;
    } else if (wireType === 2) {
      const [length, payload] = readVarint(bytes, afterKey, what);
      if (length > bytes.length - payload) throw malformed(what, `field ${field} at byte ${start} runs past the end`);
      fields.push({ field, wireType, start, end: payload + length, bytes: bytes.subarray(payload, payload + length) });
      offset = payload + length;
    } else if (wireType === 1 || wireType === 5) {
      const end = afterKey + (wireType === 1 ? 8 : 4);
      if (end > bytes.length) throw malformed(what, `field ${field} at byte ${start} runs past the end`);
      fields.push({ field, wireType, start, end });
      offset = end;
    } else {
      throw malformed(what, `wire type ${wireType} at byte ${start}`);
    }
  }
  return fields;
}

/** A string field's text: '' when the field is absent; refused when it is not length-delimited or not UTF-8. */
export function utf8Field(f: ProtoField | undefined, what: string): string {
  if (f === undefined) return '';
  if (f.bytes === undefined) throw malformed(what, `field ${f.field} at byte ${f.start} is not a string`);
  try {
    return fromUtf8(f.bytes);
  } catch {
    throw malformed(what, `field ${f.field} is not UTF-8`);
  }
}

// --- a reduction appended to a model's graph ---

/** ModelProto and GraphProto field numbers (onnx.proto). */
export const MODEL_GRAPH = 7;
const MODEL_OPSET_IMPORT = 8;
export const GRAPH_NODE = 1;
export const GRAPH_INITIALIZER = 5;
export const GRAPH_OUTPUT = 12;

/** The model's fields and its one graph field (MODEL_LOAD_FAILED unless there is exactly one). */
export function modelGraph(model: Uint8Array, what: string): { top: ProtoField[]; graph: ProtoField & { bytes: Uint8Array } } {
  const top = protoFields(model, what);
  const graphs = top.filter((f): f is ProtoField & { bytes: Uint8Array } => f.field === MODEL_GRAPH && f.bytes !== undefined);
  if (graphs.length !== 1) throw malformed(what, `it has ${graphs.length} graphs`);
  return { top, graph: graphs[0]! };
}

/** The names of a graph's outputs (GraphProto fields as protoFields reads them). */
export function graphOutputNames(graphFields: readonly ProtoField[], what: string): string[] {
  return graphFields
    .filter((f) => f.field === GRAPH_OUTPUT)
    .map((f) => {
      if (f.bytes === undefined) throw malformed(what, `a graph output at byte ${f.start} is not a message`);
      return utf8Field(protoFields(f.bytes, what).find((x) => x.field === 1), what);
    });
}

/** The model bytes with its graph field's payload replaced by `graph`. */
export function withGraph(model: Uint8Array, graphField: ProtoField, ...graph: Uint8Array[]): Uint8Array {
  const length = graph.reduce((n, part) => n + part.length, 0);
  const header = Uint8Array.from([...varint((MODEL_GRAPH << 3) | 2), ...varint(length)]);
  return concatBytes(model.subarray(0, graphField.start), header, ...graph, model.subarray(graphField.end));
}

/** Whether an operator set domain is ONNX's default one ("" or "ai.onnx"). */
export const isDefaultDomain = (domain: string): boolean => domain === '' || domain === 'ai.onnx';

/** The model's version of the default operator set (domain "" or "ai.onnx"); `top`: its fields, if already read. */
export function defaultOpsetVersion(model: Uint8Array, what: string, top = protoFields(model, what)): number {
  const versions = top
    .filter((f) => f.field === MODEL_OPSET_IMPORT && f.bytes !== undefined)
    .map((f) => {
      const fields = protoFields(f.bytes!, what);
      return { domain: utf8Field(fields.find((x) => x.field === 1), what), version: fields.find((x) => x.field === 2)?.value };
    })
    .filter((o) => isDefaultDomain(o.domain));
  const version = versions[0]?.version;
  if (versions.length !== 1 || version === undefined) throw malformed(what, 'it does not import the default operator set exactly once');
  return version;
}

/** A model with a reduction appended, and the names of the reduction's two outputs. */
export interface ModelWithBest {
  readonly model: Uint8Array;
  /** The graph's original (only) output, which the reduction reads. */
  readonly output: string;
  /** INT64: per row, the index of the first largest element along `axis`. */
  readonly indices: string;
  /** FLOAT: per row, that largest element (the output must be float32). */
  readonly values: string;
}

/**
 * Appends ArgMax and ReduceMax over `axis` (keepdims 0) of the graph's only output, as two more
 * graph outputs, so a session can fetch just the per-row winners: onnxruntime computes them
 * without handing the full output to JavaScript (1.5 MB per line for the OCR model). The model's
 * own nodes, weights and output are untouched (its SHA-256 is checked before this, on the bytes as
 * shipped). ReduceMax takes its axes as an attribute before opset 18 and as an input from 18 on.
 */
export function withLastAxisBest(model: Uint8Array, axis: number, what: string): ModelWithBest {
  const { top, graph } = modelGraph(model, what);
  const outputs = graphOutputNames(protoFields(graph.bytes, what), what);
  const output = outputs[0];
  if (outputs.length !== 1 || output === undefined || output === '') {
    throw new TeegateError('MODEL_LOAD_FAILED', `${what}: a reduction needs exactly one graph output, the model has ${outputs.length}`);
  }
  const opset = defaultOpsetVersion(model, what, top);
  const indices = `${output}:teegate_best_index`;
  const values = `${output}:teegate_best_value`;
  const axesName = `${output}:teegate_axes`;
  const axesAsInput = opset >= 18;
  const appended = Uint8Array.from(
    message(
      bytesField(GRAPH_NODE, encodeNode({ opType: 'ArgMax', name: indices, inputs: [output], outputs: [indices], intAttributes: { axis, keepdims: 0 } }, 0)),
      bytesField(
        GRAPH_NODE,
        encodeNode(
          axesAsInput
            ? { opType: 'ReduceMax', name: values, inputs: [output, axesName], outputs: [values], intAttributes: { keepdims: 0 } }
            : { opType: 'ReduceMax', name: values, inputs: [output], outputs: [values], intAttributes: { keepdims: 0 }, intsAttributes: { axes: [axis] } },
          0,
        ),
      ),
      ...(axesAsInput ? [bytesField(GRAPH_INITIALIZER, encodeInitializer({ name: axesName, elemType: ONNX_ELEMENT_TYPE.INT64, dims: [1], values: [axis] }))] : []),
      bytesField(GRAPH_OUTPUT, encodeValueInfo({ name: indices, elemType: ONNX_ELEMENT_TYPE.INT64 })),
      bytesField(GRAPH_OUTPUT, encodeValueInfo({ name: values, elemType: ONNX_ELEMENT_TYPE.FLOAT })),
    ),
  );
  // Repeated fields of a message may come in any order, so the graph is the old one plus the new
  // fields; only its length prefix changes.
  return { model: withGraph(model, graph, graph.bytes, appended), output, indices, values };
}
