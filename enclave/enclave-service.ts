/**
 * The enclave in process: boot (keys, manifest, boot attestation), fresh attestations, and
 * inference with receipts, plain or sealed. The HTTP server (http-server.ts) is a thin layer over it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { fromHex, randomBytes, sha384, toHex } from '../attestation/bytes';
import { TeegateError, describeUntrusted } from '../attestation/errors';
import { manifestDigest, modelLabel, type EnclaveManifest } from '../attestation/manifest';
import { canonicalBytesOfParsed, canonicalTensorBytes, type InferTensor } from '../attestation/tensors';
import { generateEnclaveKeys, type EnclaveKeys } from './keys';
import { checkInputs } from './models/input-check';
import { modelIdentity, type ModelMetadata, type ModelRegistry } from './models/model-registry';
import type { Nsm } from './nsm/nsm';
import { ReceiptSigner } from './receipt-signer';
import { SealedChannel } from './sealed-channel';

export const SOFTWARE = { name: 'teegate-enclave', version: '0.1.0' } as const;
const MAX_NONCE_BYTES = 64;

/**
 * The most JSON an inference answer's outputs may take. A sealed answer is this in base64url (4/3)
 * plus its header and the receipt: under the gateway's default limit on an enclave's answer (64
 * MiB, `limits.upstreamResponseBytes`), so every receipt the enclave signs reaches the gateway
 * and its log. Checked before signing: a refused answer uses no receipt number.
 */
export const MAX_ANSWER_OUTPUTS_JSON_BYTES = 44 * 1024 * 1024;

/**
 * Refuses outputs whose JSON would exceed MAX_ANSWER_OUTPUTS_JSON_BYTES. JSON takes at most 12
 * bytes per raw byte of any datatype (`5.960464477539063e-8,` for an FP16, 24 characters for an
 * FP32, `\u0000` for a BYTES character), plus a little per tensor, so outputs whose canonical
 * bytes bound them under the limit (the common case) are not serialised an extra time here.
 */
function checkAnswerSize(outputs: readonly InferTensor[], canonicalBytes: number): void {
  if (canonicalBytes * 12 + 64 * 1024 <= MAX_ANSWER_OUTPUTS_JSON_BYTES) return;
  const bytes = Buffer.byteLength(JSON.stringify(outputs));
  if (bytes > MAX_ANSWER_OUTPUTS_JSON_BYTES) {
    throw new TeegateError('TENSOR_TOO_LARGE', `the outputs would take ${bytes} bytes of JSON, more than an answer may carry (${MAX_ANSWER_OUTPUTS_JSON_BYTES}); ask for fewer or smaller outputs`);
  }
}

/** An Open Inference Protocol inference response, with the receipt in its parameters. */
export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: InferTensor[];
  parameters: { receipt: string; salt: string; seq: number; sealed: boolean };
}

export interface InferOutcome {
  readonly response: InferResponse;
  readonly receipt: string;
}

export interface InferOptions {
  /** The model version the request's path names (`/versions/{v}`). */
  readonly version?: string | undefined;
  /** The request came sealed (the receipt says so). */
  readonly sealed?: boolean;
  /**
   * Whether the answer can still reach the caller, asked after the model's run and just before a
   * receipt number is spent: if not, REQUEST_ABANDONED and no receipt, so no number goes to an
   * answer nobody receives (the log would show it as a gap). Default: always.
   */
  readonly answerable?: () => boolean;
}

export interface ModelStatus {
  readonly name: string;
  readonly version: string;
  readonly ready: boolean;
  readonly error?: string;
}

function requestInvalid(message: string): never {
  throw new TeegateError('REQUEST_INVALID', message);
}

export class EnclaveService {
  private constructor(
    private readonly nsm: Nsm,
    private readonly models: ModelRegistry | undefined,
    private readonly keys: EnclaveKeys,
    readonly manifest: EnclaveManifest,
    readonly manifestSha256: Uint8Array,
    readonly bootDocument: Uint8Array,
    readonly bootDocumentSha384: string,
    private readonly signer: ReceiptSigner,
    private readonly sealed: SealedChannel,
    /** Why the enclave serves nothing (a model could not be loaded or released), if it does not. */
    readonly failure: string | undefined,
    private readonly modelStatus: readonly ModelStatus[],
  ) {}

