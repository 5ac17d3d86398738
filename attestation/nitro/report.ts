/** The step-by-step verification report (what a CLI prints and a UI shows). */
import type { ErrorCode } from '../errors';

export const VERIFICATION_STEPS = ['parse', 'chain', 'signature', 'time', 'policy', 'binding'] as const;
export type VerificationStep = (typeof VERIFICATION_STEPS)[number];

export interface StepOutcome {
  readonly step: VerificationStep;
  readonly status: 'passed' | 'failed' | 'skipped';
  /** What was checked (passed), why it failed, or why it was skipped. */
  readonly reason: string;
  readonly code?: ErrorCode;
}
