/**
 * The ONNX protobuf reader and the reduction appended to a model's graph (onnx-proto.ts), run by
 * onnxruntime in a model worker at the opsets where ReduceMax takes its axes differently; and the
 * OCR model's answer against one decoded from the full scores.
 */
import { readFileSync } from 'node:fs';
import { Tensor } from 'onnxruntime-node';
import { errorCodeOf as codeOfSync } from '../support/error-code';
import { ctcGreedyDecode, parseOcrDictionary } from '../../enclave/models/ctc-decode';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { inferWith } from '../support/models';
import { ModelRegistry } from '../../enclave/models/model-registry';
import { ModelSession } from '../../enclave/models/model-session';
import { OCR_INPUT_HEIGHT, preprocessLineImage } from '../../enclave/models/ocr-preprocess';
import { SESSION_OPTIONS } from '../../enclave/models/onnx-model';
import { fuseHardSwish } from '../../enclave/models/onnx-fuse';
import { bytesField, defaultOpsetVersion, intField, message, protoFields, stringField, withLastAxisBest } from '../../enclave/models/onnx-proto';
import { decodePng } from '../../enclave/models/png';
import { affineModel, notAndEchoModel } from '../../enclave/models/testing/tiny-onnx';
import { DEMO_TEXT, demoRequest } from '../support/demo';

/** The reference: per row, the first largest element and its index. */
function referenceBest(data: Float32Array, width: number): { indices: number[]; values: number[] } {
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < data.length / width; r++) {
    let best = 0;
    for (let k = 1; k < width; k++) if (data[r * width + k]! > data[r * width + best]!) best = k;
    indices.push(best);
    values.push(data[r * width + best]!);
  }
  return { indices, values };
}

describe('withLastAxisBest', () => {
  // opset 9 is the shipped OCR model's; 13 the tests' default; from 18 ReduceMax takes axes as an input.
  it.each([9, 13, 18])('appends ArgMax and ReduceMax that onnxruntime runs at opset %i, first maximum winning ties', async (opset) => {
    const classes = 37;
    const rows = 50;
    const best = withLastAxisBest(affineModel(classes, opset), 1, 'affine');
    expect(best.output).toBe('y');
    const session = await ModelSession.create(best.model, SESSION_OPTIONS);
    try {
      // Random scores, with ties in some rows (equal values at two indices) and negative rows.
      let seed = opset;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 10 - 5;
      const x = Float32Array.from({ length: rows * classes }, random);
      for (let r = 0; r < rows; r += 5) x.set([9, 9], r * classes + (r % (classes - 1)));
      const y = x.map((v) => Math.fround(Math.fround(v * 2) + 1));
      const expected = referenceBest(y, classes);
      const out = await session.run({ x: new Tensor('float32', x.slice(), [rows, classes]) }, [best.indices, best.values]);
      expect(Object.keys(out).sort()).toEqual([best.indices, best.values].sort());
      expect(out[best.indices]!.type).toBe('int64');
      expect(out[best.indices]!.dims).toEqual([rows]);
      expect(Array.from(out[best.indices]!.data as BigInt64Array, Number)).toEqual(expected.indices);
      expect(Array.from(out[best.values]!.data as Float32Array)).toEqual(expected.values);
      // The model's own output is still there, unchanged.
      const full = await session.run({ x: new Tensor('float32', x.slice(), [rows, classes]) }, ['y']);
      expect(Array.from(full.y!.data as Float32Array)).toEqual(Array.from(y));
    } finally {
      await session.release();
    }
  });

  it('leaves every byte of the model before and after its graph as it was', () => {
    const model = affineModel();
    const derived = withLastAxisBest(model, 1, 'affine').model;
    const before = protoFields(model, 'm');
    const after = protoFields(derived, 'm');
    expect(after.map((f) => f.field)).toEqual(before.map((f) => f.field));
    const graphBefore = before.find((f) => f.field === 7)!.bytes!;
    const graphAfter = after.find((f) => f.field === 7)!.bytes!;
    expect(Buffer.from(graphAfter.subarray(0, graphBefore.length)).equals(Buffer.from(graphBefore))).toBe(true);
    for (const f of before.filter((x) => x.field !== 7)) {
      const g = after.find((x) => x.field === f.field)!;
      expect(Buffer.from(derived.subarray(g.start, g.end)).equals(Buffer.from(model.subarray(f.start, f.end)))).toBe(true);
    }
  });

  const graphOf = (outputs: number[][]): number[] => bytesField(7, message(stringField(2, 'g'), ...outputs));
  const output = (name: string): number[] => bytesField(12, stringField(1, name));
  const opset = (domain: string, version: number): number[] => bytesField(8, message(stringField(1, domain), intField(2, version)));
  const bad: [string, Uint8Array][] = [
    ['no bytes at all', new Uint8Array(0)],
    ['a group (wire type 3)', Uint8Array.from([0x0b])],
    ['field number 0', Uint8Array.from([0x00, 0x01])],
    ['a varint that never ends', Uint8Array.from([0x08, 0xff, 0xff])],
    ['a varint longer than 10 bytes', Uint8Array.from([0x08, ...new Array<number>(10).fill(0xff), 0x01])],
    ['a field longer than the file', Uint8Array.from([0x3a, 0x10, 0x00])],
    ['a truncated 64-bit field', Uint8Array.from([0x09, 1, 2, 3])],
    ['two graphs', Uint8Array.from(message(graphOf([output('y')]), graphOf([output('y')]), opset('', 13)))],
    ['a graph with two outputs', notAndEchoModel()],
    ['a graph with no output', Uint8Array.from(message(graphOf([]), opset('', 13)))],
    ['a graph output that is a number, not a message', Uint8Array.from(message(graphOf([intField(12, 1)]), opset('', 13)))],
    ['no default operator set', Uint8Array.from(message(graphOf([output('y')]), opset('com.microsoft', 1)))],
    ['the default operator set twice', Uint8Array.from(message(graphOf([output('y')]), opset('', 13), opset('ai.onnx', 13)))],
    ['an output name that is not UTF-8', Uint8Array.from(message(bytesField(7, bytesField(12, bytesField(1, [0xff]))), opset('', 13)))],
  ];
  it.each(bad)('refuses %s with MODEL_LOAD_FAILED', (_label, bytes) => {
    expect(codeOfSync(() => withLastAxisBest(bytes, 1, 'bad'))).toBe('MODEL_LOAD_FAILED');
  });

  it('reads the default operator set under either name', () => {
    expect(defaultOpsetVersion(Uint8Array.from(opset('ai.onnx', 17)), 'm')).toBe(17);
    expect(defaultOpsetVersion(Uint8Array.from(message(opset('com.microsoft', 1), opset('', 9))), 'm')).toBe(9);
  });
});

