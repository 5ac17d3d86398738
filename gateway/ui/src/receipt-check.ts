/**
 * Verifies a receipt (or receipt bundle) in the browser: find the boot attestation of the enclave
 * the receipt names (`iss`) among the live enclaves or in the transparency log, verify it at its own
 * time under the policy, check the manifest bound to it, then the receipt itself (signature, claims,
 * model, and the digests when the bundle carries tensors and salt), and its log inclusion.
 */
import { listEnclaves } from '../../../attestation/client/enclave-attestation';
import { checkLogInclusion } from '../../../attestation/client/log-inclusion';
import { finishReport, inferenceReport, manifestReason, REPORT_STEPS, type ReportStepOutcome, type VerificationReport } from '../../../attestation/client/report';
import { receiptIssuer } from '../../../attestation/client/infer';
import { isTeegateError, type ErrorCode } from '../../../attestation/errors';
import { verifyManifestBinding, type EnclaveManifest } from '../../../attestation/manifest';
import { verifyAttestationReport, type VerifiedAttestation } from '../../../attestation/nitro/verify';
import { verifyReceiptReport, type ReceiptClaims } from '../../../attestation/receipt';
import { anchors, type UiContext } from './context';
import { latestCheckpoint } from '../../../attestation/client/log-inclusion';
import { findLoggedAttestation } from './log-data';
import type { ReceiptBundle } from './receipt-bundle';

export interface ReceiptCheck {
  readonly report: VerificationReport;
  readonly claims?: ReceiptClaims;
  /** Where the signing enclave's attestation came from. */
  readonly source?: string;
  readonly manifest?: EnclaveManifest;
  readonly attestation?: VerifiedAttestation;
  /** True when the bundle carried tensors and salt, so input and output could be checked. */
  readonly complete: boolean;
}

function failedAt(step: ReportStepOutcome['step'], code: ErrorCode, reason: string): VerificationReport {
  const steps: ReportStepOutcome[] = [{ step, status: 'failed', reason, code }];
  const before = REPORT_STEPS.slice(0, REPORT_STEPS.indexOf(step)).map((s): ReportStepOutcome => ({ step: s, status: 'passed', reason: '' }));
  const after = REPORT_STEPS.filter((s) => s !== step && !before.some((b) => b.step === s)).map((s): ReportStepOutcome => ({ step: s, status: 'skipped', reason: 'not checked: an earlier step failed' }));
  return finishReport([...(step === 'attestation' ? [] : before), ...steps, ...after]);
}

async function findAttestation(ctx: UiContext, bootId: string): Promise<{ document: Uint8Array; manifest: unknown; source: string } | undefined> {
  const live = (await listEnclaves(ctx.http)).find((e) => e.bootId === bootId && e.document);
  if (live?.document) return { document: live.document, manifest: live.manifest, source: `live enclave ${live.id}` };
  if (!ctx.trust.logKey) return undefined;
  const checkpoint = await latestCheckpoint(ctx.http, ctx.trust.logKey);
  const logged = await findLoggedAttestation(ctx.http, checkpoint.size, bootId);
  return logged ? { document: logged.entry.document, manifest: logged.entry.manifest, source: `transparency log entry ${logged.index}` } : undefined;
}

export async function checkReceipt(ctx: UiContext, bundle: ReceiptBundle): Promise<ReceiptCheck> {
  const complete = bundle.inputs !== undefined && bundle.outputs !== undefined && bundle.salt !== undefined;
  const iss = receiptIssuer(bundle.receipt);
  if (iss === undefined) return { report: failedAt('signature', 'RECEIPT_INVALID', 'the receipt claims are not readable JSON with an issuer (iss)'), complete };

  const found = await findAttestation(ctx, iss);
  if (!found) {
    return {
      report: failedAt('attestation', 'CLIENT_ENCLAVE_UNKNOWN', `no live enclave and no logged attestation has boot id ${iss}: the receipt names an enclave this gateway never attested`),
      complete,
    };
  }
  // A boot document is checked at its own time: it may be older than any certificate lifetime.
  const trust = anchors(ctx);
  const doc = await verifyAttestationReport(found.document, { ...trust, at: 'document' });
  if (!doc.valid || !doc.attestation) {
    const e = doc.error ?? { code: 'INTERNAL' as const, message: 'attestation verification failed' };
    return { report: failedAt('attestation', e.code, `boot document (${found.source}): ${e.message}`), complete };
  }
  let manifest: EnclaveManifest;
  try {
    manifest = await verifyManifestBinding(doc.attestation, found.manifest);
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    return { report: failedAt('manifest', err.code, err.message), complete, attestation: doc.attestation };
  }
  const receipt = await verifyReceiptReport({
    receipt: bundle.receipt,
    attestation: doc.attestation,
    manifest,
    ...(bundle.inputs ? { inputs: bundle.inputs } : {}),
    ...(bundle.outputs ? { outputs: bundle.outputs } : {}),
    ...(bundle.salt ? { salt: bundle.salt } : {}),
    ...(bundle.nonce ? { nonce: bundle.nonce } : {}),
    ...(bundle.sealed !== undefined ? { sealed: bundle.sealed } : {}),
  });
  const log = await checkLogInclusion(ctx.http, bundle.receipt, bundle.log_index, ctx.trust.logKey !== undefined ? { logKey: ctx.trust.logKey } : {});
  const a = doc.attestation;
  const attestationText =
    `boot document of ${iss} (${found.source}) verified at its own time ${new Date(a.timestamp).toISOString()}: chain to root ${a.rootFingerprint.slice(0, 16)}…, ` +
    `${Object.keys(trust.policy.pcrs ?? {}).length} PCR(s) pinned by the policy${a.debug ? ', DEBUG MODE' : ''}`;
  const report = inferenceReport({ attestation: attestationText, manifest: manifestReason(manifest), bootId: iss }, receipt, log);
  return { report, ...(receipt.claims ? { claims: receipt.claims } : {}), source: found.source, manifest, attestation: a, complete };
}

export function verdictOf(check: ReceiptCheck): 'verified' | 'rejected' | 'partial' {
  if (check.report.steps.some((s) => s.status === 'failed')) return 'rejected';
  return check.report.valid ? 'verified' : 'partial';
}
