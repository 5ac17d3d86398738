/**
 * Tiny valid ONNX models built in memory for fast tests, with the ONNX protobuf writer of
 * ../onnx-proto.ts. IR version 8, default-domain opset 13.
 */
import {
  ONNX_ELEMENT_TYPE,
  bytesField,
  encodeInitializer,
  encodeNode,
  encodeValueInfo,
  intField,
  message,
  stringField,
  type InitializerSpec,
  type NodeSpec,
  type ValueInfo,
} from '../onnx-proto';

export interface GraphSpec {
  name: string;
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  nodes: readonly NodeSpec[];
  initializers?: readonly InitializerSpec[];
}

/** Serialises a ModelProto (IR version 8; default-domain opset 13 unless given) holding the graph. */
export function buildOnnxModel(graph: GraphSpec, opsetVersion = 13): Uint8Array {
  const graphProto = message(
    ...graph.nodes.map((n, i) => bytesField(1, encodeNode(n, i))),
    stringField(2, graph.name),
    ...(graph.initializers ?? []).map((init) => bytesField(5, encodeInitializer(init))),
    ...graph.inputs.map((v) => bytesField(11, encodeValueInfo(v))),
    ...graph.outputs.map((v) => bytesField(12, encodeValueInfo(v))),
  );
  const opset = message(stringField(1, ''), intField(2, opsetVersion));
  return Uint8Array.from(
    message(intField(1, 8), stringField(2, 'teegate-tiny-onnx'), bytesField(7, graphProto), bytesField(8, opset)),
  );
}

const { FLOAT, INT64, BOOL, STRING } = ONNX_ELEMENT_TYPE;

/** `y = x * 2 + 1`, x and y FP32 of shape [N, width] (Mul and Add exist at every opset). */
export function affineModel(width = 4, opsetVersion = 13): Uint8Array {
  return buildOnnxModel(
    {
      name: 'affine',
      inputs: [{ name: 'x', elemType: FLOAT, shape: ['N', width] }],
      outputs: [{ name: 'y', elemType: FLOAT, shape: ['N', width] }],
      initializers: [
        { name: 'two', elemType: FLOAT, dims: [], values: [2] },
        { name: 'one', elemType: FLOAT, dims: [], values: [1] },
      ],
      nodes: [
        { opType: 'Mul', inputs: ['x', 'two'], outputs: ['scaled'] },
        { opType: 'Add', inputs: ['scaled', 'one'], outputs: ['y'] },
      ],
    },
    opsetVersion,
  );
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
