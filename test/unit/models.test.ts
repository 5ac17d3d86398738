/**
 * @jest-environment ./test/helpers/onnx-jest-environment.js
 */
import { errorCodeOf as codeOfSync, errorCodeOfAsync as codeOf, refusalOf } from '../support/error-code';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Tensor } from 'onnxruntime-node';
import { Worker } from 'node:worker_threads';
import { ModelSession } from '../../enclave/models/model-session';
import { checkInputs } from '../../enclave/models/input-check';
import type { ServedModel } from '../../enclave/models/served-model';
import { toBase64 } from '../../attestation/bytes';
import { TeegateError, type ErrorCode } from '../../attestation/errors';
import { MAX_INSTANCES, MAX_THREADS, defaultModelConfigs, parseModelConfig, type ModelConfig } from '../../enclave/models/model-config';
import { inferWith } from '../support/models';
import { PNG_SIGNATURE, pngChunk } from '../support/png';
import { ModelRegistry, loadModel } from '../../enclave/models/model-registry';
import { OnnxModel } from '../../enclave/models/onnx-model';
import { decodePng, type DecodedImage } from '../../enclave/models/png';
import { preprocessLineImage } from '../../enclave/models/ocr-preprocess';
import { addInt64Model, affineModel, argmaxModel, buildOnnxModel, notAndEchoModel } from '../../enclave/models/testing/tiny-onnx';
import { ONNX_ELEMENT_TYPE, bytesField, intField, message, stringField, type OnnxElementType } from '../../enclave/models/onnx-proto';
import { receiptDigest } from '../../enclave/enclave-service';
import { parseInferTensors, tensorsDigest } from '../../attestation/tensors';

const DEMO_PNG = readFileSync(join(__dirname, '../../enclave/models/demo/line.png'));
const DEMO_TEXT = 'Confidential inference verified';

/** onnxruntime's session class: its `run` is spied on to prove that rejected requests never reach it. */
const SESSION_PROTOTYPE = ModelSession.prototype;
/** What the enclave service does with one model (inferWith, without the registry): check the untrusted inputs, then run. */
const inferOn = async (model: ServedModel, inputs: unknown) => model.run(checkInputs(model.inputs, inputs));
const spyOnRun = (): jest.SpyInstance => jest.spyOn(SESSION_PROTOTYPE, 'run');

/** A session's worker threads, in the order they were started (for the tests that kill one). */
const workersOf = (session: ModelSession): Worker[] => (session as unknown as { instances: { worker: Worker }[] }).instances.map((i) => i.worker);

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function tinyConfig(name: string, bytes: Uint8Array): ModelConfig {
  return { name, version: '1', kind: 'onnx', path: `/memory/${name}.onnx`, sha256: sha256(bytes) };
}



const utf8Bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** An ocr-line config of `model` with `dictionary`, both at /memory paths, with their digests. */
function ocrConfig(model: Uint8Array, dictionary: Uint8Array): ModelConfig {
  return { name: 'ocr', version: '1', kind: 'ocr-line', path: '/memory/ocr.onnx', sha256: sha256(model), dictionary: { path: '/memory/ocr.txt', sha256: sha256(dictionary) } };
}

/** A model shaped like a text recogniser: [1, 3, 48, classes] FP32 in, [1, 48, classes] FP32 out (the mean over the colours). */
function ocrShapedModel(classes: number): Uint8Array {
  const { FLOAT } = ONNX_ELEMENT_TYPE;
  return buildOnnxModel({
    name: 'ocr-shaped',
    inputs: [{ name: 'x', elemType: FLOAT, shape: [1, 3, 48, classes] }],
    outputs: [{ name: 'probs', elemType: FLOAT, shape: [1, 48, classes] }],
    nodes: [{ opType: 'ReduceMean', inputs: ['x'], outputs: ['probs'], intsAttributes: { axes: [1] }, intAttributes: { keepdims: 0 } }],
  });
}

// --- a small PNG encoder for the tests: any colour type, one chosen filter type for every row ---

function filterRows(image: DecodedImage, filter: number): Buffer {
  const { width, height, channels, pixels } = image;
  const stride = width * channels;
  const out = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    out[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const v = pixels[y * stride + x]!;
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const pred = [0, a, b, (a + b) >> 1, Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c][filter]!;
      out[y * (stride + 1) + 1 + x] = (v - pred) & 0xff;
    }
  }
  return out;
}

