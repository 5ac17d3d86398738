/**
 * The auditor's memory between runs (the `--state FILE`): the log it audits (origin and pinned
 * verifier key) and the last checkpoint it accepted. The next run must find the log consistent
 * with that checkpoint, or it reports a fork.
 */
import { fromBase64, toBase64 } from '../bytes';
import { TeegateError } from '../errors';

export interface AuditState {
  readonly version: 1;
  readonly origin: string;
  readonly verifierKey: string;
  readonly checkpoint: { readonly size: number; readonly rootHash: string; readonly note: string };
}

function invalid(message: string): never {
  throw new TeegateError('AUDIT_STATE_INVALID', `audit state: ${message}`);
}

export function parseAuditState(text: string): AuditState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    invalid('not JSON');
  }
  const s = v as Partial<Record<keyof AuditState, unknown>> | null;
  if (typeof s !== 'object' || s === null || s.version !== 1) invalid('not a version 1 state object');
  if (typeof s.origin !== 'string' || s.origin.length === 0) invalid('origin missing');
  if (typeof s.verifierKey !== 'string' || s.verifierKey.length === 0) invalid('verifierKey missing');
  const cp = s.checkpoint as Partial<AuditState['checkpoint']> | undefined;
  if (typeof cp !== 'object' || cp === null) invalid('checkpoint missing');
  if (typeof cp.size !== 'number' || !Number.isSafeInteger(cp.size) || cp.size < 0) invalid('checkpoint size is not a non-negative integer');
  if (typeof cp.note !== 'string') invalid('checkpoint note missing');
  let root: Uint8Array | undefined;
  try {
    root = typeof cp.rootHash === 'string' ? fromBase64(cp.rootHash) : undefined;
  } catch {
    root = undefined;
  }
  if (!root || root.length !== 32) invalid('checkpoint rootHash is not base64 of 32 bytes');
  return { version: 1, origin: s.origin, verifierKey: s.verifierKey, checkpoint: { size: cp.size, rootHash: toBase64(root), note: cp.note } };
}

export function formatAuditState(state: AuditState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}
