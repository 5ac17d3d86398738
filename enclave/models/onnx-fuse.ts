/**
 * Hard-swish fusion: a graph rewrite applied at load time to models the enclave derives a graph
 * from (the OCR kind, next to withLastAxisBest). Exporters for opsets below 14 (ONNX has no
 * HardSwish op before it) write hard-swish, `x * relu6(x + 3) / 6`, as four nodes:
 *
 *     a = Add(x, 3)   c = Clip(a, 0, 6)   m = Mul(x, c)   y = Div(m, 6)
 *
 * onnxruntime runs each of them as its own pass over the activation. This rewrites the four into
 *
 *     c = HardSigmoid(x, alpha = 1/6, beta = 0.5)   y = Mul(x, c)
 *
 * (HardSigmoid exists from opset 6: max(0, min(1, x/6 + 0.5)) is relu6(x + 3) / 6 exactly in real
 * arithmetic; in float32 the two differ by rounding only). The shipped PP-OCRv4 model has 28 of them;
 * its session.run takes 8-10% less time. A match needs exactly that shape: the constants are
 * scalars (Constant nodes or initializers) equal to 3, 0, 6 and 6, Clip's bounds are its attributes
 * (before opset 11) or constant inputs (from 11), Add's other operand is the same tensor Mul takes,
 * and a, c and m are read by nothing else and are not graph outputs. Anything else is left as it
 * is. Constant nodes only the rewritten nodes read are removed.
 *
 * Reads the model with onnx-proto.ts's strict reader; every field it does not rewrite is copied as
 * it was. Untrusted bytes are refused with MODEL_LOAD_FAILED, as there.
 */
import { concatBytes, fromUtf8 } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';
import { ONNX_ELEMENT_TYPE, bytesField, defaultOpsetVersion, encodeNode, protoFields, varint, type NodeSpec, type ProtoField } from './onnx-proto';

/** ModelProto, GraphProto, NodeProto, AttributeProto and TensorProto field numbers (onnx.proto). */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_F = 2;
const ATTRIBUTE_T = 5;
const ATTRIBUTE_TYPE = 20;
/** AttributeProto.AttributeType FLOAT. */
const FLOAT_ATTRIBUTE = 1;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;

function malformed(what: string, detail: string): TeegateError {
  return new TeegateError('MODEL_LOAD_FAILED', `${what} is not a valid ONNX protobuf: ${detail}`);
}

/** A string field's text (refused if it is not length-delimited or not UTF-8). */
function text(f: ProtoField, what: string): string {
  if (f.bytes === undefined) throw malformed(what, `field ${f.field} at byte ${f.start} is not a string`);
  try {
    return fromUtf8(f.bytes);
  } catch {
    throw malformed(what, `field ${f.field} is not UTF-8`);
  }
}

/** The 32-bit payload of a fixed32 field of `bytes` as a float32. */
function fixed32Float(bytes: Uint8Array, f: ProtoField): number {
  return new DataView(bytes.buffer, bytes.byteOffset + f.end - 4, 4).getFloat32(0, true);
}

interface Node {
  /** The node's field in the graph (its bytes are copied as they are unless it is rewritten). */
  readonly field: ProtoField;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Attributes by name: their fields. */
  readonly attributes: ReadonlyMap<string, ProtoField[]>;
}

function readNode(field: ProtoField, what: string): Node {
  const fields = protoFields(field.bytes!, what);
  const strings = (n: number) => fields.filter((f) => f.field === n).map((f) => text(f, what));
  const attributes = new Map<string, ProtoField[]>();
  for (const a of fields.filter((f) => f.field === NODE_ATTRIBUTE)) {
    if (a.bytes === undefined) throw malformed(what, 'a node attribute is not a message');
    const parts = protoFields(a.bytes, what);
    const name = parts.find((p) => p.field === ATTRIBUTE_NAME);
    if (name !== undefined) attributes.set(text(name, what), parts.map((p) => ({ ...p, bytes: p.bytes ?? a.bytes!.subarray(p.start, p.end) })));
  }
  return { field, opType: strings(NODE_OP_TYPE)[0] ?? '', domain: strings(NODE_DOMAIN)[0] ?? '', inputs: strings(NODE_INPUT), outputs: strings(NODE_OUTPUT), attributes };
}

