/** A few DOM helpers: elements are built from text nodes, never from HTML strings. */

export type Child = Node | string | number | null | undefined | false | readonly Child[];
type Attrs = Record<string, string | number | boolean | undefined | ((ev: Event) => void)>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child as readonly Child[]) append(parent, c);
    return;
  }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** `h('div', {class: 'x', onclick: fn}, 'text', child)`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children) append(el, c);
  return el;
}

/** The same for SVG elements. */
export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  for (const c of children) append(el, c);
  return el;
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  for (const c of children) append(el, c);
}

/** `0123456789abcdef…` (full value in the title). */
export function shortHex(hex: string, chars = 16): HTMLElement {
  return h('code', { class: 'hex', title: hex }, hex.length > chars ? `${hex.slice(0, chars)}…` : hex);
}

export function longHex(hex: string): HTMLElement {
  return h('code', { class: 'hex wrap-any' }, hex);
}

const UNITS: [number, string][] = [
  [86_400_000 * 365, 'year'],
  [86_400_000 * 30, 'month'],
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1000, 'second'],
];

/** "in 3 hours", "5 minutes ago". */
export function relativeTime(ms: number, now = Date.now()): string {
  const delta = ms - now;
  const abs = Math.abs(delta);
  for (const [size, unit] of UNITS) {
    if (abs >= size) {
      const n = Math.floor(abs / size);
      const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
      return delta >= 0 ? `in ${text}` : `${text} ago`;
    }
  }
  return 'just now';
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

/** A button that shows a busy state while its async handler runs. */
export function actionButton(label: string, run: () => Promise<void>, attrs: Attrs = {}): HTMLButtonElement {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', () => {
    if (button.disabled) return;
    button.disabled = true;
    button.classList.add('busy');
    void run().finally(() => {
      button.disabled = false;
      button.classList.remove('busy');
    });
  });
  return button;
}
