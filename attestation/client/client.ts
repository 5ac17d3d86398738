/**
 * The client SDK: `connect(url, options)` attests the gateway's enclave (fresh nonce, policy,
 * manifest binding) and keeps the result until it is older than `maxAgeMs`; `infer(model, inputs)`
 * sends a sealed (default) or plain request and verifies the answer end to end against the
 * caller's own tensors, salt and nonce, the attestation of the enclave that signed the receipt
 * (looked up by the receipt's `iss` when several enclaves sit behind the gateway), and the
 * transparency log. Browser-safe: fetch and WebCrypto only.
 */
import { randomBytes, toHex } from '../bytes';
import { TeegateError, isTeegateError } from '../errors';
import type { EnclaveManifest } from '../manifest';
import type { MeasurementPolicy } from '../nitro/policy';
import type { LoadedPolicy } from '../policy-file';
import { verifyReceiptReport, type ReceiptClaims } from '../receipt';
import { parseInferTensors, type InferTensor, type TensorParameters } from '../tensors';
import { parseVerifierKey } from '../log/signed-note';
import { CertificateCache } from '../x509/certificate-cache';
import { AttestationCache, DEFAULT_MAX_AGE_MS } from './attestation-cache';
import { AttestationRejectedError, attestThroughGateway, listEnclaves, trustAnchors, type AttestedEnclave, type ListedEnclave, type TrustAnchors } from './enclave-attestation';
import { GatewayHttp, type FetchLike } from './http';
import { receiptIssuer, sendPlain, sendSealed, type InferAnswer, type InferRequest } from './infer';
import { checkLogInclusion } from './log-inclusion';
import { attestationReason, inferenceReport, manifestReason, rejectedAttestationReport, type VerificationReport } from './report';

export interface ConnectOptions {
  /**
   * Expected measurements: a MeasurementPolicy, or a policy file loaded with parsePolicyFile.
   * Required, and it must pin at least one PCR: requests are sealed to whichever enclave passes it.
   */
  readonly policy: MeasurementPolicy | LoadedPolicy;
  /** Trusted roots (PEM or DER). Default: the policy file's, else AWS Nitro Enclaves Root-G1. */
  readonly rootCertificates?: readonly (Uint8Array | string)[];
  readonly fetch?: FetchLike;
  /** Re-attest (fresh nonce) when the verified attestation is older than this (default: the policy's maxAge, else 5 min). */
  readonly maxAgeMs?: number;
  /** Gateway API key (`Authorization: Bearer`), for inference. */
  readonly apiKey?: string;
  /** The transparency log's verifier key (`name+keyid+base64`); without it the log step is skipped. */
  readonly logKey?: string;
  /** Where the log is served (`<logUrl>/v1/log/...`), if not by the gateway itself. */
  readonly logUrl?: string;
  /** Per HTTP request (default 120 s). */
  readonly timeoutMs?: number;
}

export interface InferOptions {
  /** Seal the request to the attested enclave (default true). */
  readonly sealed?: boolean;
  readonly version?: string;
  /** Hex nonce the receipt must carry (default: 32 fresh random bytes). */
  readonly nonce?: string;
  readonly id?: string;
  /** Extra OIP request parameters. */
  readonly parameters?: TensorParameters;
  /** Wait up to this long for the log to integrate the receipt (default 0: the log step may be pending). */
  readonly logWaitMs?: number;
}

export interface InferResult {
  /** The outputs as received (validated, data flattened row-major). */
  readonly outputs: InferTensor[];
  readonly receipt: string;
  /** The verified receipt claims (absent when the signature step failed). */
  readonly claims?: ReceiptClaims;
  readonly logIndex?: number;
  readonly salt: string;
  readonly nonce: string;
  readonly sealed: boolean;
  /** The boot id of the enclave the receipt was verified against. */
  readonly bootId: string;
  readonly report: VerificationReport;
}

export class TeegateClient {
  readonly url: string;
  private readonly http: GatewayHttp;
  private readonly logHttp: GatewayHttp;
  private readonly anchors: TrustAnchors;
  private readonly cache: AttestationCache;
  private readonly logKey: string | undefined;
  private readonly inFlight = new Map<string, Promise<AttestedEnclave>>();

