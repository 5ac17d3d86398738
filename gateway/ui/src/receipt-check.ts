/**
 * Verifies a receipt (or receipt bundle) in the browser: find the boot attestation of the enclave
 * the receipt names (`iss`) among the live enclaves or in the transparency log, verify it at its own
 * time under the policy, check the manifest bound to it, then the receipt itself (signature, claims,
 * model, and the digests when the bundle carries tensors and salt), and its log inclusion.
 */
import { listEnclaves } from '../../../attestation/client/enclave-attestation';
import { checkLogInclusion, latestCheckpoint } from '../../../attestation/client/log-inclusion';
import { stoppedReport, type VerificationReport } from '../../../attestation/client/report';
import { receiptIssuer } from '../../../attestation/client/infer';
import { verifyReceiptOffline } from '../../../attestation/client/verify-offline';
import type { EnclaveManifest } from '../../../attestation/manifest';
import type { VerifiedAttestation } from '../../../attestation/nitro/verify';
import type { ReceiptClaims } from '../../../attestation/receipt';
import type { UiContext } from './context';
import { requirePolicy } from './trust';
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
  if (iss === undefined) {
    return { report: stoppedReport({ step: 'signature', status: 'failed', reason: 'the receipt claims are not readable JSON with an issuer (iss)', code: 'RECEIPT_INVALID' }), complete };
  }
  const found = await findAttestation(ctx, iss);
  if (!found) {
    const reason = `no live enclave and no logged attestation has boot id ${iss}: the receipt names an enclave this gateway never attested`;
    return { report: stoppedReport({ step: 'attestation', status: 'failed', reason, code: 'CLIENT_ENCLAVE_UNKNOWN' }), complete };
  }
  // The boot document, its manifest binding and the receipt are checked as `teegate verify-receipt`
  // checks files; the explorer also reaches the log, so inclusion is checked too.
  const checked = await verifyReceiptOffline(
    {
      receipt: bundle.receipt,
      document: found.document,
      manifest: found.manifest,
      policy: requirePolicy(ctx.trust),
      cache: ctx.certificates,
      source: found.source,
      inputs: bundle.inputs,
      outputs: bundle.outputs,
      salt: bundle.salt,
      nonce: bundle.nonce,
      sealed: bundle.sealed,
    },
    () => checkLogInclusion(ctx.http, bundle.receipt, bundle.log_index, ctx.trust.logKey !== undefined ? { logKey: ctx.trust.logKey } : {}),
  );
  return { ...checked, source: found.source, complete };
}

export function verdictOf(check: ReceiptCheck): 'verified' | 'rejected' | 'partial' {
  if (check.report.steps.some((s) => s.status === 'failed')) return 'rejected';
  return check.report.valid ? 'verified' : 'partial';
}