function encodePng(image: DecodedImage, filter = 0, header: Partial<{ bitDepth: number; colorType: number; interlace: number }> = {}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(image.width, 0);
  ihdr.writeUInt32BE(image.height, 4);
  ihdr[8] = header.bitDepth ?? 8;
  ihdr[9] = header.colorType ?? { 1: 0, 2: 4, 3: 2, 4: 6 }[image.channels];
  ihdr[12] = header.interlace ?? 0;
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(filterRows(image, filter))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** The demo image as RGBA: the text in dark blue on an opaque white, with a transparent left margin. */
function toRgba(gray: DecodedImage): DecodedImage {
  const pixels = new Uint8Array(gray.width * gray.height * 4);
  for (let i = 0; i < gray.width * gray.height; i++) {
    const v = gray.pixels[i]!;
    const x = i % gray.width;
    pixels.set([v * 0.2, v * 0.2, Math.min(255, v + 60), x < 6 ? 0 : 255], i * 4);
  }
  return { width: gray.width, height: gray.height, channels: 4, pixels };
}

const imageRequest = (png: Uint8Array): unknown => [{ name: 'image', datatype: 'BYTES', shape: [1], data: [toBase64(png)] }];

describe('tiny ONNX models', () => {
  let affine: OnnxModel;
  let argmax: OnnxModel;
  let add: OnnxModel;
  let notEcho: OnnxModel;
  beforeAll(async () => {
    affine = await OnnxModel.load(tinyConfig('affine', affineModel()), affineModel());
    argmax = await OnnxModel.load(tinyConfig('argmax', argmaxModel()), argmaxModel());
    add = await OnnxModel.load(tinyConfig('add', addInt64Model()), addInt64Model());
    notEcho = await OnnxModel.load(tinyConfig('not-echo', notAndEchoModel()), notAndEchoModel());
  });
  afterAll(async () => {
    for (const m of [affine, argmax, add, notEcho]) await m.close();
  });
  afterEach(() => jest.restoreAllMocks());

  it('reads the declared inputs and outputs as OIP metadata', () => {
    expect(affine.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    expect(affine.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 4] }]);
    expect(argmax.outputs).toEqual([{ name: 'index', datatype: 'INT64', shape: [-1] }]);
    expect(notEcho.inputs).toEqual([
      { name: 'bits', datatype: 'BOOL', shape: [2, 2] },
      { name: 'text', datatype: 'BYTES', shape: [-1] },
    ]);
  });

  it('runs affine (FP32, nested input) and returns flat OIP outputs', async () => {
    const out = await inferOn(affine, [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [[1, 2, 3, 4], [0.5, -1, 0, 10]] }]);
    expect(out).toEqual([{ name: 'y', datatype: 'FP32', shape: [2, 4], data: [3, 5, 7, 9, 2, -1, 1, 21] }]);
  });

  it('runs argmax (FP32 → INT64) and add (INT64 near 2^53)', async () => {
    const idx = await inferOn(argmax, [{ name: 'scores', datatype: 'FP32', shape: [2, 4], data: [0, 3, 1, 2, 9, 1, 1, 1] }]);
    expect(idx).toEqual([{ name: 'index', datatype: 'INT64', shape: [2], data: [1, 0] }]);
    const sum = await inferOn(add, [
      { name: 'b', datatype: 'INT64', shape: [2], data: [1, -5] },
      { name: 'a', datatype: 'INT64', shape: [2], data: [2 ** 52, 3] },
    ]);
    expect(sum).toEqual([{ name: 'sum', datatype: 'INT64', shape: [2], data: [2 ** 52 + 1, -2] }]);
  });

  it('runs BOOL and BYTES tensors', async () => {
    const out = await inferOn(notEcho, [
      { name: 'bits', datatype: 'BOOL', shape: [2, 2], data: [true, false, false, true] },
      { name: 'text', datatype: 'BYTES', shape: [2], data: ['héllo', ''] },
    ]);
    expect(out).toEqual([
      { name: 'flags', datatype: 'BOOL', shape: [2, 2], data: [false, true, true, false] },
      { name: 'echo', datatype: 'BYTES', shape: [2], data: ['héllo', ''] },
    ]);
  });

  // Every numeric OIP datatype through an Identity model at its extremes: the enclave's conversions
  // to and from onnxruntime are exact, and the receipt's output digest (the enclave's) is the one a
  // client derives from the JSON answer (the verifier's).
  const { UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FLOAT16, FLOAT, DOUBLE } = ONNX_ELEMENT_TYPE;
  it.each([
    ['UINT8', UINT8, [0, 1, 255]],
    ['UINT16', UINT16, [0, 65535]],
    ['UINT32', UINT32, [0, 4294967295]],
    ['UINT64', UINT64, [0, Number.MAX_SAFE_INTEGER]],
    ['INT8', INT8, [-128, 127]],
    ['INT16', INT16, [-32768, 32767]],
    ['INT32', INT32, [-2147483648, 2147483647]],
    ['INT64', INT64, [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]],
    ['FP16', FLOAT16, [65504, -2, 0.5, 2 ** -24, 2 ** -14, 0]],
    ['FP32', FLOAT, [3.4028234663852886e38, -1.5, 1.401298464324817e-45, 0]],
    ['FP64', DOUBLE, [Number.MAX_VALUE, Number.MIN_VALUE, -0.1, 0]],
  ] as const)('round-trips %s exactly, extremes included', async (datatype, elemType, values) => {
    const bytes = buildOnnxModel({
      name: `identity-${datatype}`,
      inputs: [{ name: 'x', elemType, shape: ['N'] }],
      outputs: [{ name: 'y', elemType, shape: ['N'] }],
      nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }],
    });
    const model = await OnnxModel.load(tinyConfig(`identity-${datatype.toLowerCase()}`, bytes), bytes);
    try {
      expect(model.inputs).toEqual([{ name: 'x', datatype, shape: [-1] }]);
      const out = await inferOn(model, [{ name: 'x', datatype, shape: [values.length], data: [...values] }]);
      expect(out).toEqual([{ name: 'y', datatype, shape: [values.length], data: [...values] }]);
      const salt = new Uint8Array(32).fill(9);
      expect(await tensorsDigest(salt, parseInferTensors(JSON.parse(JSON.stringify(out)), 'outputs'))).toBe(receiptDigest(salt, out));
    } finally {
      await model.close();
    }
  });

  it('refuses outputs JSON cannot carry exactly (INT64 beyond 2^53, a float that overflowed): MODEL_OUTPUT_UNREPRESENTABLE, naming the output', async () => {
    const beyond = inferOn(add, [
      { name: 'a', datatype: 'INT64', shape: [1], data: [Number.MAX_SAFE_INTEGER] },
      { name: 'b', datatype: 'INT64', shape: [1], data: [2] },
    ]);
    await expect(beyond).rejects.toMatchObject({ code: 'MODEL_OUTPUT_UNREPRESENTABLE', message: 'model output "sum" holds 9007199254740993, which JSON cannot carry' });
    const overflow = inferOn(affine, [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [3e38, 0, 0, 0] }]);
    await expect(overflow).rejects.toMatchObject({ code: 'MODEL_OUTPUT_UNREPRESENTABLE', message: 'model output "y" holds Infinity, which JSON cannot carry' });
  });

  const x = (over: object = {}): object => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...over });
  const badRequests: [string, () => OnnxModel, unknown, ErrorCode][] = [
    ['inputs not an array', () => affine, { x: [1, 2, 3, 4] }, 'TENSOR_INVALID'],
    ['a malformed tensor', () => affine, [x({ shape: [1, -4] })], 'TENSOR_INVALID'],
    ['the same input twice', () => affine, [x(), x()], 'TENSOR_INVALID'],
    ['an unknown input name', () => affine, [x(), x({ name: 'z' })], 'TENSOR_NAME_UNKNOWN'],
    ['a missing input', () => add, [{ name: 'a', datatype: 'INT64', shape: [1], data: [1] }], 'TENSOR_MISSING'],
    ['no inputs at all', () => affine, [], 'TENSOR_MISSING'],
    ['a wrong datatype', () => affine, [x({ datatype: 'FP64' })], 'TENSOR_DATATYPE_MISMATCH'],
    ['INT32 for an INT64 input', () => add, [{ name: 'a', datatype: 'INT32', shape: [1], data: [1] }, { name: 'b', datatype: 'INT64', shape: [1], data: [1] }], 'TENSOR_DATATYPE_MISMATCH'],
    ['a wrong rank', () => affine, [x({ shape: [4] })], 'TENSOR_SHAPE_MISMATCH'],
    ['a rank above the model\'s, its leading dimensions matching', () => affine, [x({ shape: [1, 4, 1] })], 'TENSOR_SHAPE_MISMATCH'],
    ['a wrong fixed dimension', () => affine, [x({ shape: [1, 3], data: [1, 2, 3] })], 'TENSOR_SHAPE_MISMATCH'],
    ['a wrong fixed dimension (BOOL [2, 2])', () => notEcho, [{ name: 'bits', datatype: 'BOOL', shape: [1, 2], data: [true, true] }, { name: 'text', datatype: 'BYTES', shape: [1], data: ['a'] }], 'TENSOR_SHAPE_MISMATCH'],
    ['a wrong data length', () => affine, [x({ data: [1, 2, 3] })], 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['a tensor too large', () => affine, [x({ shape: [1048577, 4], data: [] })], 'TENSOR_TOO_LARGE'],
  ];
  it('sees a valid request reach session.run (the spy the rejection tests rely on works)', async () => {
    const run = spyOnRun();
    await inferOn(affine, [x()]);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it.each(badRequests)('rejects %s before the model runs', async (_label, model, request, expected) => {
    const run = spyOnRun();
    expect(await codeOf(inferOn(model(), request))).toBe(expected);
    expect(run).not.toHaveBeenCalled();
  });

  it('moves whole input buffers to the model worker and copies views that share a larger buffer', async () => {
    const session = await ModelSession.create(affineModel(), {});
    try {
      const own = Float32Array.from([1, 2, 3, 4]);
      const shared = new Float32Array(8).fill(9);
      const view = shared.subarray(4);
      view.set([0.5, -1, 0, 10]);
      const a = await session.run({ x: new Tensor('float32', own, [1, 4]) });
      expect(own.buffer.byteLength).toBe(0); // detached: moved, not copied
      expect(Array.from(a.y!.data as Float32Array)).toEqual([3, 5, 7, 9]);
      const b = await session.run({ x: new Tensor('float32', view, [1, 4]) });
      expect(Array.from(shared)).toEqual([9, 9, 9, 9, 0.5, -1, 0, 10]); // still usable
      expect(Array.from(b.y!.data as Float32Array)).toEqual([2, -1, 1, 21]);
    } finally {
      await session.release();
    }
  });

  it('runs pre-processing in its worker: feeds from the input bytes, its typed refusals and bugs before session.run', async () => {
    const prepare = { module: require.resolve('../../enclave/models/testing/affine-prepare'), export: 'affineFeeds' };
    const session = await ModelSession.create(affineModel(), {}, prepare);
    try {
      const out = await session.runPrepared(Uint8Array.from([1, 2, 3, 4]));
      expect(Array.from(out.y!.data as Float32Array)).toEqual([3, 5, 7, 9]); // 2x + 1, as run() gives
      expect(session.runs).toBe(1);
      expect(await codeOf(session.runPrepared(Uint8Array.from([1, 2])))).toBe('REQUEST_INVALID');
      expect(await codeOf(session.runPrepared(Uint8Array.from([255, 0, 0, 0])))).toBe('INTERNAL');
      expect(session.runs).toBe(1);
      expect(await codeOf(session.runPrepared(Uint8Array.from([1, 2, 3, 4]), ['nope']))).toBe('MODEL_RUN_FAILED');
      expect(session.runs).toBe(2);
    } finally {
      await session.release();
    }
  });

  it('refuses runPrepared without a worker pre-processing, and fails to start on a module without it', async () => {
    const session = await ModelSession.create(affineModel(), {});
    try {
      expect(await codeOf(session.runPrepared(Uint8Array.from([1, 2, 3, 4])))).toBe('INTERNAL');
      expect(session.runs).toBe(0);
    } finally {
      await session.release();
    }
    const missing = { module: require.resolve('../../enclave/models/testing/affine-prepare'), export: 'nope' };
    await expect(ModelSession.create(affineModel(), {}, missing)).rejects.toThrow(/has no function nope/);
  });

  it('fails a run that arrives after the model was closed (a request racing the shutdown) with MODEL_RUN_FAILED', async () => {
    const model = await OnnxModel.load(tinyConfig('affine', affineModel()), affineModel());
    await model.close();
    await model.close(); // twice is harmless
    expect(await refusalOf(() => inferOn(model, [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }]))).toEqual({ code: 'MODEL_RUN_FAILED', message: 'onnxruntime: the model session is closed' });
  });

  it('fails runs with MODEL_RUN_FAILED, then and later, once its worker thread has died', async () => {
    const session = await ModelSession.create(affineModel(), {});
    const x = () => ({ x: new Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]) });
    expect((await session.run(x())).y!.dims).toEqual([1, 4]);
    await workersOf(session)[0]!.terminate(); // as an out-of-memory kill would
    expect(await codeOf(session.run(x()))).toBe('MODEL_RUN_FAILED');
    await session.release();
  });

  describe('with several instances', () => {
    const x = (v: number) => ({ x: new Tensor('float32', Float32Array.from([v, v, v, v]), [1, 4]) });
    const y = (out: Record<string, Tensor>) => Array.from(out.y!.data as Float32Array);
    // The affine model: y = 2x + 1.
    const expected = (v: number) => Array<number>(4).fill(2 * v + 1);

    it('keeps one request at a time on the first instance, and spreads requests in flight', async () => {
      const session = await ModelSession.create(affineModel(), {}, undefined, 3);
      try {
        for (let i = 0; i < 4; i++) expect(y(await session.run(x(i)))).toEqual(expected(i));
        expect(session.instanceRuns).toEqual([4, 0, 0]);
        const outs = await Promise.all([1, 2, 3, 4, 5, 6].map((v) => session.run(x(v))));
        outs.forEach((out, i) => expect(y(out)).toEqual(expected(i + 1)));
        expect(session.instanceRuns).toEqual([6, 2, 2]);
        expect(session.runs).toBe(10);
      } finally {
        await session.release();
      }
    });

    it('passes over a worker that died, and fails with MODEL_RUN_FAILED once none is left', async () => {
      const session = await ModelSession.create(affineModel(), {}, undefined, 2);
      const [first, second] = workersOf(session);
      await first!.terminate();
      expect(y(await session.run(x(1)))).toEqual(expected(1));
      expect(session.instanceRuns).toEqual([0, 1]);
      await second!.terminate();
      expect(await codeOf(session.run(x(1)))).toBe('MODEL_RUN_FAILED');
      await session.release();
    });

    it('refuses a count out of range, and rejects with the reason when the workers cannot load the model', async () => {
      await expect(ModelSession.create(affineModel(), {}, undefined, 0)).rejects.toThrow(RangeError);
      await expect(ModelSession.create(affineModel(), {}, undefined, MAX_INSTANCES + 1)).rejects.toThrow(RangeError);
      const started = jest.spyOn(Worker.prototype, 'terminate');
      const missing = { module: require.resolve('../../enclave/models/testing/affine-prepare'), export: 'nope' };
      await expect(ModelSession.create(affineModel(), {}, missing, 2)).rejects.toThrow(/has no function nope/);
      expect(started).toHaveBeenCalledTimes(2); // none is left running
      started.mockRestore();
    });

    it('stops the instances that started when another one fails to', async () => {
      const terminate = jest.spyOn(Worker.prototype, 'terminate');
      const oddOnly = { module: require.resolve('../../enclave/models/testing/odd-thread-prepare'), export: 'affineFeeds' };
      await expect(ModelSession.create(affineModel(), {}, oddOnly, 2)).rejects.toThrow(/does not load in thread/);
      // One worker ends itself on the failure; the one that started is stopped, not left running.
      expect(terminate).toHaveBeenCalledTimes(2);
      terminate.mockRestore();
    });

    it("loads a configured model with its instances and threads (onnxruntime's intraOpNumThreads)", async () => {
      const create = jest.spyOn(ModelSession, 'create');
      const model = await OnnxModel.load({ ...tinyConfig('affine', affineModel()), instances: 2, threads: 1 }, affineModel());
      try {
        expect(create).toHaveBeenCalledTimes(1);
        const [, options, , instances] = create.mock.calls[0]!;
        expect(options).toMatchObject({ intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
        expect(instances).toBe(2);
        const outs = await Promise.all([1, 2].map((v) => inferOn(model, [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [v, v, v, v] }])));
        outs.forEach((out, i) => expect(out[0]!.data).toEqual(expected(i + 1)));
      } finally {
        create.mockRestore();
        await model.close();
      }
    });
  });

  it('returns only the outputs asked for, and MODEL_RUN_FAILED for a name the model does not have', async () => {
    const session = await ModelSession.create(notAndEchoModel(), {});
    try {
      const feeds = () => ({ bits: new Tensor('bool', Uint8Array.from([1, 0, 0, 1]), [2, 2]), text: new Tensor('string', ['a'], [1]) });
      expect(Object.keys(await session.run(feeds()))).toEqual(['flags', 'echo']);
      const some = await session.run(feeds(), ['echo']);
      expect(Object.keys(some)).toEqual(['echo']);
      expect(some.echo!.data).toEqual(['a']);
      expect(await codeOf(session.run(feeds(), ['nope']))).toBe('MODEL_RUN_FAILED');
    } finally {
      await session.release();
    }
  });

  it('reports dynamic dimensions that disagree as MODEL_RUN_FAILED (onnxruntime refuses them)', async () => {
    const request = [
      { name: 'a', datatype: 'INT64', shape: [2], data: [1, 2] },
      { name: 'b', datatype: 'INT64', shape: [3], data: [1, 2, 3] },
    ];
    expect(await codeOf(inferOn(add, request))).toBe('MODEL_RUN_FAILED');
  });

  it('refuses model bytes whose SHA-256 differs from the configuration, before loading them', async () => {
    const create = jest.spyOn(ModelSession, 'create');
    const config = tinyConfig('affine', argmaxModel());
    expect(await codeOf(OnnxModel.load(config, affineModel()))).toBe('MODEL_DIGEST_MISMATCH');
    expect(create).not.toHaveBeenCalled();
  });

  it('reports bytes that are not an ONNX model as MODEL_LOAD_FAILED', async () => {
    const junk = new TextEncoder().encode('not a model');
    expect(await codeOf(OnnxModel.load(tinyConfig('junk', junk), junk))).toBe('MODEL_LOAD_FAILED');
  });
});

