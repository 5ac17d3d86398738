/**
 * @jest-environment ./test/helpers/onnx-jest-environment.js
 */
/**
 * Hard-swish fusion (enclave/models/onnx-fuse.ts): which patterns it rewrites and which it leaves,
 * what the rewritten graph computes under onnxruntime, and the shipped OCR model's 28.
 */
import { readFileSync } from 'node:fs';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { errorCodeOf as codeOfSync } from '../support/error-code';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { fuseHardSwish } from '../../enclave/models/onnx-fuse';
import { ONNX_ELEMENT_TYPE, bytesField, intField, message, protoFields, stringField, type InitializerSpec, type NodeSpec, type ValueInfo } from '../../enclave/models/onnx-proto';
import { buildOnnxModel } from '../../enclave/models/testing/tiny-onnx';

const { FLOAT } = ONNX_ELEMENT_TYPE;
const WIDTH = 25;
const scalar = (name: string, value: number, dims: number[] = []): InitializerSpec => ({ name, elemType: FLOAT, dims, values: Array<number>(dims.reduce((a, b) => a * b, 1)).fill(value) });
const constantNode = (name: string, value: number): NodeSpec => ({ opType: 'Constant', inputs: [], outputs: [name], name, tensorAttributes: { value: scalar(`${name}_value`, value) } });

interface Parts {
  three?: number;
  min?: number;
  max?: number;
  six?: number;
  /** Add(3, x) and Mul(c, x) instead of Add(x, 3) and Mul(x, c). */
  swapped?: boolean;
  /** The constants 3 and 6 as Constant nodes instead of initializers. */
  constantNodes?: boolean;
  /** Extra graph outputs (e.g. an intermediate tensor). */
  alsoOutput?: string[];
  /** Replaces the Mul's inputs. */
  mulInputs?: string[];
  threeDims?: number[];
}

/** `y = x * clip(x + 3, 0, 6) / 6` as exporters write it, at `opset` (Clip's bounds: attributes before 11). */
function hardSwishModel(opset: number, p: Parts = {}): Uint8Array {
  const bounds = opset < 11 ? { floatAttributes: { min: p.min ?? 0, max: p.max ?? 6 } } : {};
  const clipInputs = opset < 11 ? ['a'] : ['a', 'lo', 'hi'];
  const nodes: NodeSpec[] = [
    ...(p.constantNodes ? [constantNode('three', p.three ?? 3), constantNode('six', p.six ?? 6)] : []),
    { opType: 'Add', inputs: p.swapped ? ['three', 'x'] : ['x', 'three'], outputs: ['a'] },
    { opType: 'Clip', inputs: clipInputs, outputs: ['c'], ...bounds },
    { opType: 'Mul', inputs: p.mulInputs ?? (p.swapped ? ['c', 'x'] : ['x', 'c']), outputs: ['m'] },
    { opType: 'Div', inputs: ['m', 'six'], outputs: ['y'] },
  ];
  const initializers = [
    ...(p.constantNodes ? [] : [scalar('three', p.three ?? 3, p.threeDims), scalar('six', p.six ?? 6)]),
    ...(opset < 11 ? [] : [scalar('lo', p.min ?? 0), scalar('hi', p.max ?? 6)]),
  ];
  const outputs: ValueInfo[] = ['y', ...(p.alsoOutput ?? [])].map((name) => ({ name, elemType: FLOAT, shape: ['N', WIDTH] }));
  return buildOnnxModel({ name: 'hard-swish', inputs: [{ name: 'x', elemType: FLOAT, shape: ['N', WIDTH] }], outputs, nodes, initializers }, opset);
}

/** Two hard-swishes in a row, sharing their constants (Constant nodes), and a Mul that reads `three` too. */
function chainedModel(): Uint8Array {
  const hs = (x: string, y: string): NodeSpec[] => [
    { opType: 'Add', inputs: [x, 'three'], outputs: [`${y}_a`] },
    { opType: 'Clip', inputs: [`${y}_a`, 'lo', 'hi'], outputs: [`${y}_c`] },
    { opType: 'Mul', inputs: [x, `${y}_c`], outputs: [`${y}_m`] },
    { opType: 'Div', inputs: [`${y}_m`, 'six'], outputs: [y] },
  ];
  return buildOnnxModel(
    {
      name: 'chained',
      inputs: [{ name: 'x', elemType: FLOAT, shape: ['N', WIDTH] }],
      outputs: [{ name: 'z', elemType: FLOAT, shape: ['N', WIDTH] }],
      initializers: [scalar('lo', 0), scalar('hi', 6)],
      nodes: [constantNode('three', 3), constantNode('six', 6), ...hs('x', 'h1'), ...hs('h1', 'h2'), { opType: 'Mul', inputs: ['h2', 'three'], outputs: ['z'] }],
    },
    13,
  );
}

/** The graph's nodes' op types, in order. */
function opTypes(model: Uint8Array): string[] {
  const graph = protoFields(model, 'm').find((f) => f.field === 7)!.bytes!;
  return protoFields(graph, 'g')
    .filter((f) => f.field === 1)
    .map((f) => Buffer.from(protoFields(f.bytes!, 'n').find((x) => x.field === 4)!.bytes!).toString('utf8'));
}

