/** Receipts over time per enclave image (PCR0), as stacked bars in SVG. */
import { h, s } from './dom';
import type { LogRow } from './log-data';

const COLORS = ['#2f7de1', '#3fb68b', '#e6a23c', '#d9534f', '#8e6fd8', '#1fb5c4', '#b0728a', '#7a8b99'];
const W = 760;
const H = 220;
const PAD = { left: 40, right: 12, top: 12, bottom: 34 };

export interface ImageSeries {
  readonly image: string;
  readonly times: readonly number[];
  readonly enclaves: number;
}

/** Groups receipt rows by the image of the enclave that signed them (via its logged attestation). */
export function seriesByImage(rows: readonly LogRow[]): ImageSeries[] {
  const imageOf = new Map<string, string>();
  for (const r of rows) if (r.kind === 'attestation' && r.bootId && r.image) imageOf.set(r.bootId, r.image);
  const groups = new Map<string, { times: number[]; boots: Set<string> }>();
  for (const r of rows) {
    if (r.kind !== 'receipt' || r.time === undefined) continue;
    const image = (r.bootId && imageOf.get(r.bootId)) ?? 'unknown';
    const g = groups.get(image) ?? { times: [], boots: new Set<string>() };
    g.times.push(r.time);
    if (r.bootId) g.boots.add(r.bootId);
    groups.set(image, g);
  }
  return [...groups].map(([image, g]) => ({ image, times: g.times, enclaves: g.boots.size })).sort((a, b) => b.times.length - a.times.length);
}

const MIN_BUCKETS = 16;
const STEPS = [1000, 5000, 15_000, 60_000, 300_000, 900_000, 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000];

function label(ms: number, step: number): string {
  const iso = new Date(ms).toISOString();
  return step >= 86_400_000 ? iso.slice(5, 10) : step >= 60_000 ? iso.slice(11, 16) : iso.slice(11, 19);
}

export function receiptsChart(series: readonly ImageSeries[]): HTMLElement {
  const all = series.flatMap((x) => x.times);
  if (all.length === 0) return h('p', { class: 'muted', id: 'receipts-chart' }, 'No receipts in the log yet: run an inference.');
  const min = Math.min(...all);
  const max = Math.max(...all);
  const step = STEPS.find((st) => (max - min) / st <= 30) ?? STEPS[STEPS.length - 1]!;
  // At least MIN_BUCKETS bars wide, the newest receipts at the right edge.
  const end = Math.floor(max / step) * step;
  const buckets = Math.max(MIN_BUCKETS, Math.floor((end - Math.floor(min / step) * step) / step) + 1);
  const start = end - (buckets - 1) * step;
  const counts = series.map((x) => {
    const c = new Array<number>(buckets).fill(0);
    for (const t of x.times) c[Math.floor((t - start) / step)]! += 1;
    return c;
  });
  const totals = Array.from({ length: buckets }, (_, i) => counts.reduce((sum, c) => sum + c[i]!, 0));
  const top = Math.max(1, ...totals);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const barW = plotW / buckets;
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;

  const bars: SVGElement[] = [];
  for (let i = 0; i < buckets; i++) {
    let base = 0;
    counts.forEach((c, k) => {
      const n = c[i]!;
      if (n === 0) return;
      bars.push(
        s('rect', { x: PAD.left + i * barW + barW * 0.12, y: y(base + n), width: Math.max(1, barW * 0.76), height: y(base) - y(base + n), fill: COLORS[k % COLORS.length]!, rx: 2 },
          s('title', {}, `${n} receipt${n === 1 ? '' : 's'} · image ${series[k]!.image.slice(0, 12)} · ${new Date(start + i * step).toISOString()}`)),
      );
      base += n;
    });
  }
  const ticks = [0, Math.ceil(top / 2), top].filter((v, i, a) => a.indexOf(v) === i);
  const labelEvery = Math.max(1, Math.ceil(buckets / 8));
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'receipts over time per enclave image' },
    ticks.map((v) => [s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v))]),
    bars,
    Array.from({ length: buckets }, (_, i) => i)
      .filter((i) => i % labelEvery === 0)
      .map((i) => s('text', { x: PAD.left + i * barW + barW / 2, y: H - PAD.bottom + 16, 'text-anchor': 'middle', class: 'axis' }, label(start + i * step, step))),
    s('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'axis' }, `UTC, one bar per ${step >= 3_600_000 ? `${step / 3_600_000} h` : step >= 60_000 ? `${step / 60_000} min` : `${step / 1000} s`}`),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    series.map((x, k) => {
      const swatch = h('span', { class: 'swatch' });
      swatch.style.background = COLORS[k % COLORS.length]!;
      return h('li', { 'data-image': x.image }, swatch, x.image === 'unknown' ? 'image unknown (no logged attestation)' : h('span', {}, 'image PCR0 ', h('code', { title: x.image }, `${x.image.slice(0, 16)}…`)), ` — ${x.times.length} receipt${x.times.length === 1 ? '' : 's'}, ${x.enclaves} enclave boot${x.enclaves === 1 ? '' : 's'}`);
    }),
  );
  return h('div', { id: 'receipts-chart' }, svg, legend);
}