/** The value of a float32 scalar TensorProto (no dims, or all 1), or undefined for anything else. */
function scalarOf(tensor: Uint8Array, what: string): number | undefined {
  const fields = protoFields(tensor, what);
  if (fields.find((f) => f.field === TENSOR_DATA_TYPE)?.value !== ONNX_ELEMENT_TYPE.FLOAT) return undefined;
  const dims = fields.filter((f) => f.field === TENSOR_DIMS);
  if (dims.some((d) => d.wireType !== 0 || d.value !== 1)) return undefined; // packed dims are not read: no match
  const raw = fields.filter((f) => f.field === TENSOR_RAW_DATA);
  const floats = fields.filter((f) => f.field === TENSOR_FLOAT_DATA);
  const b = raw[0]?.bytes;
  if (raw.length === 1 && floats.length === 0 && b?.length === 4) {
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }
  if (raw.length === 0 && floats.length === 1) {
    const f = floats[0]!;
    if (f.wireType === 5) return fixed32Float(tensor, f);
    if (f.wireType === 2 && f.bytes!.length === 4) return new DataView(f.bytes!.buffer, f.bytes!.byteOffset, 4).getFloat32(0, true);
  }
  return undefined;
}

/** A float attribute's value (type FLOAT), or undefined. */
function floatAttribute(node: Node, name: string): number | undefined {
  const parts = node.attributes.get(name);
  const f = parts?.find((p) => p.field === ATTRIBUTE_F && p.wireType === 5);
  const type = parts?.find((p) => p.field === ATTRIBUTE_TYPE)?.value;
  if (f === undefined || (type !== undefined && type !== FLOAT_ATTRIBUTE)) return undefined;
  return new DataView(f.bytes!.buffer, f.bytes!.byteOffset + f.bytes!.length - 4, 4).getFloat32(0, true);
}

/** A node as a GraphProto node field. */
const nodeField = (spec: NodeSpec): Uint8Array => Uint8Array.from(bytesField(GRAPH_NODE, encodeNode(spec, 0)));

export interface FusedModel {
  readonly model: Uint8Array;
  /** How many hard-swish patterns were rewritten. */
  readonly fused: number;
}

