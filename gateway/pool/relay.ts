/**
 * Sends one request to the pool with the retry rules:
 *  - the enclave could not be reached (no connection) or answered 503 (not ready: it did not
 *    run the request) → taken out of rotation, the request goes to another enclave;
 *  - the connection broke after the request may have reached it → UPSTREAM_OUTCOME_UNKNOWN (502),
 *    never retried (the inference may have run);
 *  - no complete answer in time → UPSTREAM_TIMEOUT (504); the connection is read in the background
 *    for a while (EnclaveClient's `lateReceipt`), and a receipt that arrives meanwhile is logged
 *    (`logUndelivered`);
 *  - an answer whose receipt is signed by a key other than the attested one → the enclave is
 *    re-attested and the caller gets ENCLAVE_IDENTITY_CHANGED (502).
 */
import { decodeProtectedHeader } from 'jose';
import type { ServerResponse } from 'node:http';
import { ENCLAVE_HEADER, RECEIPT_HEADER } from '../../attestation/headers';
import { TeegateError } from '../../attestation/errors';
import type { GatewayMetrics } from '../observability/metrics';
import { UpstreamError, type UpstreamRequest, type UpstreamResponse } from './enclave-client';
import type { EnclaveMember, EnclavePool, ModelSelector } from './enclave-pool';

export interface RelayOptions {
  readonly maxAttempts: number;
  readonly metrics: GatewayMetrics;
  /**
   * Error codes of a 4xx enclave answer that mean "not for this enclave, nothing ran" (a sealed
   * request sent without `teegate-seal-kid` to an enclave holding another seal key): try the next.
   */
  readonly retryOnCodes?: readonly string[];
  /** Send only to this member (a client asked for one enclave's attestation). */
  readonly only?: EnclaveMember;
  /**
   * Logs the receipt of an answer that broke after its headers (too large, cut off, too slow) or
   * came after the timeout: the request ran and was signed, and a receipt missing from the log is
   * what an auditor reports as a gap. Only a receipt under the member's attested key is logged.
   * It must not reject (oip.ts logs its own failures).
   */
  readonly logUndelivered?: (receipt: string) => Promise<unknown>;
}

