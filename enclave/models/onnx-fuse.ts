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
import {
  ATTRIBUTE_F,
  ATTRIBUTE_FLOAT,
  ATTRIBUTE_NAME,
  ATTRIBUTE_T,
  ATTRIBUTE_TYPE,
  GRAPH_INITIALIZER,
  GRAPH_NODE,
  NODE_ATTRIBUTE,
  NODE_DOMAIN,
  NODE_INPUT,
  NODE_OP_TYPE,
  NODE_OUTPUT,
  ONNX_ELEMENT_TYPE,
  TENSOR_DATA_TYPE,
  TENSOR_DIMS,
  TENSOR_FLOAT_DATA,
  TENSOR_NAME,
  TENSOR_RAW_DATA,
  bytesField,
  defaultOpsetVersion,
  encodeNode,
  graphOutputNames,
  isDefaultDomain,
  malformed,
  modelGraph,
  protoFields,
  utf8Field,
  withGraph,
  type NodeSpec,
  type ProtoField,
} from './onnx-proto';

/** The little-endian float32 at `offset` of `bytes`. */
const float32At = (bytes: Uint8Array, offset: number): number => new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getFloat32(0, true);

/** An attribute: its message and that message's fields (a fixed32 field's value is its last 4 bytes). */
interface Attribute {
  readonly bytes: Uint8Array;
  readonly fields: readonly ProtoField[];
}

interface Node {
  /** The node's field in the graph (its bytes are copied as they are unless it is rewritten). */
  readonly field: ProtoField;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, Attribute>;
}

function readNode(field: ProtoField, what: string): Node {
  if (field.bytes === undefined) throw malformed(what, `a graph node at byte ${field.start} is not a message`);
  const fields = protoFields(field.bytes, what);
  const strings = (n: number) => fields.filter((f) => f.field === n).map((f) => utf8Field(f, what));
  const attributes = new Map<string, Attribute>();
  for (const a of fields.filter((f) => f.field === NODE_ATTRIBUTE)) {
    if (a.bytes === undefined) throw malformed(what, `a node attribute at byte ${a.start} is not a message`);
    const parts = protoFields(a.bytes, what);
    attributes.set(utf8Field(parts.find((p) => p.field === ATTRIBUTE_NAME), what), { bytes: a.bytes, fields: parts });
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
  const [one] = [...raw, ...floats];
  if (raw.length + floats.length !== 1 || one === undefined) return undefined;
  if (one.wireType === 5) return float32At(tensor, one.end - 4); // float_data, one unpacked value
  return one.bytes?.length === 4 ? float32At(one.bytes, 0) : undefined; // raw_data, or float_data packed
}

/** A float attribute's value (type FLOAT), or undefined. */
function floatAttribute(node: Node, name: string): number | undefined {
  const attribute = node.attributes.get(name);
  const f = attribute?.fields.find((p) => p.field === ATTRIBUTE_F && p.wireType === 5);
  const type = attribute?.fields.find((p) => p.field === ATTRIBUTE_TYPE)?.value;
  if (attribute === undefined || f === undefined || (type !== undefined && type !== ATTRIBUTE_FLOAT)) return undefined;
  return float32At(attribute.bytes, f.end - 4);
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
  const { top, graph } = modelGraph(model, what);
  const opset = defaultOpsetVersion(model, what, top);
  const graphFields = protoFields(graph.bytes, what);
  const nodes = graphFields.filter((f) => f.field === GRAPH_NODE).map((f) => readNode(f, what));
  const defaultDomain = (n: Node) => isDefaultDomain(n.domain);

  const producer = new Map<string, Node>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const readers = new Map<string, number>();
  const read = (name: string, by = 1) => readers.set(name, (readers.get(name) ?? 0) + by);
  for (const n of nodes) for (const i of n.inputs) if (i !== '') read(i);
  for (const name of graphOutputNames(graphFields, what)) read(name, Infinity); // a graph output is never rewritten away
  const initializers = new Map<string, Uint8Array>();
  for (const f of graphFields.filter((x) => x.field === GRAPH_INITIALIZER && x.bytes !== undefined)) {
    initializers.set(utf8Field(protoFields(f.bytes!, what).find((x) => x.field === TENSOR_NAME), what), f.bytes!);
  }
  /** The float scalar a tensor name holds, if it is a Constant node's or an initializer's. */
  const constant = (name: string | undefined): number | undefined => {
    if (name === undefined) return undefined;
    const init = initializers.get(name);
    if (init !== undefined) return scalarOf(init, what);
    const node = producer.get(name);
    if (node?.opType !== 'Constant' || !defaultDomain(node) || node.attributes.size !== 1) return undefined;
    const t = node.attributes.get('value')?.fields.find((p) => p.field === ATTRIBUTE_T);
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
    return [graph.bytes.subarray(f.start, f.end)];
  });
  return { model: withGraph(model, graph, ...parts), fused };
}