/** Inputs spanning hard-swish's kinks (-3, 0, 3) and beyond, two rows. */
const INPUT = Float32Array.from({ length: 2 * WIDTH }, (_, i) => -6 + (12 * (i % WIDTH)) / (WIDTH - 1) + (i >= WIDTH ? 0.37 : 0));
const hardSwish = (v: number): number => (v * Math.min(Math.max(v + 3, 0), 6)) / 6;

async function run(model: Uint8Array, output = 'y'): Promise<Float32Array> {
  const session = await InferenceSession.create(model, { logSeverityLevel: 3 });
  try {
    return (await session.run({ x: new Tensor('float32', INPUT.slice(), [2, WIDTH]) }, [output]))[output]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function expectClose(actual: Float32Array, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected[i]!)));
}

describe('fuseHardSwish', () => {
  it.each([
    ['opset 9, Clip bounds as attributes', 9, {}],
    ['opset 13, Clip bounds as inputs', 13, {}],
    ['the operands of Add and Mul swapped', 13, { swapped: true }],
    ['3 and 6 as Constant nodes (removed with the pattern)', 9, { constantNodes: true }],
  ] as [string, number, Parts][])('rewrites %s into HardSigmoid and Mul, computing the same', async (_label, opset, parts) => {
    const model = hardSwishModel(opset, parts);
    const { model: fused, fused: count } = fuseHardSwish(model, 'm');
    expect(count).toBe(1);
    expect(opTypes(fused)).toEqual(['HardSigmoid', 'Mul']);
    const reference = Array.from(INPUT, hardSwish);
    expectClose(await run(model), reference);
    expectClose(await run(fused), reference);
  });

  it('rewrites chained patterns, and keeps a Constant node something else still reads', async () => {
    const model = chainedModel();
    const { model: fused, fused: count } = fuseHardSwish(model, 'm');
    expect(count).toBe(2);
    expect(opTypes(fused)).toEqual(['Constant', 'HardSigmoid', 'Mul', 'HardSigmoid', 'Mul', 'Mul']);
    const reference = Array.from(INPUT, (v) => Math.fround(hardSwish(hardSwish(v)) * 3));
    expectClose(await run(fused, 'z'), reference);
    expectClose(await run(model, 'z'), reference);
  });

  it.each([
    ['Add of 2.5 instead of 3', 13, { three: 2.5 }],
    ['a Clip to 5', 9, { max: 5 }],
    ['a Clip from -1', 13, { min: -1 }],
    ['a Div by 5', 13, { six: 5 }],
    ['a 3 that is a vector, not a scalar', 13, { threeDims: [WIDTH] }],
    ["a Mul that does not read Add's other operand", 13, { mulInputs: ['c', 'c'] }],
    ['an intermediate tensor that is also a graph output', 13, { alsoOutput: ['a'] }],
    ['a Clip result that is also a graph output', 9, { alsoOutput: ['c'] }],
    ['a Mul result that is also a graph output', 13, { alsoOutput: ['m'] }],
  ] as [string, number, Parts][])('leaves %s as it is, byte for byte', (_label, opset, parts) => {
    const model = hardSwishModel(opset, parts);
    const out = fuseHardSwish(model, 'm');
    expect(out.fused).toBe(0);
    expect(out.model).toBe(model);
  });

  it.each([
    ['no bytes at all', new Uint8Array(0)],
    ['a varint that never ends', Uint8Array.from([0x08, 0xff, 0xff])],
    ['a field longer than the file', Uint8Array.from([0x3a, 0x10, 0x00])],
    ['a graph output that is a number, not a message', Uint8Array.from(message(bytesField(7, intField(12, 1)), bytesField(8, message(stringField(1, ''), intField(2, 9)))))],
    ['a node input that is a number, not a string', Uint8Array.from(message(bytesField(7, bytesField(1, intField(1, 7))), bytesField(8, message(stringField(1, ''), intField(2, 9)))))],
  ])('refuses %s with MODEL_LOAD_FAILED', (_label, bytes) => {
    expect(codeOfSync(() => fuseHardSwish(bytes, 'bad'))).toBe('MODEL_LOAD_FAILED');
  });

  it("rewrites the shipped OCR model's 28 hard-swish activations and drops the 56 constants only they read", () => {
    const [config] = defaultModelConfigs();
    const shipped = readFileSync(config!.path);
    const { model, fused } = fuseHardSwish(shipped, 'ocr');
    expect(fused).toBe(28);
    const count = (ops: string[], op: string) => ops.filter((o) => o === op).length;
    const before = opTypes(shipped);
    const after = opTypes(model);
    expect(count(after, 'Clip')).toBe(count(before, 'Clip') - 28);
    expect(count(after, 'HardSigmoid')).toBe(count(before, 'HardSigmoid') + 28);
    expect(count(after, 'Div')).toBe(count(before, 'Div') - 28);
    expect(count(after, 'Add')).toBe(count(before, 'Add') - 28);
    expect(count(after, 'Constant')).toBe(count(before, 'Constant') - 56);
    expect(after.length).toBe(before.length - 2 * 28 - 56);
  });
});