function errorCodeOf(response: UpstreamResponse): string | undefined {
  if (response.status < 400 || response.status >= 500 || response.body.length > 4096) return undefined;
  try {
    const code = (JSON.parse(response.body.toString('utf8')) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export interface RelayResult {
  readonly member: EnclaveMember;
  readonly response: UpstreamResponse;
}

/** Answers with the enclave's status, content type (default JSON) and body (or `body`), naming the enclave. */
export function sendRelayed(res: ServerResponse, { member, response }: RelayResult, body: Buffer = response.body): void {
  res.statusCode = response.status;
  res.setHeader(ENCLAVE_HEADER, member.id);
  res.setHeader('Content-Type', response.headers['content-type'] ?? 'application/json');
  res.end(body);
}

/**
 * The `kid` of recently seen protected headers (the first segment of a JWS compact): an enclave
 * signs every receipt under the same header, so it is decoded once, not on every inference.
 * Bounded: cleared when full.
 */
const kidOfHeader = new Map<string, string | undefined>();
const KID_CACHE_ENTRIES = 64;

/** `kid` of a JWS compact protected header, without verifying anything (a cheap identity check). */
function receiptKid(jws: string): string | undefined {
  const dot = jws.indexOf('.');
  const header = dot < 0 ? jws : jws.slice(0, dot);
  if (kidOfHeader.has(header)) return kidOfHeader.get(header);
  let kid: string | undefined;
  try {
    const decoded = decodeProtectedHeader(jws).kid;
    kid = typeof decoded === 'string' ? decoded : undefined;
  } catch {
    kid = undefined;
  }
  if (kidOfHeader.size >= KID_CACHE_ENTRIES) kidOfHeader.clear();
  kidOfHeader.set(header, kid);
  return kid;
}

/**
 * Why no enclave took the request: a model no attested manifest lists is MODEL_NOT_FOUND (the
 * ready route says the same), a seal key no ready enclave holds JWE_KEY_MISMATCH; anything else,
 * an enclave serving it down or busy included, NO_ENCLAVE_AVAILABLE (retry).
 */
function noEnclave(pool: EnclavePool, model: ModelSelector | undefined, lastReason: string | undefined): TeegateError {
  if (model && lastReason === undefined) {
    const byName = { name: model.name, ...(model.version !== undefined ? { version: model.version } : {}) };
    if (model.sealKid !== undefined && pool.serving(model).length === 0 && pool.serving(byName).length > 0) {
      return new TeegateError('JWE_KEY_MISMATCH', `no attested enclave holds seal key ${model.sealKid}: fetch the current manifests from /v1/enclaves`);
    }
    if (pool.lists(byName) === 'not-listed') {
      const what = model.version === undefined ? model.name : `${model.name} version ${model.version}`;
      return new TeegateError('MODEL_NOT_FOUND', `no attested enclave serves model ${what}`);
    }
  }
  const states = pool.members.map((m) => `${m.id} ${m.state}`).join(', ') || 'no enclaves configured';
  return new TeegateError('NO_ENCLAVE_AVAILABLE', `no attested enclave could take the request (${lastReason ?? states})`);
}

export async function relay(pool: EnclavePool, req: UpstreamRequest, model: ModelSelector | undefined, options: RelayOptions): Promise<RelayResult> {
  const tried = new Set<EnclaveMember>();
  let lastReason: string | undefined;
  for (let attempt = 0; attempt < options.maxAttempts; attempt++) {
    const member = options.only ? (tried.has(options.only) || options.only.state !== 'ready' ? undefined : options.only) : pool.pick(model, tried);
    if (!member) break;
    tried.add(member);
    const identity = member.identity;
    let response: UpstreamResponse;
    member.inFlight++;
    // The receipt of an answer that was not delivered (broken, or after the timeout), logged if it
    // is under this member's attested key.
    const logUndelivered = options.logUndelivered;
    const logIfAttested =
      logUndelivered && identity ? (receipt: string) => (receiptKid(receipt) === identity.receiptKid ? logUndelivered(receipt) : undefined) : undefined;
    try {
      response = await member.client.request(logIfAttested ? { ...req, lateReceipt: (receipt) => void logIfAttested(receipt)?.catch(() => undefined) } : req);
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      if (err.receipt !== undefined) await logIfAttested?.(err.receipt);
      if (err.kind === 'not-sent') {
        pool.reportDown(member, err.errorCode ?? 'ECONNREFUSED', err.message);
        options.metrics.upstreamRetries.inc({ reason: 'unreachable' });
        lastReason = err.message; // names the member (its client's label), never its address
        continue;
      }
      if (err.kind === 'timeout') throw new TeegateError('UPSTREAM_TIMEOUT', `enclave ${member.id} did not answer in time; the outcome is unknown`);
      if (err.kind === 'invalid') throw new TeegateError('UPSTREAM_INVALID', err.message);
      pool.reportDown(member, err.errorCode ?? 'ECONNRESET', err.message);
      throw new TeegateError('UPSTREAM_OUTCOME_UNKNOWN', `the connection to enclave ${member.id} broke after the request was sent (${err.errorCode ?? 'reset'}); it may or may not have run`);
    } finally {
      member.inFlight--;
    }
    if (response.status === 503) {
      pool.reportDown(member, 'ENCLAVE_NOT_READY', `answered 503`);
      options.metrics.upstreamRetries.inc({ reason: 'not_ready' });
      lastReason = `${member.id} answered 503 (not ready)`;
      continue;
    }
    if (options.retryOnCodes && response.status >= 400 && response.status < 500) {
      const code = errorCodeOf(response);
      if (code !== undefined && options.retryOnCodes.includes(code) && attempt + 1 < options.maxAttempts && pool.candidates(model, tried).length > 0) {
        options.metrics.upstreamRetries.inc({ reason: code.toLowerCase() });
        continue;
      }
    }
    const receipt = response.headers[RECEIPT_HEADER];
    if (typeof receipt === 'string' && identity && receiptKid(receipt) !== identity.receiptKid) {
      pool.reportIdentityChanged(member, `enclave ${member.id} signed with a receipt key it was not attested with`);
      throw new TeegateError('ENCLAVE_IDENTITY_CHANGED', `enclave ${member.id} answered with a receipt key other than its attested one; it is being attested again`);
    }
    return { member, response };
  }
  throw noEnclave(pool, model, lastReason);
}
