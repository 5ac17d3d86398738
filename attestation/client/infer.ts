/**
 * One inference over the wire: `POST /v2/models/{m}[/versions/{v}]/infer`, plain (JSON) or sealed
 * (a JWE to the attested seal key, `teegate-seal-kid` naming it so the gateway routes to the enclave
 * that holds it). Returns what the caller needs to verify: outputs, receipt, salt, log index. Every
 * field of the answer is attacker-controlled until the receipt check.
 */
import { unverifiedClaims } from '../receipt';
import { ENCLAVE_HEADER, LOG_INDEX_HEADER, SEAL_KID_HEADER } from '../headers';
import { TeegateError } from '../errors';
import type { EnclaveManifest } from '../manifest';
import { sealRequest } from '../sealed-request';
import { parseInferTensors, type InferTensor, type TensorParameters } from '../tensors';
import { jsonObject, parseJson, type GatewayHttp } from './http';



/** The OIP request the client sends (its own tensors, already validated). */
export interface InferRequest {
  readonly id?: string;
  readonly inputs: readonly InferTensor[];
  readonly parameters: TensorParameters & { readonly nonce: string };
}

export interface InferAnswer {
  readonly outputs: InferTensor[];
  readonly receipt: string;
  readonly salt: string;
  readonly logIndex?: number;
  /** The gateway's name of the enclave that answered (`teegate-enclave`), informational. */
  readonly enclaveId?: string;
}

function inferPath(model: string, version: string | undefined): string {
  return `/v2/models/${encodeURIComponent(model)}${version !== undefined ? `/versions/${encodeURIComponent(version)}` : ''}/infer`;
}

function logIndexFrom(value: unknown, header: string | null): number | undefined {
  const candidate = value !== undefined ? value : header !== null && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
  if (candidate === undefined) return undefined;
  if (typeof candidate !== 'number' || !Number.isSafeInteger(candidate) || candidate < 0) {
    throw new TeegateError('CLIENT_RESPONSE_INVALID', 'log_index is not a non-negative integer');
  }
  return candidate;
}

/** Reads an OIP inference response (plain body or opened sealed body). */
export function parseInferAnswer(value: unknown, headers: Headers): InferAnswer {
  const o = jsonObject(value, 'inference response');
  const params = jsonObject(o.parameters ?? {}, 'inference response parameters');
  if (typeof params.receipt !== 'string' || params.receipt.length === 0) throw new TeegateError('CLIENT_RESPONSE_INVALID', 'inference response has no parameters.receipt');
  if (typeof params.salt !== 'string' || !/^[0-9a-f]{64}$/.test(params.salt)) throw new TeegateError('CLIENT_RESPONSE_INVALID', 'inference response has no 32-byte hex parameters.salt');
  let outputs: InferTensor[];
  try {
    outputs = parseInferTensors(o.outputs, 'outputs');
  } catch (err) {
    throw new TeegateError('CLIENT_RESPONSE_INVALID', `inference response outputs: ${err instanceof Error ? err.message : String(err)}`);
  }
  const logIndex = logIndexFrom(params.log_index, headers.get(LOG_INDEX_HEADER));
  const enclaveId = headers.get(ENCLAVE_HEADER);
  return {
    outputs,
    receipt: params.receipt,
    salt: params.salt,
    ...(logIndex !== undefined ? { logIndex } : {}),
    ...(enclaveId !== null ? { enclaveId } : {}),
  };
}

export async function sendPlain(http: GatewayHttp, model: string, version: string | undefined, request: InferRequest): Promise<InferAnswer> {
  const path = inferPath(model, version);
  const answer = await http.ok(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request), auth: true });
  return parseInferAnswer(parseJson(path, answer.text), answer.headers);
}

export async function sendSealed(http: GatewayHttp, model: string, version: string | undefined, request: InferRequest, manifest: EnclaveManifest): Promise<InferAnswer> {
  const path = inferPath(model, version);
  // The JWE's own id is a fresh one-time value (the enclave refuses a repeat as a replay); the
  // caller's request id, which may repeat and have any length, travels inside the request.
  const sealed = await sealRequest(manifest, request, { model: { name: model, version } });
  const answer = await http.ok(path, {
    method: 'POST',
    headers: { 'content-type': 'application/jose', [SEAL_KID_HEADER]: manifest.keys.seal.kid },
    body: sealed.jwe,
    auth: true,
  });
  const type = answer.headers.get('content-type') ?? '';
  if (!type.startsWith('application/jose')) throw new TeegateError('CLIENT_RESPONSE_INVALID', `sealed request answered with ${type || 'no content type'}, not application/jose`);
  const opened = await sealed.open(answer.text);
  return parseInferAnswer(opened, answer.headers);
}

/**
 * The receipt's claimed issuer (boot id), read without verifying: only to pick which attested
 * enclave to verify it against. Undefined when the receipt is not a readable JWS.
 */
export function receiptIssuer(receipt: string): string | undefined {
  const iss = unverifiedClaims(receipt)?.iss;
  return typeof iss === 'string' && iss.length > 0 && iss.length <= 128 ? iss : undefined;
}
