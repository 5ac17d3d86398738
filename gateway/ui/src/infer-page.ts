/**
 * A verified inference on the demo model: the client SDK attests the enclave, seals the request to
 * it, and checks the answer end to end; each step is shown as it is known. The receipt can be
 * downloaded as a bundle or opened in the receipt verifier.
 */
import { toBase64 } from '../../../attestation/bytes';
import { connect, type InferResult, type TeegateClient } from '../../../attestation/client/client';
import { AttestationRejectedError } from '../../../attestation/client/enclave-attestation';
import { REPORT_STEPS, rejectedAttestationReport } from '../../../attestation/client/report';
import { parseInferTensors, type InferTensor } from '../../../attestation/tensors';
import { requirePolicy } from './trust';
import type { UiContext } from './context';
import { actionButton, formatTime, h, replace, shortHex } from './dom';
import { errorBox, explain } from './explain';
import { makeBundle } from './receipt-bundle';
import { reportSteps, stepList, verdict, type StepView } from './steps-view';

export const DEMO_MODEL = 'ppocr-v4-rec';
export const HANDOFF_KEY = 'teegate.ui.receiptHandoff';

let client: { key: string; client: TeegateClient } | undefined;

async function connected(ctx: UiContext): Promise<TeegateClient> {
  const policy = requirePolicy(ctx.trust);
  const key = JSON.stringify([policy.file, ctx.trust.logKey, ctx.trust.apiKey]);
  if (client?.key !== key) {
    client = {
      key,
      client: await connect(ctx.http.baseUrl, {
        policy,
        ...(ctx.trust.logKey ? { logKey: ctx.trust.logKey } : {}),
        ...(ctx.trust.apiKey ? { apiKey: ctx.trust.apiKey } : {}),
      }),
    };
  }
  return client.client;
}

function pendingSteps(running: string | undefined, done: readonly StepView[] = []): StepView[] {
  return REPORT_STEPS.map((id) => done.find((d) => d.id === id) ?? { id, state: id === running ? 'running' : 'pending' });
}

function outputText(outputs: readonly InferTensor[]): { text?: string; confidence?: number } {
  const text = outputs.find((o) => o.name === 'text')?.data;
  const confidence = outputs.find((o) => o.name === 'confidence')?.data;
  return {
    ...(Array.isArray(text) && typeof text[0] === 'string' ? { text: text[0] } : {}),
    ...(Array.isArray(confidence) && typeof confidence[0] === 'number' ? { confidence: confidence[0] } : {}),
  };
}

function download(name: string, text: string): HTMLAnchorElement {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  return h('a', { class: 'button secondary', href: url, download: name }, 'Download receipt bundle');
}

function resultView(model: string, inputs: readonly InferTensor[], result: InferResult): HTMLElement {
  const { text, confidence } = outputText(result.outputs);
  const bundle = JSON.stringify(makeBundle(model, inputs, result), null, 2);
  const claims = result.claims;
  return h(
    'div',
    { class: 'result' },
    h('div', { class: 'answer' }, h('span', { class: 'label' }, 'The model read'), h('q', { id: 'ocr-text' }, text ?? '(no text output)'), confidence !== undefined && h('small', {}, `confidence ${(confidence * 100).toFixed(1)}%`)),
    claims &&
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Enclave'),
        h('dd', {}, h('code', {}, claims.iss), ` · receipt #${claims.seq}`),
        h('dt', {}, 'Signed at'),
        h('dd', {}, formatTime(claims.iat * 1000)),
        h('dt', {}, 'Model'),
        h('dd', {}, `${claims.model.name}@${claims.model.version} · sha256 `, shortHex(claims.model.sha256, 24)),
        h('dt', {}, 'Request'),
        h('dd', {}, result.sealed ? 'sealed to the enclave (the gateway could not read it)' : 'plain (the gateway could read it)'),
        h('dt', {}, 'Log index'),
        h('dd', {}, result.logIndex !== undefined ? String(result.logIndex) : 'not logged'),
      ),
    h(
      'div',
      { class: 'actions' },
      download(`receipt-${claims?.jti ?? 'inference'}.json`, bundle),
      h('button', {
        type: 'button',
        class: 'secondary',
        id: 'open-in-verifier',
        onclick: () => {
          sessionStorage.setItem(HANDOFF_KEY, bundle);
          location.hash = '#/receipt';
        },
      }, 'Open in the receipt verifier'),
    ),
  );
}

