/**
 * A plain ONNX model served as is: OIP tensors in and out exactly as the model declares them.
 * Loaded from bytes (the enclave decrypts models in memory) after checking their SHA-256 against
 * the configuration, because the manifest commits to that digest.
 */
import { createHash } from 'node:crypto';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ModelSession, type WorkerPrepare } from './model-session';
import { TeegateError } from '../../attestation/errors';
import type { InferTensor } from '../../attestation/tensors';
import type { ModelConfig, ModelFileConfig } from './model-config';
import { fromOrtTensor, oipDatatypeOf, toOrtTensor } from './ort-tensors';
import type { ServedModel, TensorSpec } from './served-model';

export const ONNX_PLATFORM = 'onnxruntime_onnx';
/**
 * The onnxruntime session options of every model the enclave serves (bench:enclave's raw session
 * uses them too). `session.force_spinning_stop`: onnxruntime's pool threads still spin between the
 * parallel steps of a run, but no longer keep spinning once it is over, burning a core while the
 * enclave waits for its next request. Measured here on the OCR model at 20 requests/s, one at a
 * time: the enclave process used 71-89 ms of CPU per request with the spinning and 41-48 ms
 * without, at the same latency; that CPU goes to whatever shares the machine (in `teegate up`, the
 * gateway, the dev KMS and the other enclaves). One-at-a-time throughput is unchanged
 * (bench:enclave: in process 0.949 and 0.959 of raw with it, 0.922 and 0.948 without, in
 * alternating runs).
 */
export const SESSION_OPTIONS: InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  extra: { session: { force_spinning_stop: '1' } },
};

/** Throws MODEL_DIGEST_MISMATCH unless SHA-256(bytes) is the configured digest. */
export function checkFileDigest(file: ModelFileConfig, bytes: Uint8Array, what: string): void {
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== file.sha256) {
    throw new TeegateError('MODEL_DIGEST_MISMATCH', `${what}: SHA-256 is ${actual}, configured ${file.sha256}`);
  }
}

/**
 * Creates the onnxruntime sessions of `graph` (the model file, whose digest the caller checked, or
 * a graph made from it): `config.instances` workers with `config.threads` intra-op threads each,
 * and the model's pre-processing in each worker if it has one (MODEL_LOAD_FAILED).
 */
export async function createOnnxSession(config: ModelConfig, graph: Uint8Array, prepare?: WorkerPrepare): Promise<ModelSession> {
  const options = config.threads === undefined ? SESSION_OPTIONS : { ...SESSION_OPTIONS, intraOpNumThreads: config.threads };
  try {
    return await ModelSession.create(graph, options, prepare, config.instances);
  } catch (err) {
    throw new TeegateError('MODEL_LOAD_FAILED', `model ${config.name}@${config.version}: onnxruntime could not load it: ${String(err)}`, { cause: err });
  }
}

/** The OIP view of a session's inputs or outputs; non-tensor values and int4 types are refused. */
export function tensorSpecs(config: ModelConfig, metadata: readonly InferenceSession.ValueMetadata[]): TensorSpec[] {
  return metadata.map((m) => {
    const datatype = m.isTensor ? oipDatatypeOf(m.type) : undefined;
    if (!m.isTensor || datatype === undefined) {
      throw new TeegateError('MODEL_LOAD_FAILED', `model ${config.name}: value "${m.name}" is not a tensor of a supported type`);
    }
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

export class OnnxModel implements ServedModel {
  readonly platform = ONNX_PLATFORM;

  private constructor(
    readonly config: ModelConfig,
    private readonly session: ModelSession,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
  ) {}

  static async load(config: ModelConfig, bytes: Uint8Array): Promise<OnnxModel> {
    checkFileDigest(config, bytes, `model ${config.name}@${config.version}`);
    const session = await createOnnxSession(config, bytes);
    try {
      return new OnnxModel(config, session, tensorSpecs(config, session.inputMetadata), tensorSpecs(config, session.outputMetadata));
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  async run(checked: readonly InferTensor[]): Promise<InferTensor[]> {
    const feeds: Record<string, Tensor> = {};
    for (const t of checked) feeds[t.name] = toOrtTensor(t);
    const results = await this.session.run(feeds);
    return this.outputs.map((spec) => {
      const value = results[spec.name];
      if (value === undefined) throw new TeegateError('INTERNAL', `model output "${spec.name}" is missing`);
      return fromOrtTensor(spec.name, value as Tensor);
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
