/**
 * The human meaning of every error code, read from docs/errors.md (the table the registry test
 * keeps in step with attestation/errors.ts), so the web explorer explains an error in the same
 * words as the documentation. Markdown code spans and emphasis are reduced to plain text.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_REGISTRY, isErrorCode, type ErrorAction } from '../../attestation/errors';

export interface ErrorMeaning {
  readonly action: ErrorAction;
  readonly meaning: string;
}

export const ERRORS_DOC = join(__dirname, '../../docs/errors.md');

const ROW = /^\| `([A-Z0-9_]+)` \| (\d{3}) \| (fix|retry|stop) \| (.+) \|$/;

function plain(markdown: string): string {
  return markdown.replace(/`([^`]*)`/g, '$1').replace(/\*\*([^*]*)\*\*/g, '$1').trim();
}

/** Code → meaning for every registered code found in the table (unknown codes are ignored). */
export function parseErrorMeanings(markdown: string): Record<string, ErrorMeaning> {
  const out: Record<string, ErrorMeaning> = {};
  for (const line of markdown.split('\n')) {
    const m = ROW.exec(line.trim());
    if (!m || !isErrorCode(m[1])) continue;
    out[m[1]] = { action: ERROR_REGISTRY[m[1]].action, meaning: plain(m[4]!) };
  }
  return out;
}

export function loadErrorMeanings(file: string = ERRORS_DOC): Record<string, ErrorMeaning> {
  return parseErrorMeanings(readFileSync(file, 'utf8'));
}
