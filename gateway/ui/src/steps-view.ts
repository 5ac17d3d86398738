/** A verification report as a list of steps, each in words, with its outcome and detail. */
import type { VerificationReport } from '../../../attestation/client/report';
import type { StepOutcome } from '../../../attestation/nitro/report';
import { h } from './dom';
import { errorBox, explainCode } from './explain';

export type StepState = 'passed' | 'failed' | 'skipped' | 'pending' | 'running';

export interface StepView {
  readonly id: string;
  readonly state: StepState;
  readonly reason?: string;
  readonly code?: string;
}

/** What each step proves, in the words a user reads. */
export const STEP_TITLES: Readonly<Record<string, string>> = {
  // an inference (attestation/client/report.ts)
  attestation: 'The enclave is genuine and runs the expected image',
  manifest: 'Its published keys and models are bound to that attestation',
  signature: 'The receipt is signed by the attested enclave key',
  model: 'The model is one the enclave declared',
  input: 'The receipt covers exactly your input',
  output: 'The receipt covers exactly the output you received',
  nonce: 'The receipt answers this request (your nonce)',
  mode: 'The request mode (sealed or plain) is the one you used',
  log: 'The receipt is in the transparency log',
  // an attestation document (attestation/nitro/report.ts)
  parse: 'The attestation document is well-formed',
  chain: 'Its certificate chain leads to the trusted root',
  'doc-signature': 'It is signed by the enclave certificate',
  time: 'Every certificate is valid at the time checked',
  policy: 'The measurements (PCRs) match the policy',
  binding: 'It is bound to this request (nonce) and to the published keys',
  boot: 'The boot document that receipts name is valid',
};

const ICON: Record<StepState, string> = { passed: '✓', failed: '✗', skipped: '–', pending: '…', running: '…' };
const WORD: Record<StepState, string> = { passed: 'passed', failed: 'failed', skipped: 'not checked', pending: 'pending', running: 'checking' };

export function stepItem(step: StepView): HTMLElement {
  return h(
    'li',
    { class: `step ${step.state}`, 'data-step': step.id, 'data-status': step.state, ...(step.code ? { 'data-code': step.code } : {}) },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, ICON[step.state]),
    h(
      'div',
      { class: 'body' },
      h('div', { class: 'title' }, STEP_TITLES[step.id] ?? step.id, h('span', { class: 'state' }, WORD[step.state])),
      step.reason && step.state !== 'failed' && h('div', { class: 'reason' }, step.reason),
      step.state === 'failed' && errorBox(explainCode(step.code ?? 'INTERNAL', step.reason ?? '')),
    ),
  );
}

export function stepList(steps: readonly StepView[], label: string): HTMLElement {
  return h('ol', { class: 'steps', 'aria-label': label }, steps.map(stepItem));
}

export function reportSteps(report: VerificationReport): StepView[] {
  return report.steps.map((s) => ({ id: s.step, state: s.status, reason: s.reason, ...(s.code ? { code: s.code } : {}) }));
}

/** The document steps; `signature` is renamed so it does not collide with the receipt's. */
export function documentSteps(steps: readonly StepOutcome[]): StepView[] {
  return steps.map((s) => ({ id: s.step === 'signature' ? 'doc-signature' : s.step, state: s.status, reason: s.reason, ...(s.code ? { code: s.code } : {}) }));
}

/** The verdict banner above a report. */
export function verdict(state: 'verified' | 'rejected' | 'partial' | 'running', title: string, detail?: string): HTMLElement {
  return h('div', { class: `verdict ${state}`, 'data-verdict': state, role: 'status' }, h('strong', {}, title), detail && h('span', {}, detail));
}