async function imageTensor(file: Blob): Promise<InferTensor[]> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  return parseInferTensors([{ name: 'image', datatype: 'BYTES', shape: [1], data: [toBase64(bytes)] }], 'inputs');
}

export async function renderInfer(ctx: UiContext, root: HTMLElement): Promise<void> {
  let image: Blob | undefined;
  const preview = h('img', { src: 'demo/line.png', alt: 'The demo input: one line of printed text', class: 'preview' });
  const sealed = h('input', { type: 'checkbox', id: 'sealed', checked: true });
  const picker = h('input', { type: 'file', accept: 'image/png', id: 'image-file' });
  picker.addEventListener('change', () => {
    const f = picker.files?.[0];
    if (!f) return;
    image = f;
    preview.src = URL.createObjectURL(f);
  });
  const status = h('div', { id: 'infer-status' });
  const steps = h('div', { id: 'infer-steps' }, stepList(pendingSteps(undefined), 'inference verification'));
  const result = h('div', { id: 'infer-result' });

  const run = async (): Promise<void> => {
    replace(result);
    replace(status, verdict('running', 'Attesting the enclave…', 'fresh attestation document, verified in your browser'));
    replace(steps, stepList(pendingSteps('attestation'), 'inference verification'));
    try {
      const c = await connected(ctx);
      await c.current();
      replace(status, verdict('running', 'Running the inference…', sealed.checked ? 'the request is sealed to the attested enclave' : 'plain request'));
      replace(steps, stepList(pendingSteps('signature', [{ id: 'attestation', state: 'passed', reason: `enclave ${c.attestation.bootId}` }, { id: 'manifest', state: 'passed' }]), 'inference verification'));
      const inputs = await imageTensor(image ?? (await (await fetch('demo/line.png')).blob()));
      const answer = await c.infer(DEMO_MODEL, inputs, { sealed: sealed.checked, logWaitMs: 10_000 });
      const failed = answer.report.steps.find((s) => s.status === 'failed');
      replace(
        status,
        failed
          ? verdict('rejected', 'Rejected: do not trust this answer', `step “${failed.step}” failed`)
          : answer.report.valid && answer.report.steps.every((s) => s.status === 'passed')
            ? verdict('verified', 'Every step verified', 'the answer comes from the attested enclave, unchanged')
            : verdict('partial', 'Verified, with steps still open', answer.report.steps.filter((s) => s.status !== 'passed').map((s) => `${s.step}: ${s.status}`).join(', ')),
      );
      replace(steps, stepList(reportSteps(answer.report), 'inference verification'));
      replace(result, resultView(DEMO_MODEL, inputs, answer));
    } catch (err) {
      if (err instanceof AttestationRejectedError) {
        replace(status, verdict('rejected', 'The enclave failed attestation: nothing was sent'));
        replace(steps, stepList(reportSteps(rejectedAttestationReport(err)), 'inference verification'));
      } else {
        replace(status, verdict('rejected', 'The inference could not be completed'), errorBox(explain(err)));
        replace(steps, stepList(pendingSteps(undefined), 'inference verification'));
      }
    }
  };

  replace(
    root,
    h('h1', {}, 'Verified inference'),
    h('p', { class: 'lead' }, 'Runs the demo text-recognition model (', h('code', {}, DEMO_MODEL), ') in the enclave. Your browser attests the enclave, seals the image to its key, and checks the signed receipt against your own input and the output it got back.'),
    h(
      'div',
      { class: 'card infer-form' },
      h('div', { class: 'input-image' }, preview),
      h(
        'div',
        { class: 'controls' },
        h('label', { class: 'check' }, sealed, ' Seal the request to the enclave (end-to-end encryption)'),
        h('label', { class: 'file' }, 'Or use your own PNG of one line of text: ', picker),
        actionButton('Run verified inference', run, { id: 'run-inference', class: 'primary' }),
      ),
    ),
    status,
    result,
    steps,
  );
}