  /**
   * Boots: generates the keys, builds the manifest (models that loaded), and asks the NSM for the
   * boot document with public_key = receipt key SPKI and user_data = SHA-256(JCS(manifest)).
   * With `failure` set (a model could not be released or loaded), the enclave still boots and
   * attests, so its health can say why, but serves no inference.
   */
  static async boot(options: { nsm: Nsm; models?: ModelRegistry; failure?: string; modelStatus?: readonly ModelStatus[] }): Promise<EnclaveService> {
    const keys = await generateEnclaveKeys();
    const bootId = randomUUID();
    const manifest: EnclaveManifest = {
      version: 1,
      boot_id: bootId,
      issued_at: new Date().toISOString(),
      software: { ...SOFTWARE },
      keys: { receipt: keys.receipt.publicJwk, seal: keys.seal.publicJwk },
      models: options.models?.identities() ?? [],
    };
    const digest = await manifestDigest(manifest);
    const bootDocument = await options.nsm.attest({ publicKey: keys.receiptSpki, userData: digest });
    const att = toHex(await sha384(bootDocument));
    const status = options.modelStatus ?? manifest.models.map((m) => ({ name: m.name, version: m.version, ready: true }));
    return new EnclaveService(
      options.nsm,
      options.failure ? undefined : options.models,
      keys,
      manifest,
      digest,
      bootDocument,
      att,
      new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, bootId, att),
      new SealedChannel(keys.seal.privateKey, keys.seal.publicJwk.kid),
      options.failure,
      status,
    );
  }

  get ready(): boolean {
    return this.failure === undefined && this.models !== undefined;
  }

  /** Inferences started and not yet answered. */
  private inFlight = 0;

  health(): { status: 'ready' | 'failed'; boot_id: string; models: readonly ModelStatus[]; receipts_issued: number; in_flight: number; reason?: string } {
    return {
      status: this.ready ? 'ready' : 'failed',
      boot_id: this.manifest.boot_id,
      models: this.modelStatus,
      receipts_issued: this.signer.issued,
      in_flight: this.inFlight,
      ...(this.failure ? { reason: this.failure } : {}),
    };
  }

  /** A fresh document with the caller's nonce and the same binding as the boot document. */
  async attest(nonce: Uint8Array): Promise<Uint8Array> {
    return this.nsm.attest({ publicKey: this.keys.receiptSpki, userData: this.manifestSha256, nonce });
  }

  private registry(): ModelRegistry {
    if (!this.models) throw new TeegateError('ENCLAVE_NOT_READY', `enclave serves no models: ${this.failure ?? 'not booted'}`);
    return this.models;
  }

  modelNames(): string[] {
    return this.registry().names();
  }

  modelMetadata(name: string, version?: string): ModelMetadata {
    return this.registry().metadata(name, version);
  }

  /**
   * Runs a plain (already JSON-parsed, untrusted) OIP request on `modelName` at `options.version`
   * (from the path, `/versions/{v}`), or at the request's `model_version`, or the latest version.
   */
  async infer(modelName: string, request: unknown, options: InferOptions = {}): Promise<InferOutcome> {
    this.inFlight++;
    try {
      return await this.inferCounted(modelName, request, options);
    } finally {
      this.inFlight--;
    }
  }

  private async inferCounted(modelName: string, request: unknown, { version: pathVersion, sealed = false, answerable }: InferOptions): Promise<InferOutcome> {
    const models = this.registry();
    if (typeof request !== 'object' || request === null || Array.isArray(request)) requestInvalid('inference request must be a JSON object');
    const body = request as Record<string, unknown>;
    const id = body.id;
    if (id !== undefined && (typeof id !== 'string' || id.length > 256)) requestInvalid('id must be a string of at most 256 characters');
    const nonce = parseNonce(body.parameters);
    const version = modelVersion(pathVersion, body.model_version);
    const model = models.get(modelName, version); // MODEL_NOT_FOUND before anything about the tensors
    // Parsed once: the model, the receipt's input digest and nothing else see the request's tensors.
    const inputs = checkInputs(model.inputs, body.inputs);
    const wanted = wantedOutputs(model.outputs, body.outputs); // refused before the run, not after
    // The model's run is handed to its worker thread now (the OCR model's PNG decode and resize run
    // there too); meanwhile the receipt's input side is prepared, off the request's critical path.
    const running = model.run(inputs);
    const salt = randomBytes(32);
    let input: string;
    try {
      input = saltedDigest(salt, canonicalBytesOfParsed(inputs));
    } catch (err) {
      running.catch(() => undefined); // never an unhandled rejection
      throw err;
    }
    const outputs = selectOutputs(await running, wanted);
    const canonicalOutputs = canonicalTensorBytes(outputs);
    checkAnswerSize(outputs, canonicalOutputs.length); // before a receipt number is used
    const output = saltedDigest(salt, canonicalOutputs);
    if (answerable !== undefined && !answerable()) {
      throw new TeegateError('REQUEST_ABANDONED', 'the caller closed the connection before the answer: no receipt was signed');
    }
    const { jws, claims } = await this.signer.sign({
      jti: randomUUID(),
      model: modelIdentity(model),
      input,
      output,
      ...(nonce !== undefined ? { nonce } : {}),
      sealed,
    });
    return {
      receipt: jws,
      response: {
        model_name: model.config.name,
        model_version: model.config.version,
        ...(typeof id === 'string' ? { id } : {}),
        outputs,
        parameters: { receipt: jws, salt: toHex(salt), seq: claims.seq, sealed },
      },
    };
  }

  /**
   * Opens a sealed request, runs it (at `version`, as infer), and seals the response to the client's
   * key. A request sealed for a model runs only under a path naming that model, and version if both
   * name one (the path is outside the encryption: whoever relays it could change it).
   */
  async inferSealed(modelName: string, jwe: string, { version, answerable }: Pick<InferOptions, 'version' | 'answerable'> = {}): Promise<{ jwe: string; receipt: string }> {
    this.registry();
    const opened = await this.sealed.open(jwe);
    const sealedFor = opened.model;
    if (sealedFor !== undefined && (sealedFor.name !== modelName || (sealedFor.version !== undefined && version !== undefined && sealedFor.version !== version))) {
      requestInvalid(`the sealed request is for model ${modelLabel(sealedFor)}, the path names ${modelLabel({ name: modelName, version })}`);
    }
    const { response, receipt } = await this.infer(modelName, opened.request, { sealed: true, version: version ?? sealedFor?.version, ...(answerable ? { answerable } : {}) });
    return { jwe: await this.sealed.seal(JSON.stringify(response), opened), receipt };
  }

  async close(): Promise<void> {
    await this.models?.close();
    await this.nsm.close();
  }
}

