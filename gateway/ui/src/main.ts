/** The explorer's shell: loads the trust settings, shows where they come from, routes by hash. */
import { createContext, type UiContext } from './context';
import { h, replace } from './dom';
import { errorBox, explain } from './explain';
import { renderEnclaves } from './enclaves-page';
import { renderInfer } from './infer-page';
import { renderLog } from './log-page';
import { renderReceipt } from './receipt-page';
import { renderTrust } from './trust-page';
import { trustsCustomRoot } from './trust';

type Page = (ctx: UiContext, root: HTMLElement) => Promise<void>;

function banner(ctx: UiContext): void {
  const el = document.getElementById('trust-banner');
  if (!el) return;
  const p = ctx.trust.policy;
  el.hidden = false;
  if (!p) {
    el.className = 'banner bad';
    replace(el, h('strong', {}, 'No measurement policy. '), 'Nothing can be verified until you pin one in ', h('a', { href: '#/trust' }, 'Trust settings'), '.');
    return;
  }
  const custom = trustsCustomRoot(p);
  el.className = `banner ${custom || p.policy.allowDebug ? 'warn' : 'ok'}`;
  replace(
    el,
    h('strong', {}, `${Object.keys(p.file.pcrs).length} PCRs pinned`),
    ` · root: ${custom ? 'a development CA (not AWS)' : 'AWS Nitro Enclaves Root-G1'}`,
    ` · policy ${ctx.trust.policySource === 'pinned' ? 'pinned in this browser' : 'served by the gateway'}`,
    ` · log key ${ctx.trust.logKey ? (ctx.trust.logKeySource === 'pinned' ? 'pinned' : 'served by the gateway') : 'none'}`,
    ' · ',
    h('a', { href: '#/trust' }, 'change'),
  );
}

async function start(): Promise<void> {
  const root = document.getElementById('page')!;
  let ctx: UiContext;
  try {
    ctx = await createContext(location.origin);
  } catch (err) {
    replace(root, h('h1', {}, 'The explorer could not start'), errorBox(explain(err)));
    return;
  }
  const pages: Record<string, Page> = {
    enclaves: renderEnclaves,
    infer: renderInfer,
    receipt: renderReceipt,
    log: renderLog,
    trust: (c, r) => renderTrust(c, r, () => {
      banner(c);
      void route();
    }),
  };
  let generation = 0;
  const route = async (): Promise<void> => {
    const name = location.hash.replace(/^#\/?/, '').split('/')[0] || 'enclaves';
    const page = pages[name] ?? pages.enclaves!;
    for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>('#nav a'))) a.classList.toggle('active', a.dataset.page === name);
    const mine = ++generation;
    const view = h('div', { class: 'view', 'data-page': name });
    replace(root, view);
    try {
      await page(ctx, view);
    } catch (err) {
      if (mine === generation) replace(view, errorBox(explain(err)));
    }
    if (mine === generation) document.body.dataset.ready = name;
  };
  banner(ctx);
  window.addEventListener('hashchange', () => void route());
  await route();
}

void start();
