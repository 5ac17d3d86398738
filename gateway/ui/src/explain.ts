/**
 * Errors in words a user understands: the meaning of the code from docs/errors.md (compiled into
 * the bundle) and what to do about it, from the code's action in the registry.
 */
import { isErrorCode, isTeegateError, type ErrorAction } from '../../../attestation/errors';
import { h } from './dom';

declare const __TEEGATE_ERROR_MEANINGS__: Readonly<Record<string, { readonly action: ErrorAction; readonly meaning: string }>>;

export interface Explanation {
  readonly code: string;
  /** Short verdict. */
  readonly title: string;
  /** What the code means (docs/errors.md). */
  readonly meaning: string;
  /** What to do now. */
  readonly advice: string;
  /** The technical message. */
  readonly detail: string;
  readonly action: ErrorAction | 'unknown';
}

const TITLES: Record<ErrorAction | 'unknown', string> = {
  stop: 'Do not trust this result',
  fix: 'Something needs fixing',
  retry: 'Temporary problem',
  unknown: 'Unexpected error',
};

const ADVICE: Record<ErrorAction | 'unknown', string> = {
  stop: 'The evidence failed a security check: it was changed on the way, or it does not come from an enclave your policy trusts. Retrying will not help.',
  fix: 'The input or the settings are wrong; trying the same thing again will fail the same way. Check the Trust settings and what you entered.',
  retry: 'This can pass by itself: wait a moment and try again.',
  unknown: 'This is not one of the documented errors. Reload the page; if it persists, report it with the technical detail below.',
};

/** Where the generic advice for an action is not enough. */
const CODE_ADVICE: Readonly<Record<string, string>> = {
  AUTH_REQUIRED: "This gateway needs an API key for inference: enter it under Trust settings (teegate up prints it and keeps it in data/api-key).",
  AUTH_INVALID: 'The API key under Trust settings is not one this gateway knows: check it (teegate up keeps it in data/api-key).',
};

export function explainCode(code: string, detail: string): Explanation {
  const known = isErrorCode(code) ? __TEEGATE_ERROR_MEANINGS__[code] : undefined;
  const action = known?.action ?? 'unknown';
  return { code, title: TITLES[action], meaning: known?.meaning ?? '', advice: CODE_ADVICE[code] ?? ADVICE[action], detail, action };
}

export function explain(err: unknown): Explanation {
  if (isTeegateError(err)) return explainCode(err.code, err.message);
  if (err instanceof Error) return explainCode('INTERNAL', err.message);
  return explainCode('INTERNAL', String(err));
}

/** The error box every page uses. */
export function errorBox(e: Explanation): HTMLElement {
  return h(
    'div',
    { class: `error-box action-${e.action}`, role: 'alert', 'data-code': e.code },
    h('strong', {}, e.title),
    e.meaning && h('p', {}, e.meaning),
    h('p', {}, e.advice),
    h('details', {}, h('summary', {}, 'Technical detail'), h('p', {}, h('code', {}, e.code), ' ', e.detail)),
  );
}
