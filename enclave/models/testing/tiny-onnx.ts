/**
 * Tiny valid ONNX models built in memory for fast tests, by hand-encoding the ONNX protobuf
 * messages (onnx/onnx.proto: ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto, TypeProto, TensorShapeProto). IR version 8, default-domain opset 13.
 */

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

/** A graph input or output: a dimension is a fixed size or a symbolic name (dynamic). */
export interface ValueInfo {
  name: string;
  elemType: OnnxElementType;
  shape: ReadonlyArray<number | string>;
}

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Integer attributes (e.g. ArgMax `axis`, `keepdims`). */
  intAttributes?: Record<string, number>;
}

/** A constant FP32 or INT64 initializer stored as raw little-endian data. */
export interface InitializerSpec {
  name: string;
  elemType: typeof ONNX_ELEMENT_TYPE.FLOAT | typeof ONNX_ELEMENT_TYPE.INT64;
  dims: readonly number[];
  values: readonly number[];
}

export interface GraphSpec {
  name: string;
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  nodes: readonly NodeSpec[];
  initializers?: readonly InitializerSpec[];
}

// --- protobuf wire format: varint (type 0) and length-delimited (type 2) fields only ---

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

function intField(field: number, value: number): number[] {
  return [...varint(field << 3), ...varint(value)];
}

function bytesField(field: number, bytes: Uint8Array | readonly number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
}

function stringField(field: number, text: string): number[] {
  return bytesField(field, new TextEncoder().encode(text));
}

function message(...fields: number[][]): number[] {
  return fields.flat();
}

// --- ONNX messages ---

function dimension(dim: number | string): number[] {
  return typeof dim === 'number' ? intField(1, dim) : stringField(2, dim);
}

function valueInfo(info: ValueInfo): number[] {
  const shape = message(...info.shape.map((d) => bytesField(1, dimension(d))));
  const tensorType = message(intField(1, info.elemType), bytesField(2, shape));
  return message(stringField(1, info.name), bytesField(2, bytesField(1, tensorType)));
}

function node(spec: NodeSpec, index: number): number[] {
  const attributes = Object.entries(spec.intAttributes ?? {}).map(([name, value]) =>
    bytesField(5, message(stringField(1, name), intField(3, value), intField(20, 2 /* INT */))),
  );
  return message(
    ...spec.inputs.map((name) => stringField(1, name)),
    ...spec.outputs.map((name) => stringField(2, name)),
    stringField(3, `${spec.opType.toLowerCase()}_${index}`),
    stringField(4, spec.opType),
    ...attributes,
  );
}

function initializer(spec: InitializerSpec): number[] {
  const isFloat = spec.elemType === ONNX_ELEMENT_TYPE.FLOAT;
  const raw = new Uint8Array(spec.values.length * (isFloat ? 4 : 8));
  const view = new DataView(raw.buffer);
  spec.values.forEach((v, i) => (isFloat ? view.setFloat32(i * 4, v, true) : view.setBigInt64(i * 8, BigInt(v), true)));
  return message(
    ...spec.dims.map((d) => intField(1, d)),
    intField(2, spec.elemType),
    stringField(8, spec.name),
    bytesField(9, raw),
  );
}

/** Serialises a ModelProto (IR version 8, opset 13) holding the given graph. */
export function buildOnnxModel(graph: GraphSpec): Uint8Array {
  const graphProto = message(
    ...graph.nodes.map((n, i) => bytesField(1, node(n, i))),
    stringField(2, graph.name),
    ...(graph.initializers ?? []).map((init) => bytesField(5, initializer(init))),
    ...graph.inputs.map((v) => bytesField(11, valueInfo(v))),
    ...graph.outputs.map((v) => bytesField(12, valueInfo(v))),
  );
  const opset = message(stringField(1, ''), intField(2, 13));
  return Uint8Array.from(
    message(intField(1, 8), stringField(2, 'teegate-tiny-onnx'), bytesField(7, graphProto), bytesField(8, opset)),
  );
}

const { FLOAT, INT64, BOOL, STRING } = ONNX_ELEMENT_TYPE;

/** `y = x * 2 + 1`, x and y FP32 of shape [N, 4]. */
export function affineModel(): Uint8Array {
  return buildOnnxModel({
    name: 'affine',
    inputs: [{ name: 'x', elemType: FLOAT, shape: ['N', 4] }],
    outputs: [{ name: 'y', elemType: FLOAT, shape: ['N', 4] }],
    initializers: [
      { name: 'two', elemType: FLOAT, dims: [], values: [2] },
      { name: 'one', elemType: FLOAT, dims: [], values: [1] },
    ],
    nodes: [
      { opType: 'Mul', inputs: ['x', 'two'], outputs: ['scaled'] },
      { opType: 'Add', inputs: ['scaled', 'one'], outputs: ['y'] },
    ],
  });
}

/** `index = argmax(scores, axis 1)`, scores FP32 [N, 4] → index INT64 [N]. */
export function argmaxModel(): Uint8Array {
  return buildOnnxModel({
    name: 'argmax',
    inputs: [{ name: 'scores', elemType: FLOAT, shape: ['N', 4] }],
    outputs: [{ name: 'index', elemType: INT64, shape: ['N'] }],
    nodes: [{ opType: 'ArgMax', inputs: ['scores'], outputs: ['index'], intAttributes: { axis: 1, keepdims: 0 } }],
  });
}

/** `sum = a + b`, INT64 of shape [N]. */
export function addInt64Model(): Uint8Array {
  return buildOnnxModel({
    name: 'add-int64',
    inputs: [
      { name: 'a', elemType: INT64, shape: ['N'] },
      { name: 'b', elemType: INT64, shape: ['N'] },
    ],
    outputs: [{ name: 'sum', elemType: INT64, shape: ['N'] }],
    nodes: [{ opType: 'Add', inputs: ['a', 'b'], outputs: ['sum'] }],
  });
}

/** `flags = not(bits)` (BOOL [2, 2]) and `echo = text` (BYTES [N]): covers BOOL and BYTES. */
export function notAndEchoModel(): Uint8Array {
  return buildOnnxModel({
    name: 'not-and-echo',
    inputs: [
      { name: 'bits', elemType: BOOL, shape: [2, 2] },
      { name: 'text', elemType: STRING, shape: ['N'] },
    ],
    outputs: [
      { name: 'flags', elemType: BOOL, shape: [2, 2] },
      { name: 'echo', elemType: STRING, shape: ['N'] },
    ],
    nodes: [
      { opType: 'Not', inputs: ['bits'], outputs: ['flags'] },
      { opType: 'Identity', inputs: ['text'], outputs: ['echo'] },
    ],
  });
}
