/**
 * The transparency log: the latest checkpoint (signature verified, and consistent with the one this
 * browser saw before), a chart of receipts over time per enclave image, and the latest entries,
 * each with an inclusion check against the checkpoint.
 */
import { toBase64 } from '../../../attestation/bytes';
import { latestCheckpoint } from '../../../attestation/client/log-inclusion';
import type { Checkpoint } from '../../../attestation/log/checkpoint';
import type { UiContext } from './context';
import { actionButton, formatTime, h, relativeTime, replace, shortHex } from './dom';
import { errorBox, explain } from './explain';
import { receiptsChart, seriesByImage } from './chart';
import { checkConsistency, checkInclusion, fetchRows, lastSeenCheckpoint, rememberCheckpoint, type LogRow } from './log-data';
import { verdict } from './steps-view';

const SHOWN = 100;
const CHART_SPAN = 4096;

function checkpointView(ctx: UiContext, c: Checkpoint, consistency: HTMLElement): HTMLElement {
  return h(
    'section',
    { class: 'card', id: 'checkpoint' },
    h('header', {}, h('h2', {}, 'Latest checkpoint'), h('span', { class: 'pill ok', 'data-checkpoint': 'verified' }, '✓ signature verified')),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Log'),
      h('dd', {}, h('code', {}, c.origin)),
      h('dt', {}, 'Entries'),
      h('dd', { id: 'checkpoint-size' }, String(c.size)),
      h('dt', {}, 'Root hash'),
      h('dd', {}, shortHex(toBase64(c.rootHash), 44)),
      h('dt', {}, 'Log key'),
      h('dd', {}, ctx.trust.logKeySource === 'pinned' ? 'pinned in Trust settings' : h('span', { class: 'warn-text' }, 'as served by the gateway (not pinned: pin it in Trust settings to detect a swapped log)')),
      h('dt', {}, 'History'),
      h('dd', {}, consistency),
    ),
  );
}

async function consistencyView(ctx: UiContext, c: Checkpoint): Promise<HTMLElement> {
  const previous = lastSeenCheckpoint();
  try {
    const logKey = ctx.trust.logKey!.trim();
    if (!previous || previous.origin !== c.origin || previous.logKey !== logKey) {
      rememberCheckpoint(c, logKey);
      return h('span', { 'data-consistency': 'first-visit' }, 'first visit from this browser: remembered for the next consistency check');
    }
    await checkConsistency(ctx.http, previous, c);
    rememberCheckpoint(c, logKey);
    return h('span', { 'data-consistency': 'passed' }, `✓ consistent with the checkpoint you saw ${relativeTime(previous.seenAt)} (size ${previous.size}): entries were only appended`);
  } catch (err) {
    return errorBox(explain(err));
  }
}

function rowView(ctx: UiContext, row: LogRow, checkpoint: Checkpoint): HTMLElement {
  const result = h('span', { class: 'inclusion' });
  const check = actionButton('Check inclusion', async () => {
    try {
      await checkInclusion(ctx.http, row, checkpoint);
      replace(result, h('span', { class: 'pill ok', 'data-inclusion': 'passed' }, `✓ included (size ${checkpoint.size})`));
    } catch (err) {
      const e = explain(err);
      replace(result, h('span', { class: 'pill bad', 'data-inclusion': 'failed', 'data-code': e.code, title: `${e.meaning} ${e.detail}` }, `✗ ${e.code}`));
    }
  }, { class: 'small secondary' });
  const what =
    row.kind === 'receipt'
      ? [row.model ?? 'receipt', row.seq !== undefined ? ` · #${row.seq}` : '']
      : row.kind === 'attestation'
        ? ['enclave boot', row.image ? [' · image ', shortHex(row.image, 12)] : '']
        : [h('span', { class: 'warn-text' }, row.error ?? 'malformed')];
  return h(
    'tr',
    { 'data-index': row.index, 'data-kind': row.kind },
    h('td', { class: 'num' }, String(row.index)),
    h('td', {}, h('span', { class: `pill kind-${row.kind}` }, row.kind)),
    h('td', {}, row.bootId ? shortHex(row.bootId, 12) : '—'),
    h('td', {}, row.time !== undefined ? formatTime(row.time) : '—'),
    h('td', {}, what),
    h('td', {}, check, result),
  );
}

export async function renderLog(ctx: UiContext, root: HTMLElement): Promise<void> {
  const body = h('div', { class: 'stack' }, h('p', { class: 'muted' }, 'Fetching the signed checkpoint…'));
  replace(
    root,
    h('h1', {}, 'Transparency log'),
    h('p', { class: 'lead' }, 'Every enclave boot and every receipt the gateway relays is appended to an append-only Merkle log. Checkpoints are signed; your browser checks the signature, that the log only grew since your last visit, and, per entry, that it is included under the checkpoint.'),
    body,
  );
  if (!ctx.trust.logKey) {
    replace(body, h('p', {}, 'No log key: the gateway serves none at ', h('code', {}, '/v1/log/key'), ' (it may run without a transparency log) and none is pinned in Trust settings.'));
    return;
  }
  let checkpoint: Checkpoint;
  let rows: LogRow[];
  try {
    checkpoint = await latestCheckpoint(ctx.http, ctx.trust.logKey);
    const from = Math.max(0, checkpoint.size - CHART_SPAN);
    rows = await fetchRows(ctx.http, from, checkpoint.size - from);
  } catch (err) {
    replace(body, verdict('rejected', 'The log could not be read'), errorBox(explain(err)));
    return;
  }
  const consistency = await consistencyView(ctx, checkpoint);
  const latest = rows.slice(-SHOWN).reverse();
  replace(
    body,
    checkpointView(ctx, checkpoint, consistency),
    h('section', { class: 'card' }, h('header', {}, h('h2', {}, 'Receipts over time, per enclave image')), receiptsChart(seriesByImage(rows))),
    h(
      'section',
      { class: 'card' },
      h('header', {}, h('h2', {}, `Latest entries`), h('span', { class: 'muted' }, `${latest.length} of ${checkpoint.size}`)),
      latest.length === 0
        ? h('p', { class: 'muted' }, 'The log is empty.')
        : h('table', { class: 'entries', id: 'log-entries' }, h('thead', {}, h('tr', {}, ['#', 'type', 'enclave', 'time', 'what', 'inclusion'].map((t) => h('th', {}, t)))), h('tbody', {}, latest.map((r) => rowView(ctx, r, checkpoint)))),
    ),
  );
}