describe('model configuration', () => {
  const base = { name: 'm', version: '1', kind: 'onnx', path: 'm.onnx', sha256: 'a'.repeat(64) };
  it.each([
    ['a name with a slash', { ...base, name: 'a/b' }],
    ['an empty version', { ...base, version: '' }],
    ['an unknown kind', { ...base, kind: 'tflite' }],
    ['an upper-case digest', { ...base, sha256: 'A'.repeat(64) }],
    ['a short digest', { ...base, sha256: 'a'.repeat(63) }],
    ['an ocr-line model without dictionary', { ...base, kind: 'ocr-line' }],
    ['a dictionary on an onnx model', { ...base, dictionary: { path: 'd', sha256: 'a'.repeat(64) } }],
    ['no instance', { ...base, instances: 0 }],
    ['too many instances', { ...base, instances: MAX_INSTANCES + 1 }],
    ['a fraction of an instance', { ...base, instances: 1.5 }],
    ['instances as a string', { ...base, instances: '2' }],
    ['no thread', { ...base, threads: 0 }],
    ['too many threads', { ...base, threads: MAX_THREADS + 1 }],
    ['threads as null', { ...base, threads: null }],
  ])('rejects %s with MODEL_LOAD_FAILED', (_label, value) => {
    expect(codeOfSync(() => parseModelConfig(value))).toBe('MODEL_LOAD_FAILED');
  });

  it.each([
    ['an empty sealed path', { path: '' }],
    ['a sealed entry without a path', {}],
    ['a sealed path that is a number', { path: 7 }],
    ['a sealed entry that is a string', 'm.onnx.sealed'],
    ['a sealed entry that is null', null],
  ])('rejects %s with MODEL_LOAD_FAILED', async (_label, sealed) => {
    expect(await refusalOf(() => parseModelConfig({ ...base, sealed }))).toEqual({ code: 'MODEL_LOAD_FAILED', message: expect.stringContaining('m.sealed.path must be a non-empty string') });
  });

  it('keeps a sealed path', () => {
    expect(parseModelConfig({ ...base, sealed: { path: 'm.onnx.sealed' } }).sealed).toEqual({ path: 'm.onnx.sealed' });
  });

  it('keeps instances and threads within range, and leaves them out when not given', () => {
    expect(parseModelConfig({ ...base, instances: MAX_INSTANCES, threads: 1 })).toMatchObject({ instances: MAX_INSTANCES, threads: 1 });
    const plain = parseModelConfig(base);
    expect('instances' in plain || 'threads' in plain).toBe(false);
  });
});

