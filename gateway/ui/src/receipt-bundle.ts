/**
 * A receipt bundle: the receipt with what its holder needs to re-derive its digests (salt, nonce,
 * the request and response tensors). The inference page offers it for download; the receipt
 * verifier accepts it, or a bare receipt JWS (then only signature, enclave and model are checked).
 *   {"format": "teegate-receipt-bundle", "version": 1, "receipt": "<JWS>", "salt": "<64 hex>",
 *    "nonce": "<hex>", "sealed": true, "model": "ppocr-v4-rec", "inputs": [...], "outputs": [...],
 *    "log_index": 7}
 */
import type { InferResult } from '../../../attestation/client/client';
import { TeegateError, isTeegateError } from '../../../attestation/errors';
import { parseInferTensors, type InferTensor } from '../../../attestation/tensors';

export const BUNDLE_FORMAT = 'teegate-receipt-bundle';
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TEXT = 32 * 1024 * 1024;

export interface ReceiptBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly version: 1;
  readonly receipt: string;
  readonly salt?: string;
  readonly nonce?: string;
  readonly sealed?: boolean;
  readonly model?: string;
  readonly inputs?: readonly InferTensor[];
  readonly outputs?: readonly InferTensor[];
  readonly log_index?: number;
}

export function makeBundle(model: string, inputs: readonly InferTensor[], result: InferResult): ReceiptBundle {
  return {
    format: BUNDLE_FORMAT,
    version: 1,
    receipt: result.receipt,
    salt: result.salt,
    nonce: result.nonce,
    sealed: result.sealed,
    model,
    inputs,
    outputs: result.outputs,
    ...(result.logIndex !== undefined ? { log_index: result.logIndex } : {}),
  };
}

function invalid(message: string): never {
  throw new TeegateError('RECEIPT_INVALID', message);
}

function tensors(value: unknown, what: 'inputs' | 'outputs'): InferTensor[] {
  try {
    return parseInferTensors(value, what);
  } catch (err) {
    return invalid(`the bundle's ${what} are not valid tensors: ${isTeegateError(err) ? err.message : String(err)}`);
  }
}

/** A pasted or dropped text: a bundle (JSON) or a bare receipt (JWS compact). Throws RECEIPT_INVALID. */
export function parseReceiptInput(text: string): ReceiptBundle {
  if (text.length > MAX_TEXT) invalid('the text is too large to be a receipt or a receipt bundle');
  const trimmed = text.trim();
  if (trimmed.length === 0) invalid('nothing to verify: paste a receipt or drop a receipt file');
  if (JWS.test(trimmed)) return { format: BUNDLE_FORMAT, version: 1, receipt: trimmed };
  let value: unknown;
  try {
    value = JSON.parse(trimmed) as unknown;
  } catch {
    return invalid('this is neither a receipt (three base64url parts separated by dots) nor a receipt bundle (JSON)');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('a receipt bundle must be a JSON object');
  const o = value as Record<string, unknown>;
  if (o.format !== BUNDLE_FORMAT || o.version !== 1) invalid(`not a receipt bundle: format must be "${BUNDLE_FORMAT}", version 1`);
  if (typeof o.receipt !== 'string' || !JWS.test(o.receipt)) invalid('the bundle has no receipt (a compact JWS)');
  if (o.salt !== undefined && (typeof o.salt !== 'string' || !/^[0-9a-f]{64}$/.test(o.salt))) invalid('salt must be 64 lower-case hex characters');
  if (o.nonce !== undefined && (typeof o.nonce !== 'string' || !/^[0-9a-f]{2,128}$/.test(o.nonce))) invalid('nonce must be hex');
  if (o.sealed !== undefined && typeof o.sealed !== 'boolean') invalid('sealed must be true or false');
  if (o.model !== undefined && typeof o.model !== 'string') invalid('model must be a string');
  if (o.log_index !== undefined && (typeof o.log_index !== 'number' || !Number.isSafeInteger(o.log_index) || o.log_index < 0)) invalid('log_index must be a non-negative integer');
  return {
    format: BUNDLE_FORMAT,
    version: 1,
    receipt: o.receipt,
    ...(o.salt !== undefined ? { salt: o.salt as string } : {}),
    ...(o.nonce !== undefined ? { nonce: o.nonce as string } : {}),
    ...(o.sealed !== undefined ? { sealed: o.sealed as boolean } : {}),
    ...(o.model !== undefined ? { model: o.model as string } : {}),
    ...(o.inputs !== undefined ? { inputs: tensors(o.inputs, 'inputs') } : {}),
    ...(o.outputs !== undefined ? { outputs: tensors(o.outputs, 'outputs') } : {}),
    ...(o.log_index !== undefined ? { log_index: o.log_index as number } : {}),
  };
}
