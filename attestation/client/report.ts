/**
 * The verification report of one inference, one outcome per step in this order:
 *   attestation  the enclave that signed the receipt: fresh document (nonce, policy, chain), boot
 *                document, and the receipt naming them (`iss`, `att`)
 *   manifest     the manifest bound to that attestation (user_data, public_key, kids)
 *   signature    the receipt's ES256 signature by the attested receipt key, and its claims
 *   model        the receipt's model is one the manifest lists
 *   input        SHA-256(salt || canonical request tensors) re-derived from the caller's tensors
 *   output       the same over the outputs the caller received
 *   nonce        the receipt carries the nonce the caller sent
 *   mode         sealed or plain, as the caller sent it
 *   log          the receipt is included in the transparency log under a checkpoint signed by the
 *                pinned log key (`pending` while not yet integrated)
 * `valid` is true when no step failed and attestation, manifest, signature and model passed
 * (`infer()` always checks input and output too; offline they need the caller's tensors).
 */
import type { ErrorCode } from '../errors';
import type { EnclaveManifest } from '../manifest';
import type { StepOutcome } from '../nitro/report';
import type { ReceiptReport } from '../receipt';
import type { AttestationRejectedError, AttestedEnclave } from './enclave-attestation';

export const REPORT_STEPS = ['attestation', 'manifest', 'signature', 'model', 'input', 'output', 'nonce', 'mode', 'log'] as const;
export type ReportStep = (typeof REPORT_STEPS)[number];
export type StepStatus = 'passed' | 'failed' | 'skipped' | 'pending';

export interface ReportStepOutcome {
  readonly step: ReportStep;
  readonly status: StepStatus;
  readonly reason: string;
  readonly code?: ErrorCode;
}

