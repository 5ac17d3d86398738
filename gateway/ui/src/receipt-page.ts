/** The receipt verifier: paste a receipt or a receipt bundle, or drop its file, and see each step. */
import type { UiContext } from './context';
import { actionButton, formatTime, h, replace, shortHex } from './dom';
import { errorBox, explain } from './explain';
import { HANDOFF_KEY } from './infer-page';
import { parseReceiptInput } from './receipt-bundle';
import { checkReceipt, verdictOf, type ReceiptCheck } from './receipt-check';
import { reportSteps, stepList, verdict } from './steps-view';

const MAX_FILE = 32 * 1024 * 1024;

function summary(check: ReceiptCheck): HTMLElement {
  const v = verdictOf(check);
  if (v === 'rejected') {
    const failed = check.report.steps.find((s) => s.status === 'failed')!;
    return verdict('rejected', 'Rejected: this receipt does not prove what it claims', `step “${failed.step}” failed`);
  }
  if (v === 'verified') return verdict('verified', 'Receipt verified', 'signed by an attested enclave, and it matches the input and output in the bundle');
  return verdict(
    'partial',
    check.complete ? 'Authentic receipt, some steps still open' : 'Authentic receipt; its contents were not checked',
    check.complete ? check.report.steps.filter((s) => s.status !== 'passed').map((s) => `${s.step}: ${s.status}`).join(', ') : 'paste the receipt bundle (with salt, inputs and outputs) to check what it covers',
  );
}

function claimsView(check: ReceiptCheck): HTMLElement | undefined {
  const c = check.claims;
  if (!c) return undefined;
  return h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Enclave'),
    h('dd', {}, h('code', {}, c.iss), ` · receipt #${c.seq} · attestation from ${check.source ?? '?'}`),
    h('dt', {}, 'Signed at'),
    h('dd', {}, formatTime(c.iat * 1000)),
    h('dt', {}, 'Request id'),
    h('dd', {}, h('code', {}, c.jti)),
    h('dt', {}, 'Model'),
    h('dd', {}, `${c.model.name}@${c.model.version} · sha256 `, shortHex(c.model.sha256, 24)),
    h('dt', {}, 'Input digest'),
    h('dd', {}, shortHex(c.input, 32)),
    h('dt', {}, 'Output digest'),
    h('dd', {}, shortHex(c.output, 32)),
    h('dt', {}, 'Mode'),
    h('dd', {}, c.sealed ? 'sealed' : 'plain'),
  );
}

export async function renderReceipt(ctx: UiContext, root: HTMLElement): Promise<void> {
  const text = h('textarea', { id: 'receipt-text', rows: 10, spellcheck: false, placeholder: 'eyJhbGciOiJFUzI1NiIs…  or  {"format": "teegate-receipt-bundle", …}' });
  const handoff = sessionStorage.getItem(HANDOFF_KEY);
  if (handoff !== null) {
    text.value = handoff;
    sessionStorage.removeItem(HANDOFF_KEY);
  }
  const out = h('div', { id: 'receipt-result' });
  const file = h('input', { type: 'file', accept: '.json,.jws,.txt,application/json,text/plain', id: 'receipt-file' });

  const verify = async (): Promise<void> => {
    replace(out, verdict('running', 'Verifying…'));
    try {
      const bundle = parseReceiptInput(text.value);
      const check = await checkReceipt(ctx, bundle);
      replace(out, summary(check), stepList(reportSteps(check.report), 'receipt verification'), claimsView(check));
    } catch (err) {
      replace(out, verdict('rejected', 'This cannot be verified'), errorBox(explain(err)));
    }
  };
  const load = async (f: File): Promise<void> => {
    if (f.size > MAX_FILE) {
      replace(out, verdict('rejected', 'This file is too large to be a receipt'));
      return;
    }
    text.value = await f.text();
    await verify();
  };
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void load(f);
  });
  const zone = h('div', { class: 'dropzone', id: 'receipt-drop' }, text, h('div', { class: 'drop-hint' }, 'Paste above, drop a file here, or ', h('label', { class: 'file-link' }, 'choose a file', file)));
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const f = (ev as DragEvent).dataTransfer?.files[0];
    if (f) void load(f);
  });

  replace(
    root,
    h('h1', {}, 'Verify a receipt'),
    h('p', { class: 'lead' }, 'A receipt is signed by the enclave that ran the inference. Its signature is checked against that enclave’s attestation (found among the live enclaves or in the transparency log); a receipt bundle also lets your browser recompute what the receipt covers: your input and the output you received.'),
    h('div', { class: 'card' }, zone, h('div', { class: 'actions' }, actionButton('Verify', verify, { id: 'verify-receipt', class: 'primary' }))),
    out,
  );
  if (handoff !== null) await verify();
}
