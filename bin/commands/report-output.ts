/** Shared human output of the client commands (`infer`, `verify-receipt`): one line per step. */
import type { VerificationReport } from '../../attestation/client/report';
import type { InferTensor } from '../../attestation/tensors';

const MARK = { passed: 'ok  ', failed: 'FAIL', skipped: 'skip', pending: 'wait' } as const;

export function formatSteps(report: VerificationReport): string {
  return report.steps.map((s) => `  ${MARK[s.status]} ${s.step.padEnd(11)} ${s.reason}\n`).join('');
}

function preview(t: InferTensor): string {
  const shown = t.data.slice(0, 8).map((v) => (typeof v === 'string' ? JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v) : String(v)));
  return `${shown.join(', ')}${t.data.length > 8 ? `, … (${t.data.length} elements)` : ''}`;
}

export function formatOutputs(outputs: readonly InferTensor[]): string {
  return outputs.map((t) => `  ${t.name} ${t.datatype} [${t.shape.join(', ')}]: ${preview(t)}\n`).join('');
}

/** `REJECTED <CODE>: <message>` for an invalid report (exit 1), else undefined. */
export function rejectionLine(report: VerificationReport): string | undefined {
  return report.valid ? undefined : `REJECTED ${report.error?.code ?? 'INTERNAL'}: ${report.error?.message ?? 'verification failed'}\n`;
}
