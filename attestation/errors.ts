/**
 * The one registry of error codes used by every part of teegate (verifier, enclave, gateway,
 * dev KMS, CLI). Each code carries the HTTP status it maps to and what the caller should do:
 *  - `fix`:   the caller's input or configuration is wrong; retrying the same thing will fail again.
 *  - `retry`: a transient condition; the same request may succeed later.
 *  - `stop`:  the evidence failed a security check; do not trust it (possible attack or misconfiguration).
 * Every code is documented in docs/errors.md; test/unit/errors-doc.test.ts keeps the two in step.
 */
export type ErrorAction = 'fix' | 'retry' | 'stop';

export interface ErrorSpec {
  readonly status: number;
  readonly action: ErrorAction;
}

export const ERROR_REGISTRY = {
  // Encoding of untrusted input
  INPUT_ENCODING_INVALID: { status: 400, action: 'fix' },
  CBOR_MALFORMED: { status: 400, action: 'stop' },
  CBOR_LIMIT_EXCEEDED: { status: 400, action: 'stop' },
  CBOR_DUPLICATE_KEY: { status: 400, action: 'stop' },
  CBOR_TRAILING_BYTES: { status: 400, action: 'stop' },
  CBOR_UNSUPPORTED: { status: 400, action: 'stop' },
  // COSE_Sign1
  COSE_MALFORMED: { status: 400, action: 'stop' },
  COSE_ALG_UNSUPPORTED: { status: 400, action: 'stop' },
  SIGNATURE_INVALID: { status: 400, action: 'stop' },
  // Nitro attestation document schema
  DOCUMENT_SCHEMA_INVALID: { status: 400, action: 'stop' },
  // X.509 certificate path
  CERT_MALFORMED: { status: 400, action: 'stop' },
  CERT_ALG_UNSUPPORTED: { status: 400, action: 'stop' },
  CERT_SIGNATURE_INVALID: { status: 400, action: 'stop' },
  CERT_EXPIRED: { status: 400, action: 'stop' },
  CERT_NOT_YET_VALID: { status: 400, action: 'stop' },
  CERT_CONSTRAINTS_INVALID: { status: 400, action: 'stop' },
  CHAIN_BROKEN: { status: 400, action: 'stop' },
  CHAIN_UNTRUSTED_ROOT: { status: 400, action: 'stop' },
  // Measurement policy and binding
  POLICY_INVALID: { status: 400, action: 'fix' },
  PCR_MISMATCH: { status: 400, action: 'stop' },
  DEBUG_MODE: { status: 400, action: 'stop' },
  DOCUMENT_TOO_OLD: { status: 400, action: 'stop' },
  DOCUMENT_FROM_FUTURE: { status: 400, action: 'stop' },
  NONCE_MISMATCH: { status: 400, action: 'stop' },
  USER_DATA_MISMATCH: { status: 400, action: 'stop' },
  PUBLIC_KEY_MISMATCH: { status: 400, action: 'stop' },
  // Transparency log (attestation/log)
  LOG_PROOF_INVALID: { status: 400, action: 'stop' },
  LOG_CHECKPOINT_MALFORMED: { status: 400, action: 'stop' },
  LOG_SIGNATURE_INVALID: { status: 400, action: 'stop' },
  LOG_INCONSISTENT: { status: 400, action: 'stop' },
  LOG_TILE_PATH_INVALID: { status: 400, action: 'fix' },
  LOG_RANGE_INVALID: { status: 400, action: 'fix' },
  // Transparency log service and auditor (attestation/log/entry*.ts, gateway/log, attestation/audit)
  LOG_ENTRY_MALFORMED: { status: 400, action: 'stop' },
  LOG_ENTRY_TOO_LARGE: { status: 413, action: 'fix' },
  LOG_NOT_FOUND: { status: 404, action: 'retry' },
  LOG_STORAGE_FAILED: { status: 503, action: 'retry' },
  AUDIT_FETCH_FAILED: { status: 502, action: 'retry' },
  AUDIT_STATE_INVALID: { status: 400, action: 'fix' },
  AUDIT_ENTRY_MISMATCH: { status: 400, action: 'stop' },
  AUDIT_ATTESTATION_MISSING: { status: 400, action: 'stop' },
  AUDIT_SEQUENCE_GAP: { status: 400, action: 'stop' },
  // Models and tensors (enclave/models, attestation/tensors.ts)
  TENSOR_INVALID: { status: 400, action: 'fix' },
  TENSOR_NAME_UNKNOWN: { status: 400, action: 'fix' },
  TENSOR_MISSING: { status: 400, action: 'fix' },
  TENSOR_DATATYPE_MISMATCH: { status: 400, action: 'fix' },
  TENSOR_SHAPE_MISMATCH: { status: 400, action: 'fix' },
  TENSOR_DATA_LENGTH_MISMATCH: { status: 400, action: 'fix' },
  TENSOR_TOO_LARGE: { status: 413, action: 'fix' },
  INPUT_IMAGE_INVALID: { status: 400, action: 'fix' },
  MODEL_NOT_FOUND: { status: 404, action: 'fix' },
  MODEL_DIGEST_MISMATCH: { status: 500, action: 'stop' },
  MODEL_LOAD_FAILED: { status: 500, action: 'fix' },
  MODEL_RUN_FAILED: { status: 400, action: 'fix' },
  MODEL_OUTPUT_UNREPRESENTABLE: { status: 422, action: 'fix' },
  // KMS key release: CMS EnvelopedData (CiphertextForRecipient)
  CMS_MALFORMED: { status: 400, action: 'stop' },
  CMS_UNSUPPORTED: { status: 400, action: 'stop' },
  CMS_DECRYPT_FAILED: { status: 400, action: 'stop' },
  // KMS key release: sealed model files and the Decrypt call (enclave/kms/)
  SEALED_MODEL_INVALID: { status: 400, action: 'stop' },
  SEALED_MODEL_DECRYPT_FAILED: { status: 400, action: 'stop' },
  SEALED_MODEL_DIGEST_MISMATCH: { status: 400, action: 'stop' },
  KEY_RELEASE_REJECTED: { status: 502, action: 'fix' },
  KEY_RELEASE_UNAVAILABLE: { status: 503, action: 'retry' },
  // NSM access (enclave/nsm): the Nitro Secure Module, real /dev/nsm or simulated
  NSM_REQUEST_INVALID: { status: 400, action: 'fix' },
  NSM_PCR_LOCKED: { status: 409, action: 'fix' },
  NSM_UNAVAILABLE: { status: 503, action: 'fix' },
  NSM_FAILED: { status: 502, action: 'retry' },
  NSM_RESPONSE_MALFORMED: { status: 502, action: 'stop' },
  // Dev attester: simulated NSM and dev CA (attestation/dev)
  DEV_CA_INVALID: { status: 400, action: 'fix' },
  // HTTP requests (enclave and gateway)
  REQUEST_INVALID: { status: 400, action: 'fix' },
  MEDIA_TYPE_UNSUPPORTED: { status: 415, action: 'fix' },
  BODY_TOO_LARGE: { status: 413, action: 'fix' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, action: 'fix' },
  REQUEST_TIMEOUT: { status: 408, action: 'retry' },
  REQUEST_ABANDONED: { status: 499, action: 'retry' },
  EXPECTATION_UNSUPPORTED: { status: 417, action: 'fix' },
  TRANSFER_CODING_UNSUPPORTED: { status: 501, action: 'fix' },
  ROUTE_NOT_FOUND: { status: 404, action: 'fix' },
  NONCE_INVALID: { status: 400, action: 'fix' },
  ENCLAVE_NOT_READY: { status: 503, action: 'retry' },
  ENCLAVE_BUSY: { status: 429, action: 'retry' },
  // Sealed requests (JWE)
  JWE_INVALID: { status: 400, action: 'stop' },
  JWE_KEY_MISMATCH: { status: 400, action: 'fix' },
  JWE_EXPIRED: { status: 400, action: 'fix' },
  JWE_REPLAYED: { status: 409, action: 'stop' },
  // Receipts
  RECEIPT_INVALID: { status: 400, action: 'stop' },
  RECEIPT_SIGNATURE_INVALID: { status: 400, action: 'stop' },
  RECEIPT_MISMATCH: { status: 400, action: 'stop' },
  // Gateway (gateway/): auth, limits, enclave pool, configuration
  AUTH_REQUIRED: { status: 401, action: 'fix' },
  AUTH_INVALID: { status: 401, action: 'fix' },
  AUTH_FORBIDDEN: { status: 403, action: 'fix' },
  RATE_LIMITED: { status: 429, action: 'retry' },
  NO_ENCLAVE_AVAILABLE: { status: 503, action: 'retry' },
  UPSTREAM_OUTCOME_UNKNOWN: { status: 502, action: 'retry' },
  UPSTREAM_TIMEOUT: { status: 504, action: 'retry' },
  UPSTREAM_INVALID: { status: 502, action: 'retry' },
  ENCLAVE_ATTESTATION_REJECTED: { status: 502, action: 'stop' },
  ENCLAVE_IDENTITY_CHANGED: { status: 502, action: 'retry' },
  GATEWAY_SHUTTING_DOWN: { status: 503, action: 'retry' },
  CONFIG_INVALID: { status: 500, action: 'fix' },
  // Client SDK and CLI (attestation/client, bin/commands/infer.ts, verify-receipt.ts)
  CLIENT_FETCH_FAILED: { status: 502, action: 'retry' },
  CLIENT_RESPONSE_INVALID: { status: 502, action: 'stop' },
  CLIENT_ENCLAVE_UNKNOWN: { status: 502, action: 'retry' },
  // Enclave manifest binding
  MANIFEST_INVALID: { status: 400, action: 'stop' },
  MANIFEST_BINDING_MISMATCH: { status: 400, action: 'stop' },
  // Deployment (infra/tools/kms-policy.ts, infra/nitro/measurements.ts): KMS key policy from measured PCRs
  KEY_POLICY_INPUT_INVALID: { status: 400, action: 'fix' },
  // Generic
  INTERNAL: { status: 500, action: 'retry' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_REGISTRY, value);
}

/** A typed error: callers switch on `code`, never on the message. */
export class TeegateError extends Error {
  override readonly name = 'TeegateError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly action: ErrorAction;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = ERROR_REGISTRY[code].status;
    this.action = ERROR_REGISTRY[code].action;
  }

  /** The wire form used by every HTTP answer and `--json` output. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isTeegateError(err: unknown, code?: ErrorCode): err is TeegateError {
  return err instanceof TeegateError && (code === undefined || err.code === code);
}

/**
 * An untrusted value for an error message: a string quoted and cut to `max` characters, a number,
 * boolean or null as itself, anything else by its kind. Never the whole value: messages go back
 * over the wire and into logs, and a JSON.stringify of a deeply nested value would overflow the
 * stack.
 */
export function describeUntrusted(value: unknown, max = 64): string {
  if (typeof value === 'string') return value.length > max ? `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'undefined';
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}
