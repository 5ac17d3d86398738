/** Shared output of the verifying commands (`infer`, `verify-receipt`, `verify-attestation`): one line per step, and the verdict. */
import type { InferTensor } from '../../attestation/tensors';

const MARK = { passed: 'ok  ', failed: 'FAIL', skipped: 'skip', pending: 'wait' } as const;

/** A report's steps, each `  <mark> <step padded to width> <reason>`. */
export function formatSteps(steps: readonly { step: string; status: keyof typeof MARK; reason: string }[], width = 11): string {
  return steps.map((s) => `  ${MARK[s.status]} ${s.step.padEnd(width)} ${s.reason}\n`).join('');
}

function preview(t: InferTensor): string {
  const shown = t.data.slice(0, 8).map((v) => (typeof v === 'string' ? JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v) : String(v)));
  return `${shown.join(', ')}${t.data.length > 8 ? `, … (${t.data.length} elements)` : ''}`;
}

export function formatOutputs(outputs: readonly InferTensor[]): string {
  return outputs.map((t) => `  ${t.name} ${t.datatype} [${t.shape.join(', ')}]: ${preview(t)}\n`).join('');
}

/**
 * The exit code for a report: 0 when valid; else 1, after `REJECTED <CODE>: <message>` on stdout
 * (on stderr with --json, where stdout holds the JSON).
 */
export function verdictExit(report: { readonly valid: boolean; readonly error?: { readonly code: string; readonly message: string } }, json: boolean): number {
  if (report.valid) return 0;
  (json ? process.stderr : process.stdout).write(`REJECTED ${report.error?.code ?? 'INTERNAL'}: ${report.error?.message ?? 'verification failed'}\n`);
  return 1;
}
