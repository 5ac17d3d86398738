/**
 * The shipped real model: PaddleOCR PP-OCRv4 text recognition of one line of text.
 * OIP interface: input `image` BYTES [1] (a PNG file as a base64 string) → outputs `text`
 * BYTES [1] and `confidence` FP32 [1]. Pipeline: base64 → strict PNG decode → resize/normalise
 * (ocr-preprocess.ts) → onnxruntime → CTC greedy decode (ctc-decode.ts). The PNG decode and the
 * resize run in the model's worker thread, just before session.run (ocrFeeds).
 *
 * Greedy CTC needs only each time step's most likely class and its probability. The session runs
 * the model's graph with an ArgMax and a ReduceMax over the classes appended (onnx-proto.ts
 * withLastAxisBest) and fetches just those: the [1, steps, classes] scores (1.5 MB for the demo
 * line) are never copied out of onnxruntime. Before that, the graph's hard-swish activations are
 * fused (onnx-fuse.ts: four nodes each become two; 8-10% less time per run). The model file and its
 * SHA-256 are the shipped ones; the graph derived from it (ocrGraph) is this (measured) code's doing.
 */
import type { ModelSession, WorkerPrepare } from './model-session';
import { fromBase64 } from '../../attestation/bytes';
import { TeegateError } from '../../attestation/errors';
import type { InferTensor } from '../../attestation/tensors';
import { ctcGreedyDecode, parseOcrDictionary, type Recognition } from './ctc-decode';
import { fuseHardSwish } from './onnx-fuse';
import { withLastAxisBest, type ModelWithBest } from './onnx-proto';
import type { ModelConfig } from './model-config';
import { ONNX_PLATFORM, checkFileDigest, createOnnxSession } from './onnx-model';
import { OCR_INPUT_HEIGHT } from './ocr-preprocess';
import type { ServedModel, TensorSpec } from './served-model';

const INPUTS: readonly TensorSpec[] = [{ name: 'image', datatype: 'BYTES', shape: [1] }];
const OUTPUTS: readonly TensorSpec[] = [
  { name: 'text', datatype: 'BYTES', shape: [1] },
  { name: 'confidence', datatype: 'FP32', shape: [1] },
];

/** ocrFeeds, run by the model's worker thread. */
const PREPARE: WorkerPrepare = { module: require.resolve('./ocr-preprocess'), export: 'ocrFeeds' };

/**
 * The graph the enclave runs for an OCR model file (whose digest the caller checked): its
 * hard-swish activations fused, and the per-step ArgMax and ReduceMax over the classes appended.
 */
export function ocrGraph(modelBytes: Uint8Array, what: string): ModelWithBest {
  return withLastAxisBest(fuseHardSwish(modelBytes, what).model, 2, what);
}

function loadFailed(config: ModelConfig, message: string): TeegateError {
  return new TeegateError('MODEL_LOAD_FAILED', `model ${config.name}@${config.version}: ${message}`);
}

export class OcrLineModel implements ServedModel {
  readonly platform = ONNX_PLATFORM;
  readonly inputs = INPUTS;
  readonly outputs = OUTPUTS;

  private constructor(
    readonly config: ModelConfig,
    private readonly session: ModelSession,
    private readonly charset: readonly string[],
    private readonly best: Pick<ModelWithBest, 'indices' | 'values'>,
  ) {}

  /** Checks both digests, loads the dictionary and the model, and checks they fit each other. */
  static async load(config: ModelConfig, modelBytes: Uint8Array, dictionaryBytes: Uint8Array): Promise<OcrLineModel> {
    if (config.kind !== 'ocr-line' || config.dictionary === undefined) throw loadFailed(config, 'not an ocr-line config');
    checkFileDigest(config.dictionary, dictionaryBytes, `dictionary of ${config.name}@${config.version}`);
    const charset = parseOcrDictionary(dictionaryBytes);
    checkFileDigest(config, modelBytes, `model ${config.name}@${config.version}`);
    const best = ocrGraph(modelBytes, `model ${config.name}@${config.version}`);
    const session = await createOnnxSession(config, best.model, PREPARE);
    const [input] = session.inputMetadata;
    const output = session.outputMetadata.find((m) => m.name === best.output);
    const fits =
      session.inputMetadata.length === 1 && input?.isTensor && input.type === 'float32' &&
      input.shape.length === 4 && input.shape[1] === 3 && input.shape[2] === OCR_INPUT_HEIGHT &&
      output?.isTensor && output.type === 'float32' &&
      output.shape.length === 3 && output.shape[2] === charset.length + 1;
    if (!fits) {
      await session.release();
      throw loadFailed(config, `not a text-recognition model taking [N, 3, 48, W] with ${charset.length + 1} classes`);
    }
    return new OcrLineModel(config, session, charset, best);
  }

  async run(checked: readonly InferTensor[]): Promise<InferTensor[]> {
    const [image] = checked;
    let png: Uint8Array;
    try {
      png = fromBase64(image!.data[0] as string);
    } catch (err) {
      throw new TeegateError('INPUT_IMAGE_INVALID', 'image must be a PNG file as a base64 string', { cause: err });
    }
    const { text, confidence } = await this.recognize(png);
    return [
      { name: 'text', datatype: 'BYTES', shape: [1], data: [text] },
      { name: 'confidence', datatype: 'FP32', shape: [1], data: [Math.fround(confidence)] },
    ];
  }

  /** Text and confidence of a PNG image of one line of text. */
  async recognize(png: Uint8Array): Promise<Recognition> {
    const { indices, values } = this.best;
    const results = await this.session.runPrepared(png, [indices, values]);
    const index = results[indices];
    const value = results[values];
    // One line in, so one row of steps out: [1, steps] each.
    if (index?.type !== 'int64' || value?.type !== 'float32' || index.dims.length !== 2 || index.dims[0] !== 1) {
      throw new TeegateError('INTERNAL', `the OCR reduction returned ${index?.type} [${index?.dims.join(', ')}] and ${value?.type}`);
    }
    return ctcGreedyDecode({ indices: index.data as BigInt64Array, values: value.data as Float32Array }, this.charset);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
