/**
 * Measurement policy: what a verifier demands of an attestation document beyond a valid signature
 * and chain. One format is shared by the CLI (`--policy FILE`), the gateway, the SDK and the KMS
 * key-policy generator: see docs/policy.md.
 */
import { constantTimeEqual, fromHex, toHex } from '../bytes';
import { TeegateError } from '../errors';
import type { NitroDocument } from './document';

export interface MeasurementPolicy {
  /** Expected PCR values by index (hex), any subset of 0..31. */
  readonly pcrs?: Readonly<Record<number, string>>;
  /** Accept debug-mode enclaves (PCR0, PCR1 and PCR2 all zero). Default false. */
  readonly allowDebug?: boolean;
  /** Maximum age of the document, against its own timestamp, in milliseconds. */
  readonly maxAgeMs?: number;
}

/** Values the document must be bound to (checked in the `binding` step). */
export interface BindingExpectations {
  readonly nonce?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly publicKey?: Uint8Array;
}

/** A policy with its hex decoded and checked, so errors in it surface as POLICY_INVALID up front. */
export interface CompiledPolicy {
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly allowDebug: boolean;
  readonly maxAgeMs?: number;
}

function policyError(message: string): never {
  throw new TeegateError('POLICY_INVALID', message);
}

export function compilePolicy(policy: MeasurementPolicy = {}): CompiledPolicy {
  const pcrs = new Map<number, Uint8Array>();
  for (const [key, hex] of Object.entries(policy.pcrs ?? {})) {
    const index = Number(key);
    // Canonical decimal only: "0" and "00" would both be PCR0, and one of the two values would go
    // unchecked.
    if (!/^(?:0|[1-9]\d?)$/.test(key) || index > 31) policyError(`PCR index ${JSON.stringify(key)} is not one of 0..31 in decimal without leading zeros`);
    if (typeof hex !== 'string' || ![64, 96, 128].includes(hex.length)) {
      policyError(`PCR${index} must be 32, 48 or 64 bytes of hex`);
    }
    try {
      pcrs.set(index, fromHex(hex));
    } catch {
      policyError(`PCR${index} is not valid hex`);
    }
  }
  if (policy.maxAgeMs !== undefined && !(Number.isFinite(policy.maxAgeMs) && policy.maxAgeMs >= 0)) {
    policyError('maxAgeMs must be a non-negative number');
  }
  if (policy.allowDebug !== undefined && typeof policy.allowDebug !== 'boolean') policyError('allowDebug must be a boolean');
  return { pcrs, allowDebug: policy.allowDebug ?? false, ...(policy.maxAgeMs !== undefined ? { maxAgeMs: policy.maxAgeMs } : {}) };
}

function isZero(bytes: Uint8Array | undefined): boolean {
  return bytes !== undefined && bytes.every((b) => b === 0);
}

/** Debug-mode enclaves report PCR0, PCR1 and PCR2 as all zeros. */
export function isDebugMode(doc: NitroDocument): boolean {
  return isZero(doc.pcrs.get(0)) && isZero(doc.pcrs.get(1)) && isZero(doc.pcrs.get(2));
}

export function checkPolicy(doc: NitroDocument, policy: CompiledPolicy, at: number): void {
  if (isDebugMode(doc) && !policy.allowDebug) {
    throw new TeegateError('DEBUG_MODE', 'enclave runs in debug mode (PCR0, PCR1 and PCR2 are all zero); debug was not allowed');
  }
  for (const [index, expected] of policy.pcrs) {
    const actual = doc.pcrs.get(index);
    if (!actual || !constantTimeEqual(actual, expected)) {
      throw new TeegateError('PCR_MISMATCH', `PCR${index} is ${actual ? toHex(actual) : 'absent'}, policy expects ${toHex(expected)}`);
    }
  }
  if (policy.maxAgeMs !== undefined && at - doc.timestamp > policy.maxAgeMs) {
    throw new TeegateError('DOCUMENT_TOO_OLD', `document is ${at - doc.timestamp} ms old, the maximum is ${policy.maxAgeMs} ms`);
  }
}

function checkField(name: string, actual: Uint8Array | undefined, expected: Uint8Array | undefined, code: 'NONCE_MISMATCH' | 'USER_DATA_MISMATCH' | 'PUBLIC_KEY_MISMATCH'): void {
  if (expected === undefined) return;
  if (actual === undefined) throw new TeegateError(code, `document has no ${name}, one was expected`);
  if (!constantTimeEqual(actual, expected)) throw new TeegateError(code, `document ${name} differs from the expected value`);
}

export function checkBinding(doc: NitroDocument, expected: BindingExpectations): void {
  checkField('nonce', doc.nonce, expected.nonce, 'NONCE_MISMATCH');
  checkField('user_data', doc.userData, expected.userData, 'USER_DATA_MISMATCH');
  checkField('public_key', doc.publicKey, expected.publicKey, 'PUBLIC_KEY_MISMATCH');
}