/**
 * A receipt's salted tensor digest: exactly `tensorsDigest` of attestation/tensors.ts (which
 * verifiers use), computed with node's synchronous SHA-256 because it is on every inference's
 * path and a WebCrypto digest costs a thread-pool round trip (about 0.2 ms here).
 */
export function receiptDigest(salt: Uint8Array, tensors: readonly InferTensor[]): string {
  return saltedDigest(salt, canonicalTensorBytes(tensors));
}

function saltedDigest(salt: Uint8Array, canonical: Uint8Array): string {
  return createHash('sha256').update(salt).update(canonical).digest('hex');
}

/** The version to run: the path's, else the body's `model_version` (which may not contradict it), else undefined (latest). */
function modelVersion(fromPath: string | undefined, fromBody: unknown): string | undefined {
  if (fromBody !== undefined && (typeof fromBody !== 'string' || fromBody.length === 0 || fromBody.length > 64)) requestInvalid('model_version must be a string of 1..64 characters');
  if (fromPath !== undefined && fromBody !== undefined && fromBody !== fromPath) requestInvalid(`model_version ${JSON.stringify(fromBody)} differs from the version in the path, ${JSON.stringify(fromPath)}`);
  return fromPath ?? fromBody;
}

function parseNonce(parameters: unknown): string | undefined {
  if (parameters === undefined) return undefined;
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) requestInvalid('parameters must be an object');
  const nonce = (parameters as Record<string, unknown>).nonce;
  if (nonce === undefined) return undefined;
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > MAX_NONCE_BYTES * 2) {
    throw new TeegateError('NONCE_INVALID', `nonce must be hex of 1..${MAX_NONCE_BYTES} bytes`);
  }
  try {
    fromHex(nonce);
  } catch {
    throw new TeegateError('NONCE_INVALID', 'nonce must be hex');
  }
  return nonce.toLowerCase();
}

/**
 * OIP `outputs` in a request names the outputs wanted, each once, among the model's declared ones
 * (undefined: all of them). Checked before the model runs.
 */
function wantedOutputs(declared: readonly { name: string }[], requested: unknown): string[] | undefined {
  if (requested === undefined) return undefined;
  if (!Array.isArray(requested)) requestInvalid('outputs must be an array');
  if (requested.length > declared.length) requestInvalid(`outputs names ${requested.length} tensors, the model has ${declared.length}`);
  const names = requested.map((r: unknown, i) => {
    const name = typeof r === 'object' && r !== null ? (r as Record<string, unknown>).name : undefined;
    if (typeof name !== 'string') requestInvalid(`outputs[${i}].name must be a string`);
    if (!declared.some((d) => d.name === name)) throw new TeegateError('TENSOR_NAME_UNKNOWN', `the model has no output ${describeUntrusted(name)}`);
    return name;
  });
  if (new Set(names).size !== names.length) requestInvalid('outputs names a tensor twice');
  return names;
}

/** The wanted outputs of a run, in the order asked for. */
function selectOutputs(outputs: InferTensor[], wanted: readonly string[] | undefined): InferTensor[] {
  if (wanted === undefined) return outputs;
  return wanted.map((name) => {
    const found = outputs.find((o) => o.name === name);
    if (!found) throw new TeegateError('INTERNAL', `the model did not produce its declared output ${JSON.stringify(name)}`);
    return found;
  });
}
