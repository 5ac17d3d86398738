/**
 * Live enclaves: each one attested now through the gateway (fresh nonce) and verified here, with its
 * measurements (PCRs) against the policy, its certificate chain and validity, its manifest and keys.
 */
import { AttestationRejectedError, attestThroughGateway, listEnclaves, type AttestedEnclave, type ListedEnclave } from '../../../attestation/client/enclave-attestation';
import { toHex } from '../../../attestation/bytes';
import { parseCoseSign1 } from '../../../attestation/cose/sign1';
import { parseNitroPayload } from '../../../attestation/nitro/document';
import type { CertificateSummary } from '../../../attestation/nitro/verify';
import { anchors, type UiContext } from './context';
import { formatTime, h, longHex, relativeTime, replace, shortHex } from './dom';
import { errorBox, explain } from './explain';
import { documentSteps, stepList, verdict, type StepView } from './steps-view';

function commonName(dn: string): string {
  return /CN=([^,]+)/.exec(dn)?.[1] ?? dn;
}

function validity(c: CertificateSummary, now: number): HTMLElement {
  const from = Date.parse(c.notBefore);
  const to = Date.parse(c.notAfter);
  const valid = now >= from && now <= to;
  const used = Math.min(100, Math.max(0, ((now - from) / Math.max(1, to - from)) * 100));
  const fill = h('span');
  fill.style.width = `${used.toFixed(1)}%`; // CSSOM, not a style attribute: the page's CSP allows no inline styles
  return h(
    'div',
    { class: `validity ${valid ? 'ok' : 'bad'}` },
    h('div', { class: 'bar' }, fill),
    h('small', {}, valid ? `valid, expires ${relativeTime(to, now)}` : now < from ? `not valid before ${formatTime(from)}` : `expired ${relativeTime(to, now)}`, ` · ${formatTime(from)} → ${formatTime(to)}`),
  );
}

function chainView(chain: readonly CertificateSummary[]): HTMLElement {
  const now = Date.now();
  return h(
    'ol',
    { class: 'chain' },
    chain.map((c, i) =>
      h('li', {}, h('div', { class: 'cert-name' }, h('span', { class: 'tag' }, i === 0 ? 'root' : i === chain.length - 1 ? 'enclave' : 'intermediate'), commonName(c.subject)), validity(c, now)),
    ),
  );
}

function pcrTable(pcrs: ReadonlyMap<number, Uint8Array>, pinned: Readonly<Record<number, string>>, verified: boolean): HTMLElement {
  const sorted = [...pcrs].sort((a, b) => a[0] - b[0]);
  const shown = sorted.filter(([i, v]) => pinned[i] !== undefined || v.some((b) => b !== 0));
  const zero = sorted.filter(([i, v]) => pinned[i] === undefined && v.every((b) => b === 0)).map(([i]) => i);
  return h(
    'table',
    { class: 'pcrs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'PCR'), h('th', {}, verified ? 'value (SHA-384)' : 'value (SHA-384, as the document claims)'), h('th', {}, 'policy'))),
    h(
      'tbody',
      {},
      shown.map(([i, v]) => {
        const hex = toHex(v);
        const expected = pinned[i];
        return h(
          'tr',
          { 'data-pcr': i },
          h('td', {}, String(i)),
          h('td', {}, longHex(hex), expected !== undefined && expected !== hex && h('div', { class: 'expected' }, 'policy expects ', longHex(expected))),
          h('td', {}, expected === undefined ? h('span', { class: 'pill muted' }, 'not pinned') : expected === hex ? h('span', { class: 'pill ok' }, '✓ pinned') : h('span', { class: 'pill bad' }, '✗ differs')),
        );
      }),
      zero.length > 0 && h('tr', { class: 'zero' }, h('td', {}, zero.length === 1 ? String(zero[0]) : `${zero[0]}–${zero[zero.length - 1]}`), h('td', { class: 'muted' }, 'all zero (not used by this enclave)'), h('td', {}, h('span', { class: 'pill muted' }, 'not pinned'))),
    ),
  );
}

/** PCRs of a document that failed verification, read without trusting them (to show what differs). */
function claimedPcrs(document: Uint8Array | undefined): ReadonlyMap<number, Uint8Array> | undefined {
  if (!document) return undefined;
  try {
    return parseNitroPayload(parseCoseSign1(document).payload).pcrs;
  } catch {
    return undefined;
  }
}

function manifestView(enclave: AttestedEnclave): HTMLElement {
  const m = enclave.manifest;
  return h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Boot id'),
    h('dd', {}, h('code', {}, m.boot_id)),
    h('dt', {}, 'Booted'),
    h('dd', {}, `${formatTime(Date.parse(m.issued_at))} (${relativeTime(Date.parse(m.issued_at))})`),
    h('dt', {}, 'Software'),
    h('dd', {}, `${m.software.name} ${m.software.version}`),
    h('dt', {}, 'Models'),
    h('dd', {}, h('ul', { class: 'plain' }, m.models.map((x) => h('li', {}, h('strong', {}, `${x.name}@${x.version}`), ' sha256 ', shortHex(x.sha256, 24))))),
    h('dt', {}, 'Receipt key'),
    h('dd', {}, 'ES256, kid ', shortHex(m.keys.receipt.kid, 43)),
    h('dt', {}, 'Seal key'),
    h('dd', {}, 'ECDH-ES+A256KW, kid ', shortHex(m.keys.seal.kid, 43)),
    h('dt', {}, 'Boot document'),
    h('dd', {}, 'SHA-384 ', shortHex(enclave.boot.documentSha384, 32), ` · ${formatTime(enclave.boot.timestamp)}`),
  );
}