export interface VerificationReport {
  readonly valid: boolean;
  readonly steps: readonly ReportStepOutcome[];
  /** The first failed step's error. */
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

/** Always checked by `infer()` (it holds the tensors and the salt); offline, input and output need the caller's files. */
const REQUIRED: ReadonlySet<ReportStep> = new Set(['attestation', 'manifest', 'signature', 'model']);

/** The outcome of `step` in `outcomes`: its failure if any outcome of that step failed, else the first. */
function outcomeOf<T extends { readonly step: string; readonly status: string }>(outcomes: readonly T[], step: T['step']): T | undefined {
  return outcomes.find((o) => o.step === step && o.status === 'failed') ?? outcomes.find((o) => o.step === step);
}

export function finishReport(steps: readonly ReportStepOutcome[]): VerificationReport {
  const ordered = REPORT_STEPS.map((s) => outcomeOf(steps, s) ?? { step: s, status: 'skipped' as const, reason: 'not checked' });
  const failed = ordered.find((o) => o.status === 'failed');
  const valid = !failed && ordered.every((o) => !REQUIRED.has(o.step) || o.status === 'passed');
  return {
    valid,
    steps: ordered,
    ...(failed ? { error: { code: failed.code ?? 'INTERNAL', message: failed.reason } } : !valid ? { error: { code: 'INTERNAL', message: 'a required step was not checked' } } : {}),
  };
}

/** Short description of a verified enclave for the attestation step. */
export function attestationReason(enclave: AttestedEnclave, pinnedPcrs: number): string {
  return (
    `enclave ${enclave.bootId}${enclave.enclaveId ? ` (${enclave.enclaveId})` : ''}: fresh document with nonce ${enclave.nonce.slice(0, 16)}… ` +
    `at ${new Date(enclave.fresh.timestamp).toISOString()}, chain to root ${enclave.fresh.rootFingerprint.slice(0, 16)}…, ${pinnedPcrs} PCR(s) pinned by the policy${enclave.fresh.debug ? ', DEBUG MODE' : ''}; ` +
    `boot document ${enclave.boot.documentSha384.slice(0, 16)}…`
  );
}

export function manifestReason(m: EnclaveManifest): string {
  return `user_data = SHA-256(JCS(manifest)), public_key = receipt key ${m.keys.receipt.kid}; ${m.software.name} ${m.software.version}, models ${m.models.map((x) => `${x.name}@${x.version}`).join(', ')}`;
}

/**
 * The report of a check that stopped at `failed`: a step after the attestation failed with the
 * attestation checked (a manifest that does not bind), else every other step was not reached.
 */
export function stoppedReport(failed: ReportStepOutcome, attestationReason = 'boot document verified'): VerificationReport {
  const steps: ReportStepOutcome[] = failed.step === 'manifest' ? [{ step: 'attestation', status: 'passed', reason: attestationReason }, failed] : [failed];
  for (const s of REPORT_STEPS) if (!steps.some((o) => o.step === s)) steps.push({ step: s, status: 'skipped', reason: `not checked: step ${failed.step} failed` });
  return finishReport(steps);
}

/** The report of a request that never left the client because the attestation was rejected. */
export function rejectedAttestationReport(err: AttestationRejectedError): VerificationReport {
  const detail = err.steps.filter((s: StepOutcome) => s.status !== 'skipped').map((s) => `${s.step} ${s.status}`).join(', ');
  return err.stage === 'attestation'
    ? stoppedReport({ step: 'attestation', status: 'failed', reason: `${err.message}${detail ? ` (${detail})` : ''}`, code: err.code })
    : stoppedReport({ step: 'manifest', status: 'failed', reason: err.message, code: err.code }, detail);
}

/**
 * Merges the attestation, the receipt report and the log outcome into one report. The receipt's
 * `claims` step folds into `signature` (the claims are what was signed), its `enclave` step (iss
 * and att name this attestation) into `attestation`.
 */
export function inferenceReport(verified: { readonly attestation: string; readonly manifest: string; readonly bootId: string }, receipt: ReceiptReport, log: ReportStepOutcome): VerificationReport {
  const steps: ReportStepOutcome[] = [];
  const enclaveStep = outcomeOf(receipt.steps, 'enclave');
  steps.push(
    enclaveStep?.status === 'failed'
      ? { step: 'attestation', status: 'failed', reason: `${enclaveStep.reason} (verified: ${verified.bootId})`, ...(enclaveStep.code ? { code: enclaveStep.code } : {}) }
      : { step: 'attestation', status: 'passed', reason: verified.attestation + (enclaveStep?.status === 'passed' ? '; the receipt names it' : '') },
  );
  steps.push({ step: 'manifest', status: 'passed', reason: verified.manifest });
  const sig = outcomeOf(receipt.steps, 'signature');
  const claims = outcomeOf(receipt.steps, 'claims');
  if (sig?.status === 'failed' || claims?.status === 'failed') {
    const bad = sig?.status === 'failed' ? sig : claims!;
    steps.push({ step: 'signature', status: 'failed', reason: bad.reason, ...(bad.code ? { code: bad.code } : {}) });
  } else if (sig && claims) {
    steps.push({ step: 'signature', status: sig.status === 'passed' && claims.status === 'passed' ? 'passed' : 'skipped', reason: `${sig.reason}; ${claims.reason}` });
  }
  for (const s of ['model', 'input', 'output', 'nonce', 'mode'] as const) {
    const o = outcomeOf(receipt.steps, s);
    if (o) steps.push({ step: s, status: o.status, reason: o.reason, ...(o.code ? { code: o.code } : {}) });
  }
  steps.push(log);
  // Never valid when the receipt check was not, whichever step its failure was recorded under.
  if (!receipt.valid && !steps.some((o) => o.status === 'failed')) {
    steps.push({ step: 'signature', status: 'failed', reason: receipt.error?.message ?? 'the receipt check failed', ...(receipt.error ? { code: receipt.error.code } : {}) });
  }
  return finishReport(steps);
}
