/**
 * Verifies a receipt from files, with no gateway: the enclave's boot attestation document (the one
 * the receipt names by `att`), its manifest, and optionally the caller's request tensors, the
 * response tensors and the salt. The boot document is checked at its own timestamp (it may be older
 * than its certificates' lifetime) under the policy without a maximum age: freshness is what an
 * online `connect` adds. Same report shape as `infer()`; the log step is skipped unless the caller
 * passes one that checks inclusion (the web explorer, which reaches the log).
 */
import { trustAnchors } from './enclave-attestation';
import { isTeegateError } from '../errors';
import { verifyManifestBinding, type EnclaveManifest } from '../manifest';
import type { MeasurementPolicy } from '../nitro/policy';
import { verifyAttestationReport, type VerifiedAttestation } from '../nitro/verify';
import type { LoadedPolicy } from '../policy-file';
import { verifyReceiptReport, type ReceiptClaims, type ReceiptEvidence } from '../receipt';
import type { InferTensor } from '../tensors';
import type { CertificateCache } from '../x509/certificate-cache';
import { inferenceReport, manifestReason, stoppedReport, type ReportStepOutcome, type VerificationReport } from './report';

export interface OfflineReceiptEvidence {
  readonly receipt: string;
  /** The boot attestation document (COSE_Sign1 bytes). */
  readonly document: Uint8Array;
  /** The manifest as published (untrusted JSON). */
  readonly manifest: unknown;
  readonly policy?: MeasurementPolicy | LoadedPolicy;
  readonly rootCertificates?: readonly (Uint8Array | string)[];
  readonly inputs?: readonly InferTensor[];
  readonly outputs?: readonly InferTensor[];
  readonly salt?: string;
  readonly nonce?: string;
  readonly sealed?: boolean;
  /** The model the request asked for (ReceiptEvidence.model): the receipt must name it. */
  readonly model?: ReceiptEvidence['model'];
  /** Reused across calls by a caller that verifies many documents. */
  readonly cache?: CertificateCache;
  /** Where the boot document came from (a live enclave, a log entry), for the report's reasons. */
  readonly source?: string;
}

export interface OfflineReceiptResult {
  readonly report: VerificationReport;
  readonly claims?: ReceiptClaims;
  readonly attestation?: VerifiedAttestation;
  readonly manifest?: EnclaveManifest;
}

/** The report's log step when no inclusion is checked. */
const OFFLINE_LOG: ReportStepOutcome = { step: 'log', status: 'skipped', reason: 'offline: inclusion not checked' };

/** `log`: the report's log step (by default skipped: offline, inclusion is not checked). */
export async function verifyReceiptOffline(e: OfflineReceiptEvidence, log: () => Promise<ReportStepOutcome> = async () => OFFLINE_LOG): Promise<OfflineReceiptResult> {
  const trust = trustAnchors(e.policy, e.rootCertificates, e.cache);
  const bootDocument = e.source === undefined ? 'boot document' : `boot document (${e.source})`;
  const att = await verifyAttestationReport(e.document, { ...trust, at: 'document' });
  if (!att.valid || !att.attestation) {
    const error = att.error ?? { code: 'INTERNAL' as const, message: 'attestation verification failed' };
    const failed = att.steps.find((s) => s.status === 'failed');
    return { report: stoppedReport({ step: 'attestation', status: 'failed', reason: `${bootDocument}: ${failed ? `${failed.step}: ` : ''}${error.message}`, code: error.code }) };
  }
  const attestation = att.attestation;
  let manifest: EnclaveManifest;
  try {
    manifest = await verifyManifestBinding(attestation, e.manifest);
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    return { report: stoppedReport({ step: 'manifest', status: 'failed', reason: err.message, code: err.code }, `${bootDocument} verified`), attestation };
  }
  const receipt = await verifyReceiptReport({
    receipt: e.receipt,
    attestation,
    manifest,
    ...(e.inputs ? { inputs: e.inputs } : {}),
    ...(e.outputs ? { outputs: e.outputs } : {}),
    ...(e.salt !== undefined ? { salt: e.salt } : {}),
    ...(e.nonce !== undefined ? { nonce: e.nonce } : {}),
    ...(e.sealed !== undefined ? { sealed: e.sealed } : {}),
    ...(e.model !== undefined ? { model: e.model } : {}),
  });
  const pinned = Object.keys(trust.policy.pcrs ?? {}).length;
  const reason =
    `${bootDocument} of module ${attestation.moduleId} at ${new Date(attestation.timestamp).toISOString()} (checked at its own time), ` +
    `chain to root ${attestation.rootFingerprint.slice(0, 16)}…, ${pinned} PCR(s) pinned by the policy${attestation.debug ? ', DEBUG MODE' : ''}, sha384 ${attestation.documentSha384.slice(0, 16)}…`;
  const report = inferenceReport({ attestation: reason, manifest: manifestReason(manifest), bootId: manifest.boot_id }, receipt, await log());
  return { report, ...(receipt.claims ? { claims: receipt.claims } : {}), attestation, manifest };
}