function verifiedCard(listed: ListedEnclave, enclave: AttestedEnclave, pinned: Readonly<Record<number, string>>): HTMLElement {
  const steps: StepView[] = [
    ...documentSteps(enclave.steps),
    { id: 'manifest', state: 'passed', reason: `user_data = SHA-256 of the manifest, public_key = receipt key ${enclave.manifest.keys.receipt.kid.slice(0, 12)}…` },
    { id: 'boot', state: 'passed', reason: `verified at its own time, bound to the same manifest (SHA-384 ${enclave.boot.documentSha384.slice(0, 16)}…)` },
  ];
  return h(
    'section',
    { class: 'card enclave', 'data-enclave': listed.id, 'data-verified': 'true' },
    h('header', {}, h('h2', {}, `Enclave ${listed.id}`), h('span', { class: `pill ${listed.state === 'ready' ? 'ok' : 'muted'}` }, listed.state)),
    verdict('verified', 'Attested now and verified in your browser', `fresh document with nonce ${enclave.nonce.slice(0, 12)}…, module ${enclave.fresh.moduleId}${enclave.fresh.debug ? ' — DEBUG MODE' : ''}`),
    stepList(steps, `verification of enclave ${listed.id}`),
    h('div', { class: 'grid2' }, h('div', {}, h('h3', {}, 'Manifest and keys'), manifestView(enclave)), h('div', {}, h('h3', {}, 'Certificate chain'), chainView(enclave.fresh.chain))),
    h('h3', {}, 'Measurements'),
    pcrTable(enclave.fresh.pcrs, pinned, true),
  );
}

function rejectedCard(listed: ListedEnclave, err: unknown, pinned: Readonly<Record<number, string>>): HTMLElement {
  const steps = err instanceof AttestationRejectedError ? documentSteps(err.steps) : [];
  if (err instanceof AttestationRejectedError && err.stage === 'manifest') steps.push({ id: 'manifest', state: 'failed', reason: err.message, code: err.code });
  const pcrs = claimedPcrs(listed.document);
  return h(
    'section',
    { class: 'card enclave', 'data-enclave': listed.id, 'data-verified': 'false' },
    h('header', {}, h('h2', {}, `Enclave ${listed.id}`), h('span', { class: 'pill muted' }, listed.state)),
    verdict('rejected', 'Not verified', listed.bootId ? `boot id ${listed.bootId}` : undefined),
    steps.length > 0 ? stepList(steps, `verification of enclave ${listed.id}`) : errorBox(explain(err)),
    pcrs && [h('h3', {}, 'Measurements the enclave claims (not verified)'), pcrTable(pcrs, pinned, false)],
  );
}

export async function renderEnclaves(ctx: UiContext, root: HTMLElement): Promise<void> {
  const list = h('div', { class: 'stack' }, h('p', { class: 'muted' }, 'Asking the gateway for its enclaves…'));
  replace(
    root,
    h('h1', {}, 'Live enclaves'),
    h('p', { class: 'lead' }, 'Each enclave is asked for a fresh attestation document carrying a random nonce from your browser. The document, its certificate chain, its measurements and the keys it publishes are verified here, against the trusted root and policy shown in Trust settings.'),
    list,
  );
  let trust;
  let listed: ListedEnclave[];
  try {
    trust = anchors(ctx);
    listed = await listEnclaves(ctx.http);
  } catch (err) {
    replace(list, errorBox(explain(err)));
    return;
  }
  if (listed.length === 0) {
    replace(list, h('p', {}, 'The gateway lists no enclaves. Start one with ', h('code', {}, 'teegate up'), '.'));
    return;
  }
  replace(list, listed.map((e) => h('section', { class: 'card enclave', 'data-enclave': e.id }, h('header', {}, h('h2', {}, `Enclave ${e.id}`), h('span', { class: 'pill muted' }, e.state)), verdict('running', 'Verifying…'))));
  await Promise.all(
    listed.map(async (e, i) => {
      let card: HTMLElement;
      try {
        card = verifiedCard(e, await attestThroughGateway(ctx.http, trust, { enclaveId: e.id, listed: e }), trust.policy.pcrs ?? {});
      } catch (err) {
        card = rejectedCard(e, err, trust.policy.pcrs ?? {});
      }
      list.children[i]?.replaceWith(card);
    }),
  );
}
