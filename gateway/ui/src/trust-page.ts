/** Trust settings: the measurement policy and roots, the log key, and the API key, with their sources. */
import { sha256, toHex } from '../../../attestation/bytes';
import { parseVerifierKey } from '../../../attestation/log/signed-note';
import { AWS_NITRO_ROOT_G1_SHA256 } from '../../../attestation/nitro/aws-root';
import { pemToDerList } from '../../../attestation/x509/pem';
import { loadTrust, parsePolicyText, pinned } from './trust';
import type { UiContext } from './context';
import { actionButton, h, longHex, replace } from './dom';
import { errorBox, explain } from './explain';

async function rootsView(pems: readonly string[] | undefined): Promise<HTMLElement> {
  if (!pems) return h('span', {}, 'AWS Nitro Enclaves Root-G1 (the production root)');
  const fingerprints = await Promise.all(pems.flatMap((p) => pemToDerList(p)).map(async (d) => toHex(await sha256(d))));
  return h(
    'ul',
    { class: 'plain' },
    fingerprints.map((f) => h('li', {}, f === AWS_NITRO_ROOT_G1_SHA256 ? 'AWS Nitro Enclaves Root-G1 ' : h('span', { class: 'warn-text' }, 'custom root (a dev CA: never trust it for production) '), 'SHA-256 ', longHex(f))),
  );
}

export async function renderTrust(ctx: UiContext, root: HTMLElement, onChange: () => void): Promise<void> {
  const t = ctx.trust;
  const policyText = h('textarea', { id: 'policy-text', rows: 8, spellcheck: false, placeholder: '{"format": "teegate-measurement-policy", "version": 1, "pcrs": {"0": "…"}, …}' });
  const logKey = h('input', { type: 'text', id: 'log-key', spellcheck: false, value: pinned.logKey() ?? '', placeholder: 'teegate.local/log+1a2b3c4d+AbC…' });
  const apiKey = h('input', { type: 'password', id: 'api-key', value: pinned.apiKey() ?? '', placeholder: 'only when the gateway requires one for inference' });
  const message = h('div', { id: 'trust-message' });

  const reload = async (): Promise<void> => {
    ctx.trust = await loadTrust(ctx.http);
    onChange();
  };
  const pinPolicy = async (): Promise<void> => {
    try {
      parsePolicyText(policyText.value);
      pinned.setPolicy(policyText.value);
      await reload();
    } catch (err) {
      replace(message, errorBox(explain(err)));
    }
  };
  const saveKeys = async (): Promise<void> => {
    try {
      if (logKey.value.trim()) await parseVerifierKey(logKey.value.trim());
      pinned.setLogKey(logKey.value.trim() ? logKey.value : null);
      pinned.setApiKey(apiKey.value);
      await reload();
    } catch (err) {
      replace(message, errorBox(explain(err)));
    }
  };

  const policy = t.policy;
  replace(
    root,
    h('h1', {}, 'Trust settings'),
    h('p', { class: 'lead' }, 'Verification is only as good as what it is checked against. Values you pin here are kept in this browser and win over what the gateway serves; the gateway itself is not trusted.'),
    message,
    h(
      'section',
      { class: 'card', id: 'policy-card' },
      h('header', {}, h('h2', {}, 'Measurement policy'), policy && h('span', { class: `pill ${t.policySource === 'pinned' ? 'ok' : 'warn'}` }, t.policySource === 'pinned' ? 'pinned in this browser' : 'served by the gateway')),
      policy
        ? h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Pinned PCRs'),
            h('dd', {}, h('ul', { class: 'plain' }, Object.entries(policy.file.pcrs).map(([i, v]) => h('li', {}, `PCR${i} `, longHex(v))))),
            h('dt', {}, 'Debug enclaves'),
            h('dd', {}, policy.policy.allowDebug ? h('span', { class: 'warn-text' }, 'allowed (development only)') : 'refused'),
            h('dt', {}, 'Maximum age'),
            h('dd', {}, policy.policy.maxAgeMs !== undefined ? `${policy.policy.maxAgeMs / 1000} s` : 'default (5 min)'),
            h('dt', {}, 'Trusted roots'),
            h('dd', {}, await rootsView(policy.rootCertificates)),
          )
        : t.policyError && errorBox(explain(t.policyError)),
      h('h3', {}, 'Pin a policy file'),
      policyText,
      h(
        'div',
        { class: 'actions' },
        actionButton('Pin this policy', pinPolicy, { class: 'primary', id: 'pin-policy' }),
        pinned.policy() !== null &&
          actionButton('Use the gateway’s policy', async () => {
            pinned.setPolicy(null);
            await reload();
          }, { class: 'secondary' }),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('header', {}, h('h2', {}, 'Keys')),
      h('label', { class: 'field' }, h('span', {}, 'Transparency log key', t.logKey && h('small', {}, t.logKeySource === 'pinned' ? ' (pinned)' : ' (currently the gateway’s)')), logKey),
      h('label', { class: 'field' }, h('span', {}, 'API key for inference (kept for this tab only)'), apiKey),
      h('div', { class: 'actions' }, actionButton('Save keys', saveKeys, { class: 'primary', id: 'save-keys' })),
    ),
  );
}
