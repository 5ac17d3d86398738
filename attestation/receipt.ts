/**
 * Receipt verification (docs/enclave-api.md, "Receipt"), by a client against its own evidence:
 * the attestation document it verified, the manifest bound to it, and its own request, response
 * and salt. Steps, each with its outcome: signature (by the attested receipt key) → claims (well
 * formed) → enclave (boot id and attestation digest) → model (one the manifest lists) → input →
 * output → nonce → mode (sealed or plain, when the caller knows).
 */
import { compactVerify, importJWK } from 'jose';
import { fromBase64Url, fromHex, fromUtf8 } from './bytes';
import { TeegateError, describeUntrusted, isTeegateError, type ErrorCode } from './errors';
import { CompactFormError, compactParts, protectedHeader } from './jose-compact';
import { modelLabel, type EnclaveManifest, type ModelRef } from './manifest';
import type { VerifiedAttestation } from './nitro/verify';
import { tensorsDigest, type InferTensor } from './tensors';


/**
 * A compact JWS's claims, decoded without verifying anything: to pick what to verify a receipt
 * against, or to show it. Undefined unless it has three parts of canonical base64url and a JSON
 * object payload.
 */
export function unverifiedClaims(jws: string): Record<string, unknown> | undefined {
  try {
    const claims = JSON.parse(fromUtf8(fromBase64Url(compactParts(jws, 3)[1]!))) as unknown;
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
export const RECEIPT_TYP = 'teegate-receipt+jwt';
const MAX_RECEIPT_CHARS = 8 * 1024;
/** A receipt's protected header has these members and no others (no `crit`, `b64`, `jku` or `jwk`). */
const RECEIPT_HEADER_MEMBERS = ['alg', 'kid', 'typ'];
/** The signer's header is about 120 characters of base64url (enclave/receipt-signer.ts). */
const MAX_RECEIPT_HEADER_CHARS = 512;

export interface ReceiptClaims {
  readonly iss: string;
  readonly iat: number;
  readonly jti: string;
  readonly seq: number;
  readonly model: { readonly name: string; readonly version: string; readonly sha256: string };
  readonly input: string;
  readonly output: string;
  readonly nonce?: string;
  readonly att: string;
  readonly sealed: boolean;
}

export interface ReceiptEvidence {
  /** The receipt JWS (compact). */
  readonly receipt: string;
  /** The enclave's verified boot attestation (its documentSha384 is the `att` claim). */
  readonly attestation: Pick<VerifiedAttestation, 'documentSha384'>;
  /** The manifest, already checked against the attestation with verifyManifestBinding. */
  readonly manifest: EnclaveManifest;
  /** The caller's own request inputs and the response outputs, with the salt returned to it. */
  readonly inputs?: readonly InferTensor[];
  readonly outputs?: readonly InferTensor[];
  readonly salt?: Uint8Array | string;
  readonly nonce?: string;
  readonly sealed?: boolean;
  /**
   * The model the caller asked for, with the version if it named one. The model is in the request's
   * path, which the gateway sees and could change (even for sealed requests): without this, a
   * receipt for another model in the same manifest would pass.
   */
  readonly model?: ModelRef;
}

export const RECEIPT_STEPS = ['signature', 'claims', 'enclave', 'model', 'input', 'output', 'nonce', 'mode'] as const;
export type ReceiptStep = (typeof RECEIPT_STEPS)[number];

export interface ReceiptStepOutcome {
  readonly step: ReceiptStep;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly reason: string;
  readonly code?: ErrorCode;
}

export interface ReceiptReport {
  readonly valid: boolean;
  readonly steps: readonly ReceiptStepOutcome[];
  readonly claims?: ReceiptClaims;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

function bad(message: string): never {
  throw new TeegateError('RECEIPT_INVALID', message);
}
function mismatch(message: string): never {
  throw new TeegateError('RECEIPT_MISMATCH', message);
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Strict check of untrusted claims. */
export function parseReceiptClaims(value: unknown): ReceiptClaims {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('claims must be a JSON object');
  const c = value as Record<string, unknown>;
  const known = new Set(['iss', 'iat', 'jti', 'seq', 'model', 'input', 'output', 'nonce', 'att', 'sealed']);
  for (const k of Object.keys(c)) if (!known.has(k)) bad(`unknown claim ${JSON.stringify(k)}`);
  const nonEmpty = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
  const str = (k: string, max = 128): string => {
    const v = c[k];
    if (!nonEmpty(v, max)) bad(`${k} must be a non-empty string`);
    return v;
  };
  const int = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${k} must be a non-negative integer`);
    return v;
  };
  const m = c.model as Record<string, unknown> | undefined;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad('model must be an object');
  for (const k of Object.keys(m)) if (k !== 'name' && k !== 'version' && k !== 'sha256') bad(`unknown model member ${describeUntrusted(k)}`);
  if (!nonEmpty(m.name, 128) || !nonEmpty(m.version, 64) || typeof m.sha256 !== 'string' || !HEX64.test(m.sha256)) {
    bad('model must have name, version and a hex sha256');
  }
  const input = str('input');
  const output = str('output');
  if (!HEX64.test(input) || !HEX64.test(output)) bad('input and output must be hex SHA-256 digests');
  const att = str('att');
  if (!/^[0-9a-f]{96}$/.test(att)) bad('att must be a hex SHA-384 digest');
  if (typeof c.sealed !== 'boolean') bad('sealed must be a boolean');
  if (c.nonce !== undefined && (typeof c.nonce !== 'string' || !/^[0-9a-f]{1,128}$/.test(c.nonce))) bad('nonce must be hex');
  return {
    iss: str('iss'),
    iat: int('iat'),
    jti: str('jti'),
    seq: int('seq'),
    model: { name: m.name, version: m.version, sha256: m.sha256 },
    input,
    output,
    ...(c.nonce !== undefined ? { nonce: c.nonce as string } : {}),
    att,
    sealed: c.sealed,
  };
}

async function runSteps(evidence: ReceiptEvidence, record: (o: ReceiptStepOutcome) => void): Promise<ReceiptClaims> {
  let current: ReceiptStep = 'signature';
  const pass = (reason: string) => record({ step: current, status: 'passed', reason });
  const skip = (reason: string) => record({ step: current, status: 'skipped', reason });
  try {
    const { receipt, manifest } = evidence;
    if (typeof receipt !== 'string' || receipt.length > MAX_RECEIPT_CHARS) bad('receipt must be a compact JWS of at most 8 KiB');
    let header: Record<string, unknown>;
    try {
      header = protectedHeader(compactParts(receipt, 3)[0]!, MAX_RECEIPT_HEADER_CHARS, RECEIPT_HEADER_MEMBERS);
    } catch (err) {
      if (err instanceof CompactFormError) bad(`receipt is not a compact JWS as the enclave signs it: ${err.message}`);
      throw err;
    }
    if (header.alg !== 'ES256' || header.typ !== RECEIPT_TYP) bad(`receipt header must have alg ES256 and typ ${RECEIPT_TYP}`);
    const key = manifest.keys.receipt;
    if (header.kid !== key.kid) {
      throw new TeegateError('RECEIPT_SIGNATURE_INVALID', `receipt kid ${String(header.kid)} is not the attested receipt key ${key.kid}`);
    }
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(receipt, await importJWK({ kty: key.kty, crv: key.crv, x: key.x, y: key.y }, 'ES256'), { algorithms: ['ES256'] }));
    } catch {
      throw new TeegateError('RECEIPT_SIGNATURE_INVALID', 'receipt signature does not verify with the attested receipt key');
    }
    pass(`ES256 signature by receipt key ${key.kid}`);

    current = 'claims';
    let json: unknown;
    try {
      json = JSON.parse(fromUtf8(payload));
    } catch {
      bad('receipt payload is not JSON');
    }
    const claims = parseReceiptClaims(json);
    pass(`seq ${claims.seq}, request ${claims.jti}`);

    current = 'enclave';
    if (claims.iss !== manifest.boot_id) mismatch(`receipt is from boot ${claims.iss}, the manifest is boot ${manifest.boot_id}`);
    if (claims.att !== evidence.attestation.documentSha384) mismatch('receipt names another attestation document (att)');
    pass(`boot ${claims.iss}, attestation ${claims.att.slice(0, 16)}…`);

    current = 'model';
    const listed = manifest.models.some((m) => m.name === claims.model.name && m.version === claims.model.version && m.sha256 === claims.model.sha256);
    if (!listed) mismatch(`model ${claims.model.name}@${claims.model.version} (${claims.model.sha256.slice(0, 16)}…) is not in the manifest`);
    const asked = evidence.model;
    if (asked !== undefined && (claims.model.name !== asked.name || (asked.version !== undefined && claims.model.version !== asked.version))) {
      mismatch(`receipt is for model ${modelLabel(claims.model)}, the request was for ${modelLabel(asked)}`);
    }
    pass(`${claims.model.name}@${claims.model.version}, sha256 ${claims.model.sha256.slice(0, 16)}…${asked !== undefined ? ', the model asked for' : ''}`);

    current = 'input'; // a salt that does not decode fails the first step that needs it
    let salt: Uint8Array | undefined;
    try {
      salt = typeof evidence.salt === 'string' ? fromHex(evidence.salt) : evidence.salt;
    } catch {
      bad('salt must be 32 bytes of hex');
    }
    for (const [step, tensors, claimed] of [
      ['input', evidence.inputs, claims.input],
      ['output', evidence.outputs, claims.output],
    ] as const) {
      current = step;
      if (tensors === undefined || salt === undefined) {
        skip(`no ${step === 'input' ? 'request' : 'response'} tensors or salt given`);
        continue;
      }
      if (salt.length !== 32) bad('salt must be 32 bytes');
      const digest = await tensorsDigest(salt, tensors);
      if (digest !== claimed) mismatch(`${step} digest ${digest.slice(0, 16)}… differs from the receipt's ${claimed.slice(0, 16)}…`);
      pass(`${tensors.length} tensor(s), salted SHA-256 matches`);
    }

    current = 'nonce';
    if (evidence.nonce === undefined) skip('no nonce expected');
    else if (claims.nonce !== evidence.nonce.toLowerCase()) mismatch('receipt nonce differs from the request nonce');
    else pass('nonce matches');

    current = 'mode';
    if (evidence.sealed === undefined) skip('mode not checked');
    else if (claims.sealed !== evidence.sealed) mismatch(`receipt says sealed=${claims.sealed}, the request was ${evidence.sealed ? 'sealed' : 'plain'}`);
    else pass(claims.sealed ? 'sealed request' : 'plain request');
    return claims;
  } catch (err) {
    const e = isTeegateError(err) ? err : new TeegateError('RECEIPT_INVALID', `receipt check failed: ${String(err)}`);
    record({ step: current, status: 'failed', reason: e.message, code: e.code });
    throw e;
  }
}

/** Verifies a receipt; throws TeegateError (RECEIPT_*) at the first failed step. */
export async function verifyReceipt(evidence: ReceiptEvidence): Promise<ReceiptClaims> {
  return runSteps(evidence, () => undefined);
}

/** The same, never throwing for bad evidence: every step's outcome. */
export async function verifyReceiptReport(evidence: ReceiptEvidence): Promise<ReceiptReport> {
  const steps: ReceiptStepOutcome[] = [];
  try {
    const claims = await runSteps(evidence, (o) => steps.push(o));
    return { valid: true, steps, claims };
  } catch (err) {
    const e = err as TeegateError;
    const done = new Set(steps.map((s) => s.step));
    for (const step of RECEIPT_STEPS) if (!done.has(step)) steps.push({ step, status: 'skipped', reason: 'not checked: an earlier step failed' });
    return { valid: false, steps, error: e.toJSON() };
  }
}
