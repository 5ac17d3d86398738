/**
 * The models the enclave serves: loads every configured model (digest checked), answers OIP
 * model metadata, and selects a model by name and optional version (default: the version
 * configured last for that name).
 */
import { readFile } from 'node:fs/promises';
import { TeegateError } from '../../attestation/errors';
import { parseModelConfigs, type ModelConfig } from './model-config';
import { OcrLineModel } from './ocr-line-model';
import { OnnxModel } from './onnx-model';
import type { ServedModel, TensorSpec } from './served-model';

/** OIP model metadata (`GET /v2/models/{name}`). */
export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** What a receipt names: the model that produced the outputs. */
export interface ModelIdentity {
  name: string;
  version: string;
  sha256: string;
}

export interface LoadOptions {
  /** Reads a model or dictionary file (absolute path); the enclave passes one that decrypts. */
  readFile?: (path: string) => Promise<Uint8Array>;
}

async function readOrFail(read: (path: string) => Promise<Uint8Array>, path: string, what: string): Promise<Uint8Array> {
  try {
    return await read(path);
  } catch (err) {
    if (err instanceof TeegateError) throw err;
    throw new TeegateError('MODEL_LOAD_FAILED', `${what}: cannot read ${path}: ${String(err)}`, { cause: err });
  }
}

/** Loads one configured model from its file(s). */
export async function loadModel(config: ModelConfig, options: LoadOptions = {}): Promise<ServedModel> {
  const read = options.readFile ?? ((path: string) => readFile(path));
  const what = `model ${config.name}@${config.version}`;
  const bytes = await readOrFail(read, config.path, what);
  if (config.kind === 'onnx') return OnnxModel.load(config, bytes);
  if (config.dictionary === undefined) throw new TeegateError('MODEL_LOAD_FAILED', `${what}: no dictionary configured`);
  return OcrLineModel.load(config, bytes, await readOrFail(read, config.dictionary.path, what));
}

/** The name, version and SHA-256 a manifest and a receipt name a model by. */
export function modelIdentity({ config }: ServedModel): ModelIdentity {
  return { name: config.name, version: config.version, sha256: config.sha256 };
}

export class ModelRegistry {
  private constructor(private readonly models: readonly ServedModel[]) {}

  /** Validates the configs (JSON or typed) and loads every model; on failure nothing stays loaded. */
  static async load(configs: unknown, options: LoadOptions = {}): Promise<ModelRegistry> {
    const parsed = parseModelConfigs(configs);
    const loaded: ServedModel[] = [];
    try {
      for (const config of parsed) loaded.push(await loadModel(config, options));
    } catch (err) {
      await Promise.all(loaded.map((m) => m.close()));
      throw err;
    }
    return new ModelRegistry(loaded);
  }

  /** Builds a registry from models already loaded. */
  static of(models: readonly ServedModel[]): ModelRegistry {
    return new ModelRegistry([...models]);
  }

  /** Distinct model names, in configuration order. */
  names(): string[] {
    return [...new Set(this.models.map((m) => m.config.name))];
  }

  /** Name, version and SHA-256 of every loaded model (for the manifest). */
  identities(): ModelIdentity[] {
    return this.models.map(modelIdentity);
  }

  /** The model of that name and version (default: the last configured version); MODEL_NOT_FOUND. */
  get(name: string, version?: string): ServedModel {
    const candidates = this.models.filter((m) => m.config.name === name);
    const model = version === undefined ? candidates[candidates.length - 1] : candidates.find((m) => m.config.version === version);
    if (model === undefined) {
      const which = version === undefined ? `"${name}"` : `"${name}" version "${version}"`;
      throw new TeegateError('MODEL_NOT_FOUND', `no model ${which} is served`);
    }
    return model;
  }

  /** OIP model metadata; inputs and outputs are those of the selected version. */
  metadata(name: string, version?: string): ModelMetadata {
    const model = this.get(name, version);
    return {
      name,
      versions: this.models.filter((m) => m.config.name === name).map((m) => m.config.version),
      platform: model.platform,
      inputs: model.inputs.map((s) => ({ ...s, shape: [...s.shape] })),
      outputs: model.outputs.map((s) => ({ ...s, shape: [...s.shape] })),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.models.map((m) => m.close()));
  }
}