describe('model registry', () => {
  const files = new Map<string, Uint8Array>([
    ['/memory/affine.onnx', affineModel()],
    ['/memory/argmax.onnx', argmaxModel()],
  ]);
  const readFile = async (path: string): Promise<Uint8Array> => {
    const bytes = files.get(path);
    if (bytes === undefined) throw new Error(`ENOENT: ${path}`);
    return bytes;
  };
  const affine = tinyConfig('affine', affineModel());
  const affineV2 = { ...tinyConfig('argmax', argmaxModel()), name: 'affine', version: '2' };
  let registry: ModelRegistry;
  beforeAll(async () => {
    registry = await ModelRegistry.load([affine, affineV2], { readFile });
  });
  afterAll(() => registry.close());

  it('exposes OIP model metadata with every version', () => {
    expect(registry.names()).toEqual(['affine']);
    expect(registry.metadata('affine', '1')).toEqual({
      name: 'affine',
      versions: ['1', '2'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }],
    });
    expect(registry.metadata('affine').outputs).toEqual([{ name: 'index', datatype: 'INT64', shape: [-1] }]);
    expect(registry.identities()).toEqual([
      { name: 'affine', version: '1', sha256: affine.sha256 },
      { name: 'affine', version: '2', sha256: affineV2.sha256 },
    ]);
  });

  it('runs the selected version and names the model that answered', async () => {
    const result = await inferWith(registry, 'affine', [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 1] }], '1');
    expect(result).toEqual({
      model: { name: 'affine', version: '1', sha256: affine.sha256 },
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 3] }],
    });
  });

  it('answers MODEL_NOT_FOUND for an unknown name or version', async () => {
    expect(await codeOf(inferWith(registry, 'nope', []))).toBe('MODEL_NOT_FOUND');
    expect(codeOfSync(() => registry.metadata('affine', '3'))).toBe('MODEL_NOT_FOUND');
  });

  it('fails to load on a missing file, a bad config, a duplicate or a tampered model', async () => {
    expect(await codeOf(ModelRegistry.load([{ ...affine, path: '/memory/none.onnx' }], { readFile }))).toBe('MODEL_LOAD_FAILED');
    expect(await codeOf(ModelRegistry.load([], { readFile }))).toBe('MODEL_LOAD_FAILED');
    expect(await codeOf(ModelRegistry.load([affine, affine], { readFile }))).toBe('MODEL_LOAD_FAILED');
    const tampered = { ...affine, path: '/memory/argmax.onnx' };
    expect(await codeOf(ModelRegistry.load([tampered], { readFile }))).toBe('MODEL_DIGEST_MISMATCH');
  });

  it('lists only the versions of the model asked about, and hands out copies of its tensor specs', async () => {
    const two = await ModelRegistry.load([affine, tinyConfig('argmax', argmaxModel())], { readFile });
    try {
      expect(two.metadata('argmax').versions).toEqual(['1']);
      const first = two.metadata('affine');
      first.inputs[0]!.shape[0] = 7;
      first.inputs[0]!.name = 'changed';
      expect(two.metadata('affine').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
      expect(two.get('affine').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    } finally {
      await two.close();
    }
  });

  it('closes the models it loaded when a later one fails, so a failed load leaves nothing running', async () => {
    const close = jest.spyOn(OnnxModel.prototype, 'close');
    try {
      const tampered = { ...affine, version: '2', path: '/memory/argmax.onnx' };
      expect(await codeOf(ModelRegistry.load([affine, tampered], { readFile }))).toBe('MODEL_DIGEST_MISMATCH');
      expect(close).toHaveBeenCalledTimes(1);
    } finally {
      close.mockRestore();
    }
  });

  it('refuses an OCR line model given without a dictionary: MODEL_LOAD_FAILED', async () => {
    const config: ModelConfig = { name: 'ocr', version: '1', kind: 'ocr-line', path: '/memory/affine.onnx', sha256: affine.sha256 };
    expect(await refusalOf(() => loadModel(config, { readFile }))).toEqual({ code: 'MODEL_LOAD_FAILED', message: 'model ocr@1: no dictionary configured' });
  });

  it('passes a reader\'s typed error through unchanged (a refused key release stays KEY_RELEASE_REJECTED)', async () => {
    const refused = new TeegateError('KEY_RELEASE_REJECTED', 'model affine@1: KMS refused the key');
    await expect(ModelRegistry.load([affine], { readFile: async () => Promise.reject(refused) })).rejects.toBe(refused);
  });

  /** A registry load of one model from these in-memory files; its refusal as { code, message }. */
  const loadFrom = (config: ModelConfig, memory: Record<string, Uint8Array>) =>
    refusalOf(() =>
      ModelRegistry.load([config], {
        readFile: async (path) => {
          const bytes = memory[path];
          if (bytes === undefined) throw new Error(`ENOENT: ${path}`);
          return bytes;
        },
      }).then((r) => r.close()),
    );

  it('refuses an OCR dictionary that is not UTF-8 or has an empty line (its digest as configured): MODEL_LOAD_FAILED', async () => {
    const model = ocrShapedModel(5);
    for (const [text, message] of [
      [Uint8Array.of(0x61, 0x0a, 0xff, 0x0a), 'OCR dictionary is not UTF-8'],
      [utf8Bytes('a\n\nb\n'), 'OCR dictionary has an empty line'],
      [utf8Bytes('a\r\n\r\nb'), 'OCR dictionary has an empty line'],
      [new Uint8Array(0), 'OCR dictionary has an empty line'],
      [utf8Bytes('\n'), 'OCR dictionary has an empty line'],
    ] as const) {
      const config = ocrConfig(model, text);
      expect(await loadFrom(config, { '/memory/ocr.onnx': model, '/memory/ocr.txt': text })).toEqual({ code: 'MODEL_LOAD_FAILED', message });
    }
  });

  it('refuses an OCR model file with a node attribute that is not a message (its digest as configured): MODEL_LOAD_FAILED', async () => {
    // ModelProto { graph (7) { node (1) { attribute (5) = varint 1 } }, opset_import (8) { version 13 } }
    const model = Uint8Array.from(message(bytesField(7, bytesField(1, intField(5, 1))), bytesField(8, message(stringField(1, ''), intField(2, 13)))));
    const dictionary = utf8Bytes('a\n');
    expect(await loadFrom(ocrConfig(model, dictionary), { '/memory/ocr.onnx': model, '/memory/ocr.txt': dictionary })).toEqual({
      code: 'MODEL_LOAD_FAILED',
      message: 'model ocr@1 is not a valid ONNX protobuf: a node attribute at byte 0 is not a message',
    });
  });

  it('refuses an OCR model whose classes do not fit its dictionary: MODEL_LOAD_FAILED', async () => {
    const model = ocrShapedModel(5); // [1, 48, 5]: the blank and four characters
    const fits = utf8Bytes('a\nb\nc\n'); // three lines, then the space: four characters
    const registry = await ModelRegistry.load([ocrConfig(model, fits)], { readFile: async (path) => (path.endsWith('.onnx') ? model : fits) });
    await registry.close();
    const short = utf8Bytes('a\nb\n');
    expect(await loadFrom(ocrConfig(model, short), { '/memory/ocr.onnx': model, '/memory/ocr.txt': short })).toEqual({
      code: 'MODEL_LOAD_FAILED',
      message: 'model ocr@1: not a text-recognition model taking [N, 3, 48, W] with 4 classes',
    });
  });

  it('refuses a model with an input or output of a type OIP cannot carry (int4, uint4): MODEL_LOAD_FAILED, and stops its worker', async () => {
    const { FLOAT } = ONNX_ELEMENT_TYPE;
    const [UINT4, INT4] = [21, 22] as unknown as [OnnxElementType, OnnxElementType];
    /** A model of IR version 10 and opset 21, where 4-bit types exist (buildOnnxModel writes IR version 8 first: field 1, varint 8). */
    const ir10 = (graph: Parameters<typeof buildOnnxModel>[0]): Uint8Array => {
      const bytes = buildOnnxModel(graph, 21);
      expect(Array.from(bytes.subarray(0, 2))).toEqual([0x08, 0x08]);
      bytes[1] = 10;
      return bytes;
    };
    const terminate = jest.spyOn(Worker.prototype, 'terminate');
    for (const [model, name] of [
      [ir10({ name: 'i4', inputs: [{ name: 'x', elemType: FLOAT, shape: [2] }], outputs: [{ name: 'q', elemType: INT4, shape: [2] }], nodes: [{ opType: 'Cast', inputs: ['x'], outputs: ['q'], intAttributes: { to: 22 } }] }), 'q'],
      [ir10({ name: 'u4', inputs: [{ name: 'p', elemType: UINT4, shape: [2] }], outputs: [{ name: 'y', elemType: FLOAT, shape: [2] }], nodes: [{ opType: 'Cast', inputs: ['p'], outputs: ['y'], intAttributes: { to: 1 } }] }), 'p'],
    ] as const) {
      terminate.mockClear();
      const config = tinyConfig('four-bit', model);
      expect(await loadFrom(config, { [config.path]: model })).toEqual({ code: 'MODEL_LOAD_FAILED', message: `model four-bit: value "${name}" is not a tensor of a supported type` });
      expect(terminate).toHaveBeenCalledTimes(1); // the session that loaded is released, not left running
    }
    terminate.mockRestore();
  });
});