  /** Use `connect`; the constructor does no I/O. */
  constructor(url: string, options: ConnectOptions) {
    this.anchors = trustAnchors(options.policy, options.rootCertificates, new CertificateCache());
    // The architecture's rule for clients: every claim is checked against an explicit measurement
    // policy. A client without one would seal its data to any enclave image under the root.
    if (this.pinnedPcrs === 0) {
      throw new TeegateError('POLICY_INVALID', 'the client needs a measurement policy that pins at least one PCR (docs/policy.md): without one, any enclave image under the root would be trusted');
    }
    this.http = new GatewayHttp(url, {
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
    this.url = this.http.baseUrl;
    this.logHttp = options.logUrl !== undefined ? new GatewayHttp(options.logUrl, { ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) }) : this.http;
    this.cache = new AttestationCache(options.maxAgeMs ?? this.anchors.policy.maxAgeMs ?? DEFAULT_MAX_AGE_MS);
    this.logKey = options.logKey;
  }

  /** The last verified attestation of the current enclave (the one requests are sealed to). */
  get attestation(): AttestedEnclave {
    const last = this.cache.last();
    if (!last) throw new TeegateError('REQUEST_INVALID', 'not attested yet: call connect() or refresh()');
    return last;
  }

  get pinnedPcrs(): number {
    return Object.keys(this.anchors.policy.pcrs ?? {}).length;
  }

  /** Attests again with a fresh nonce (any enclave the gateway picks, or the named one). */
  refresh(enclaveId?: string): Promise<AttestedEnclave> {
    return this.attest(enclaveId);
  }

  /** refresh(), with the gateway's listing of the named enclave when the caller already has it. */
  private async attest(enclaveId?: string, listed?: ListedEnclave): Promise<AttestedEnclave> {
    const key = enclaveId ?? '';
    const running = this.inFlight.get(key);
    if (running) return running;
    const task = attestThroughGateway(this.http, this.anchors, { ...(enclaveId !== undefined ? { enclaveId } : {}), ...(listed ? { listed } : {}) }).then((enclave) => {
      this.cache.put(enclave, enclaveId === undefined || this.cache.current() === undefined);
      return enclave;
    });
    this.inFlight.set(key, task);
    try {
      return await task;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** The current enclave, re-attested when older than the maximum age. */
  async current(): Promise<AttestedEnclave> {
    return this.cache.current() ?? this.refresh();
  }

  /** The verified enclave with this boot id (cached, or attested through the gateway now). */
  async enclave(bootId: string): Promise<AttestedEnclave> {
    const cached = this.cache.get(bootId);
    if (cached) return cached;
    const listed = (await listEnclaves(this.http)).find((e) => e.bootId === bootId);
    if (listed === undefined) throw new TeegateError('CLIENT_ENCLAVE_UNKNOWN', `the gateway lists no live enclave with boot id ${bootId}`);
    const enclave = await this.attest(listed.id, listed);
    if (enclave.bootId !== bootId) throw new TeegateError('CLIENT_ENCLAVE_UNKNOWN', `enclave ${listed.id} now has boot id ${enclave.bootId}, not ${bootId}`);
    return enclave;
  }

  async infer(model: string, inputs: readonly unknown[], options: InferOptions = {}): Promise<InferResult> {
    if (typeof model !== 'string' || model.length === 0 || model.length > 128) throw new TeegateError('REQUEST_INVALID', 'model must be a non-empty name');
    const tensors = parseInferTensors(inputs, 'inputs');
    const nonce = (options.nonce ?? toHex(randomBytes(32))).toLowerCase();
    if (!/^[0-9a-f]{2,128}$/.test(nonce) || nonce.length % 2 !== 0) throw new TeegateError('NONCE_INVALID', 'nonce must be 1 to 64 bytes of hex');
    const request: InferRequest = { ...(options.id !== undefined ? { id: options.id } : {}), inputs: tensors, parameters: { ...(options.parameters ?? {}), nonce } };
    const sealed = options.sealed ?? true;

    let answer: InferAnswer;
    let signer: AttestedEnclave | AttestationRejectedError;
    if (sealed) {
      let target = await this.current();
      try {
        answer = await sendSealed(this.http, model, options.version, request, target.manifest);
      } catch (err) {
        // The enclave we sealed to is gone (restart, scale-in): attest the current one, retry once.
        if (!isTeegateError(err, 'JWE_KEY_MISMATCH')) throw err;
        this.cache.forget(target.bootId);
        target = await this.refresh();
        answer = await sendSealed(this.http, model, options.version, request, target.manifest);
      }
      signer = target;
    } else {
      answer = await sendPlain(this.http, model, options.version, request);
      signer = await this.signerOf(answer.receipt);
    }

    const base = { outputs: answer.outputs, receipt: answer.receipt, salt: answer.salt, nonce, sealed, ...(answer.logIndex !== undefined ? { logIndex: answer.logIndex } : {}) };
    if (signer instanceof AttestationRejectedError) {
      return { ...base, bootId: receiptIssuer(answer.receipt) ?? '', report: rejectedAttestationReport(signer) };
    }
    const receiptReport = await verifyReceiptReport({
      receipt: answer.receipt,
      attestation: signer.boot,
      manifest: signer.manifest,
      inputs: tensors,
      outputs: answer.outputs,
      salt: answer.salt,
      nonce,
      sealed,
      model: { name: model, version: options.version },
    });
    const log = await checkLogInclusion(this.logHttp, answer.receipt, answer.logIndex, {
      ...(this.logKey !== undefined ? { logKey: this.logKey } : {}),
      ...(options.logWaitMs !== undefined ? { waitMs: options.logWaitMs } : {}),
    });
    const report = inferenceReport({ attestation: attestationReason(signer, this.pinnedPcrs), manifest: manifestReason(signer.manifest), bootId: signer.bootId }, receiptReport, log);
    return { ...base, bootId: signer.bootId, ...(receiptReport.claims ? { claims: receiptReport.claims } : {}), report };
  }

  /**
   * The attested enclave to verify a plain answer's receipt against: the one its `iss` names, if
   * the gateway lists it (attested now if not cached); otherwise the current one, against which a
   * foreign receipt fails its signature check. A rejected attestation is returned, not thrown, so
   * the caller still gets the outputs with a failed report.
   */
  private async signerOf(receipt: string): Promise<AttestedEnclave | AttestationRejectedError> {
    const iss = receiptIssuer(receipt);
    try {
      if (iss !== undefined) {
        try {
          return await this.enclave(iss);
        } catch (err) {
          if (!isTeegateError(err, 'CLIENT_ENCLAVE_UNKNOWN')) throw err;
        }
      }
      return await this.current();
    } catch (err) {
      if (err instanceof AttestationRejectedError) return err;
      throw err;
    }
  }
}

/** Attests the gateway's enclave and returns a client that keeps the attestation fresh. */
export async function connect(url: string, options: ConnectOptions): Promise<TeegateClient> {
  if (options.logKey !== undefined) await parseVerifierKey(options.logKey.trim());
  const client = new TeegateClient(url, options);
  await client.refresh();
  return client;
}

export type { EnclaveManifest };