/** `model` with every hard-swish pattern (see above) rewritten; the same bytes when it has none. */
export function fuseHardSwish(model: Uint8Array, what: string): FusedModel {
  const top = protoFields(model, what);
  const graphs = top.filter((f) => f.field === MODEL_GRAPH && f.bytes !== undefined);
  if (graphs.length !== 1) throw malformed(what, `it has ${graphs.length} graphs`);
  const graph = graphs[0]!;
  const opset = defaultOpsetVersion(model, what, top);
  const graphFields = protoFields(graph.bytes!, what);
  const nodes = graphFields.filter((f) => f.field === GRAPH_NODE).map((f) => {
    if (f.bytes === undefined) throw malformed(what, 'a graph node is not a message');
    return readNode(f, what);
  });
  const defaultDomain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';

  const producer = new Map<string, Node>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const readers = new Map<string, number>();
  const read = (name: string, by = 1) => readers.set(name, (readers.get(name) ?? 0) + by);
  for (const n of nodes) for (const i of n.inputs) if (i !== '') read(i);
  for (const f of graphFields.filter((x) => x.field === GRAPH_OUTPUT)) {
    if (f.bytes === undefined) throw malformed(what, `a graph output at byte ${f.start} is not a message`);
    const name = protoFields(f.bytes, what).find((x) => x.field === 1);
    if (name !== undefined) read(text(name, what), Infinity); // a graph output is never rewritten away
  }
  const initializers = new Map<string, Uint8Array>();
  for (const f of graphFields.filter((x) => x.field === GRAPH_INITIALIZER && x.bytes !== undefined)) {
    const name = protoFields(f.bytes!, what).find((x) => x.field === TENSOR_NAME);
    if (name !== undefined) initializers.set(text(name, what), f.bytes!);
  }
  /** The float scalar a tensor name holds, if it is a Constant node's or an initializer's. */
  const constant = (name: string | undefined): number | undefined => {
    if (name === undefined) return undefined;
    const init = initializers.get(name);
    if (init !== undefined) return scalarOf(init, what);
    const node = producer.get(name);
    if (node?.opType !== 'Constant' || !defaultDomain(node) || node.attributes.size !== 1) return undefined;
    const t = node.attributes.get('value')?.find((p) => p.field === ATTRIBUTE_T);
    return t?.bytes === undefined ? undefined : scalarOf(t.bytes, what);
  };
  const onlyReader = (name: string, op: string): Node | undefined => {
    if (readers.get(name) !== 1) return undefined;
    const reader = nodes.find((n) => n.inputs.includes(name));
    return reader?.opType === op && defaultDomain(reader) ? reader : undefined;
  };

  const drop = new Set<Node>();
  const replace = new Map<Node, Uint8Array>();
  /** Tensors the removed nodes read: a Constant node among their producers may be left unread. */
  const released = new Set<string>();
  let fused = 0;
  for (const clip of nodes) {
    if (clip.opType !== 'Clip' || !defaultDomain(clip) || clip.outputs.length !== 1) continue;
    const bounds = opset < 11 ? [floatAttribute(clip, 'min'), floatAttribute(clip, 'max')] : [constant(clip.inputs[1]), constant(clip.inputs[2])];
    if (bounds[0] !== 0 || bounds[1] !== 6 || (opset < 11 ? clip.inputs.length !== 1 || clip.attributes.size !== 2 : clip.inputs.length !== 3 || clip.attributes.size !== 0)) continue;
    const add = producer.get(clip.inputs[0]!);
    if (add?.opType !== 'Add' || !defaultDomain(add) || add.inputs.length !== 2 || add.attributes.size !== 0 || readers.get(add.outputs[0]!) !== 1) continue;
    const threeAt = [0, 1].find((i) => constant(add.inputs[i]) === 3);
    if (threeAt === undefined) continue;
    const x = add.inputs[1 - threeAt]!;
    const c = clip.outputs[0]!;
    const mul = onlyReader(c, 'Mul');
    if (mul === undefined || mul.inputs.length !== 2 || mul.attributes.size !== 0 || !mul.inputs.includes(x) || mul.outputs.length !== 1) continue;
    const div = onlyReader(mul.outputs[0]!, 'Div');
    if (div === undefined || div.inputs[0] !== mul.outputs[0] || constant(div.inputs[1]) !== 6 || div.attributes.size !== 0 || div.outputs.length !== 1) continue;
    if ([add, clip, mul, div].some((n) => drop.has(n) || replace.has(n))) continue;
    const y = div.outputs[0]!;
    drop.add(add).add(div);
    replace.set(clip, nodeField({ opType: 'HardSigmoid', name: `${y}:teegate_hard_sigmoid`, inputs: [x], outputs: [c], floatAttributes: { alpha: 1 / 6, beta: 0.5 } }));
    replace.set(mul, nodeField({ opType: 'Mul', name: `${y}:teegate_hard_swish`, inputs: [x, c], outputs: [y] }));
    for (const n of [add, clip, div]) {
      for (const i of n.inputs) {
        if (i === '') continue;
        read(i, -1);
        released.add(i);
      }
    }
    read(x); // HardSigmoid reads it in Add's place
    fused++;
  }
  if (fused === 0) return { model, fused };
  // Constant nodes that only the rewritten nodes read.
  for (const name of released) {
    const n = producer.get(name);
    if (n?.opType === 'Constant' && defaultDomain(n) && n.outputs.every((o) => (readers.get(o) ?? 0) === 0)) drop.add(n);
  }

  const nodeOf = new Map(nodes.map((n) => [n.field, n]));
  const parts = graphFields.flatMap((f) => {
    const node = nodeOf.get(f);
    if (node !== undefined && drop.has(node)) return [];
    if (node !== undefined && replace.has(node)) return [replace.get(node)!];
    return [graph.bytes!.subarray(f.start, f.end)];
  });
  const body = concatBytes(...parts);
  const header = Uint8Array.from([...varint((MODEL_GRAPH << 3) | 2), ...varint(body.length)]);
  return { model: concatBytes(model.subarray(0, graph.start), header, body, model.subarray(graph.end)), fused };
}