describe('OCR pre-processing', () => {
  /** PaddleOCR's resize_norm_img written the plain way, one sample at a time: the reference. */
  function reference(image: DecodedImage): { data: Float32Array; width: number; resizedWidth: number } {
    const h = 48;
    const resizedWidth = Math.max(1, Math.min(1280, Math.ceil((h * image.width) / image.height)));
    const width = Math.min(1280, Math.max(320, Math.ceil(resizedWidth / 8) * 8));
    const data = new Float32Array(3 * h * width);
    const sample = (x: number, y: number, bgr: number): number => {
      const at = (y * image.width + x) * image.channels;
      const colour = image.channels >= 3 ? image.pixels[at + 2 - bgr]! : image.pixels[at]!;
      if (image.channels === 1 || image.channels === 3) return colour;
      const alpha = image.pixels[at + image.channels - 1]! / 255;
      return colour * alpha + 255 * (1 - alpha);
    };
    for (let y = 0; y < h; y++) {
      const sy = Math.min(Math.max((y + 0.5) * (image.height / h) - 0.5, 0), image.height - 1);
      const y0 = Math.floor(sy);
      const y1 = Math.min(y0 + 1, image.height - 1);
      for (let x = 0; x < resizedWidth; x++) {
        const sx = Math.min(Math.max((x + 0.5) * (image.width / resizedWidth) - 0.5, 0), image.width - 1);
        const x0 = Math.floor(sx);
        const x1 = Math.min(x0 + 1, image.width - 1);
        for (let c = 0; c < 3; c++) {
          const top = sample(x0, y0, c) * (1 - (sx - x0)) + sample(x1, y0, c) * (sx - x0);
          const bottom = sample(x0, y1, c) * (1 - (sx - x0)) + sample(x1, y1, c) * (sx - x0);
          const v = top * (1 - (sy - y0)) + bottom * (sy - y0);
          data[(c * h + y) * width + x] = (v / 255 - 0.5) / 0.5;
        }
      }
    }
    return { data, width, resizedWidth };
  }

  it('computes exactly the per-sample reference for every colour type and shape (squeezed, padded, tiny)', () => {
    let seed = 7;
    const byte = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    for (const channels of [1, 2, 3, 4] as const) {
      for (const [width, height] of [[509, 55], [3000, 20], [7, 100], [1, 1], [40, 48], [320, 48], [330, 48]] as const) {
        const image: DecodedImage = { width, height, channels, pixels: Uint8Array.from({ length: width * height * channels }, byte) };
        const got = preprocessLineImage(image);
        const want = reference(image);
        expect([got.width, got.resizedWidth]).toEqual([want.width, want.resizedWidth]);
        expect(Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
      }
    }
  });
});

describe('PNG decoder', () => {
  const demo = decodePng(DEMO_PNG);

  it('decodes the demo image (8-bit gray) and re-encoded copies with every filter and colour type', () => {
    expect({ width: demo.width, height: demo.height, channels: demo.channels }).toEqual({ width: 509, height: 55, channels: 1 });
    expect(demo.pixels.length).toBe(509 * 55);
    const rgba = toRgba(demo);
    const rgb: DecodedImage = { ...demo, channels: 3, pixels: Uint8Array.from(Array.from(demo.pixels).flatMap((v) => [v, v, 255 - v])) };
    const grayAlpha: DecodedImage = { ...demo, channels: 2, pixels: Uint8Array.from(Array.from(demo.pixels).flatMap((v) => [v, 200])) };
    for (const image of [demo, grayAlpha, rgb, rgba]) {
      for (let filter = 0; filter <= 4; filter++) {
        expect(decodePng(encodePng(image, filter))).toEqual(image);
      }
    }
  });

  const withChunkData = (mutate: (ihdr: Buffer) => void): Buffer => {
    const ihdr = Buffer.from(DEMO_PNG.subarray(16, 29));
    mutate(ihdr);
    return Buffer.concat([DEMO_PNG.subarray(0, 8), pngChunk('IHDR', ihdr), DEMO_PNG.subarray(33)]);
  };
  const flipped = (at: number): Buffer => {
    const copy = Buffer.from(DEMO_PNG);
    copy[at] = copy[at]! ^ 0x01;
    return copy;
  };
  const tiny: DecodedImage = { width: 2, height: 1, channels: 1, pixels: Uint8Array.from([0, 255]) };
  const corruptZlib = (): Buffer => {
    const idat = Buffer.from(deflateSync(Buffer.from([0, 0, 255])));
    idat[idat.length - 1] = idat[idat.length - 1]! ^ 0xff; // Adler-32 checksum no longer matches
    const png = encodePng(tiny);
    return Buffer.concat([png.subarray(0, 33), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
  };
  const bomb = (): Buffer => {
    const png = encodePng(tiny);
    return Buffer.concat([png.subarray(0, 33), pngChunk('IDAT', deflateSync(Buffer.alloc(50_000_000))), pngChunk('IEND', new Uint8Array(0))]);
  };
  const tinyRaw = Buffer.from([0, 0, 255]); // one row: filter 0, then the two gray samples
  /** `tiny` with IHDR, then `middle` chunks, then IEND (or `end`). */
  const tinyWith = (middle: Buffer[], end: Buffer = pngChunk('IEND', new Uint8Array(0))): Buffer => Buffer.concat([encodePng(tiny).subarray(0, 33), ...middle, end]);
  const rgbTiny: DecodedImage = { width: 1, height: 1, channels: 3, pixels: Uint8Array.from([1, 2, 3]) };
  const rgbWithPalette = (after: boolean): Buffer => {
    const png = encodePng(rgbTiny);
    const plte = pngChunk('PLTE', Uint8Array.from([1, 2, 3]));
    const [head, idat, iend] = [png.subarray(0, 33), png.subarray(33, png.length - 12), png.subarray(png.length - 12)];
    return Buffer.concat(after ? [head, idat, plte, iend] : [head, plte, idat, iend]);
  };
  it('accepts a suggested palette before the image data of an RGB image', () => {
    expect(decodePng(rgbWithPalette(false))).toEqual(rgbTiny);
  });
  const cases: [string, () => Uint8Array][] = [
    ['an IEND chunk that holds data', () => tinyWith([pngChunk('IDAT', deflateSync(tinyRaw))], pngChunk('IEND', Uint8Array.of(0)))],
    ['a byte after the compressed stream', () => tinyWith([pngChunk('IDAT', Buffer.concat([deflateSync(tinyRaw), Buffer.of(0)]))])],
    ['two compressed streams', () => tinyWith([pngChunk('IDAT', Buffer.concat([deflateSync(tinyRaw), deflateSync(tinyRaw)]))])],
    ['a palette in a grayscale image', () => tinyWith([pngChunk('PLTE', Uint8Array.from([1, 2, 3])), pngChunk('IDAT', deflateSync(tinyRaw))])],
    ['a palette after the image data', () => rgbWithPalette(true)],
    ['an empty file', () => new Uint8Array(0)],
    ['a JPEG signature', () => Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['a file truncated in the middle', () => DEMO_PNG.subarray(0, DEMO_PNG.length >> 1)],
    ['a file without IEND', () => DEMO_PNG.subarray(0, DEMO_PNG.length - 12)],
    ['a file cut after the signature', () => DEMO_PNG.subarray(0, 8)],
    ['a flipped bit in the image data (CRC)', () => flipped(60)],
    ['a flipped bit in the header (CRC)', () => flipped(20)],
    ['corrupt compressed data (valid CRC)', corruptZlib],
    ['a decompression bomb', bomb],
    ['data after IEND', () => Buffer.concat([DEMO_PNG, Buffer.from([0])])],
    ['16-bit samples', () => withChunkData((h) => (h[8] = 16))],
    ['a palette image', () => withChunkData((h) => (h[9] = 3))],
    ['an interlaced image', () => withChunkData((h) => (h[12] = 1))],
    ['zero width', () => withChunkData((h) => h.writeUInt32BE(0, 0))],
    ['an image too large', () => withChunkData((h) => h.writeUInt32BE(100_000, 0) && h.writeUInt32BE(100_000, 4))],
    ['a width that does not match the data', () => withChunkData((h) => h.writeUInt32BE(510, 0))],
    ['an unknown filter type', () => encodePng(tiny, 5)],
  ];
  it.each(cases)('rejects %s with INPUT_IMAGE_INVALID', (_label, file) => {
    expect(codeOfSync(() => decodePng(file()))).toBe('INPUT_IMAGE_INVALID');
  });
});

describe('PP-OCRv4 line recognition (shipped model)', () => {
  let registry: ModelRegistry;
  beforeAll(async () => {
    registry = await ModelRegistry.load(defaultModelConfigs());
  }, 60_000);
  afterAll(() => registry.close());
  afterEach(() => jest.restoreAllMocks());

  it('publishes its OIP interface', () => {
    expect(registry.metadata('ppocr-v4-rec')).toEqual({
      name: 'ppocr-v4-rec',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }],
      outputs: [
        { name: 'text', datatype: 'BYTES', shape: [1] },
        { name: 'confidence', datatype: 'FP32', shape: [1] },
      ],
    });
  });

  it('reads the demo image exactly', async () => {
    const { model, outputs } = await inferWith(registry, 'ppocr-v4-rec', imageRequest(DEMO_PNG));
    expect(model).toEqual({ name: 'ppocr-v4-rec', version: '1', sha256: defaultModelConfigs()[0]!.sha256 });
    expect(outputs[0]).toEqual({ name: 'text', datatype: 'BYTES', shape: [1], data: [DEMO_TEXT] });
    expect(outputs[1]).toMatchObject({ name: 'confidence', datatype: 'FP32', shape: [1] });
    const confidence = outputs[1]!.data[0] as number;
    expect(confidence).toBeGreaterThan(0.9);
    expect(confidence).toBeLessThanOrEqual(1);
  });

  it('reads the same text from an RGBA copy with a transparent margin', async () => {
    const { outputs } = await inferWith(registry, 'ppocr-v4-rec', imageRequest(encodePng(toRgba(decodePng(DEMO_PNG)), 4)));
    expect(outputs[0]!.data).toEqual([DEMO_TEXT]);
  });

  it('returns empty text with confidence 0 for a blank image', async () => {
    const blank: DecodedImage = { width: 100, height: 32, channels: 1, pixels: new Uint8Array(3200).fill(255) };
    const { outputs } = await inferWith(registry, 'ppocr-v4-rec', imageRequest(encodePng(blank)));
    expect(outputs).toEqual([
      { name: 'text', datatype: 'BYTES', shape: [1], data: [''] },
      { name: 'confidence', datatype: 'FP32', shape: [1], data: [0] },
    ]);
  });

  const image = (over: object): unknown => [{ name: 'image', datatype: 'BYTES', shape: [1], data: [toBase64(DEMO_PNG)], ...over }];
  const bad: [string, unknown, ErrorCode][] = [
    ['a truncated PNG', imageRequest(DEMO_PNG.subarray(0, 1000)), 'INPUT_IMAGE_INVALID'],
    ['a corrupt PNG', imageRequest(Buffer.concat([DEMO_PNG.subarray(0, 60), Buffer.from([DEMO_PNG[60]! ^ 1]), DEMO_PNG.subarray(61)])), 'INPUT_IMAGE_INVALID'],
    ['text that is not base64', image({ data: ['not base64!'] }), 'INPUT_IMAGE_INVALID'],
    ['base64 of something else', image({ data: [toBase64(new TextEncoder().encode('GIF89a...'))] }), 'INPUT_IMAGE_INVALID'],
    ['a wrong input name', image({ name: 'png' }), 'TENSOR_NAME_UNKNOWN'],
    ['two images', image({ shape: [2], data: ['a', 'b'] }), 'TENSOR_SHAPE_MISMATCH'],
    ['a UINT8 image', image({ datatype: 'UINT8', data: [1] }), 'TENSOR_DATATYPE_MISMATCH'],
    ['a number instead of a string', image({ data: [1] }), 'TENSOR_INVALID'],
  ];
  // The PNG is decoded in the model's worker thread, right before session.run: the model's
  // ModelSession counts the session.run calls its worker made, and a refused request adds none.
  const ocrSession = async (): Promise<ModelSession> => {
    const spy = jest.spyOn(SESSION_PROTOTYPE, 'runPrepared');
    await inferWith(registry, 'ppocr-v4-rec', imageRequest(DEMO_PNG));
    expect(spy).toHaveBeenCalledTimes(1);
    return spy.mock.contexts[0] as ModelSession;
  };
  it('sees a valid image reach the model (the count the rejection tests rely on works)', async () => {
    const session = await ocrSession();
    const before = session.runs;
    await inferWith(registry, 'ppocr-v4-rec', imageRequest(DEMO_PNG));
    expect(session.runs).toBe(before + 1);
  });

  it.each(bad)('rejects %s before the model runs', async (_label, request, expected) => {
    const session = await ocrSession();
    const before = session.runs;
    expect(await codeOf(inferWith(registry, 'ppocr-v4-rec', request))).toBe(expected);
    expect(session.runs).toBe(before);
  });

  it('refuses a dictionary whose digest differs from the configuration', async () => {
    const [config] = defaultModelConfigs();
    const tampered = { ...config!, dictionary: { ...config!.dictionary!, sha256: 'b'.repeat(64) } };
    expect(await codeOf(ModelRegistry.load([tampered]))).toBe('MODEL_DIGEST_MISMATCH');
  });

  it('reads the demo exactly on every instance of a model configured with two, one thread each', async () => {
    const [config] = defaultModelConfigs();
    const two = await ModelRegistry.load([{ ...config!, instances: 2, threads: 1 }]);
    const spy = jest.spyOn(SESSION_PROTOTYPE, 'runPrepared');
    try {
      const outs = await Promise.all([1, 2, 3, 4].map(() => inferWith(two, 'ppocr-v4-rec', imageRequest(DEMO_PNG))));
      for (const { outputs } of outs) expect(outputs[0]!.data).toEqual([DEMO_TEXT]);
      expect((spy.mock.contexts[0] as ModelSession).instanceRuns).toEqual([2, 2]);
    } finally {
      spy.mockRestore();
      await two.close();
    }
  });
});