describe('the OCR model as the enclave runs it (hard-swish fused, reduction appended)', () => {
  it('answers exactly what greedy CTC over the full scores of its graph gives, and what the unmodified model reads', async () => {
    const [config] = defaultModelConfigs();
    const request = demoRequest();
    const png = Buffer.from(request.inputs[0]!.data[0]!, 'base64');
    const registry = await ModelRegistry.load([config!]);
    const shipped = readFileSync(config!.path);
    const unmodified = await ModelSession.create(shipped, SESSION_OPTIONS);
    const fused = await ModelSession.create(fuseHardSwish(shipped, 'ocr').model, SESSION_OPTIONS);
    try {
      const input = preprocessLineImage(decodePng(png));
      const charset = parseOcrDictionary(readFileSync(config!.dictionary!.path));
      const decode = async (session: ModelSession) => {
        const scores = (await session.run({ [session.inputNames[0]!]: new Tensor('float32', input.data.slice(), [1, 3, OCR_INPUT_HEIGHT, input.width]) }))[session.outputNames[0]!]!;
        const best = referenceBest(scores.data as Float32Array, scores.dims[2]!);
        return ctcGreedyDecode({ indices: BigInt64Array.from(best.indices, BigInt), values: Float32Array.from(best.values) }, charset);
      };
      const expected = await decode(fused);
      const answer = await inferWith(registry, config!.name, request.inputs);
      expect(answer.outputs).toEqual([
        { name: 'text', datatype: 'BYTES', shape: [1], data: [expected.text] },
        { name: 'confidence', datatype: 'FP32', shape: [1], data: [Math.fround(expected.confidence)] },
      ]);
      expect(expected.text).toBe(DEMO_TEXT);
      // The unmodified model reads the same text; the fusion moves the confidence by rounding only.
      const original = await decode(unmodified);
      expect(original.text).toBe(DEMO_TEXT);
      expect(Math.abs(original.confidence - expected.confidence)).toBeLessThan(1e-5);
    } finally {
      await unmodified.release();
      await fused.release();
      await registry.close();
    }
  });
});
