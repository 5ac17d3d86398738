/**
 * Sealed requests (docs/enclave-api.md, "Sealed inference"): a JWE (ECDH-ES+A256KW, A256GCM) to the
 * seal key carrying `{id, iat, request, response_key}`; the answer is a JWE to `response_key`.
 * Replays are refused by id within the freshness window (ids older than the window are refused by
 * `iat` anyway, so the replay memory stays bounded).
 */
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { utf8 } from '../attestation/bytes';
import { TeegateError, describeUntrusted } from '../attestation/errors';

import type { ModelRef } from '../attestation/manifest';
import { parseJsonWithin, SEALED_REQUEST_BUDGET } from './json-budget';
import { SEAL_ALG, SEAL_ENC } from '../attestation/sealed-request';
const MAX_JWE_CHARS = 24 * 1024 * 1024;

export interface OpenedRequest {
  readonly id: string;
  readonly request: unknown;
  readonly responseKey: JWK;
  /**
   * `responseKey`, imported while the request is opened: a key that is not a P-256 point is refused
   * before the model runs, never after a receipt was signed for an answer that cannot be sealed.
   */
  readonly responseCryptoKey: Awaited<ReturnType<typeof importJWK>>;
  /** The model the client sealed the request for, if it named one. */
  readonly model?: ModelRef;
}

function invalid(message: string): never {
  throw new TeegateError('JWE_INVALID', message);
}

function parseResponseKey(v: unknown): JWK {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid('response_key must be a JWK object');
  const k = v as Record<string, unknown>;
  if (k.kty !== 'EC' || k.crv !== 'P-256' || typeof k.x !== 'string' || typeof k.y !== 'string') {
    invalid('response_key must be a public EC P-256 JWK');
  }
  if ('d' in k) invalid('response_key must not contain a private key');
  return { kty: 'EC', crv: 'P-256', x: k.x, y: k.y, ...(typeof k.kid === 'string' ? { kid: k.kid } : {}) };
}

function parseModel(v: unknown): ModelRef | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid('model must be an object {name, version?}');
  const { name, version, ...rest } = v as Record<string, unknown>;
  if (Object.keys(rest).length > 0) invalid('model may have only name and version');
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) invalid('model.name must be a string of 1..128 characters');
  if (version !== undefined && (typeof version !== 'string' || version.length === 0 || version.length > 64)) invalid('model.version must be a string of 1..64 characters');
  return { name, ...(version !== undefined ? { version } : {}) };
}

export class SealedChannel {
  /** id -> iat (seconds) of requests seen within the window. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly privateKey: CryptoKey,
    private readonly kid: string,
    private readonly maxAgeSeconds = 300,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  async open(jwe: string): Promise<OpenedRequest> {
    if (jwe.length > MAX_JWE_CHARS) throw new TeegateError('BODY_TOO_LARGE', 'sealed request too large');
    let header;
    try {
      header = decodeProtectedHeader(jwe);
    } catch {
      invalid('not a JWE compact serialization');
    }
    if (header.alg !== SEAL_ALG || header.enc !== SEAL_ENC) invalid(`JWE must use alg ${SEAL_ALG} and enc ${SEAL_ENC}`);
    if (header.kid !== undefined && header.kid !== this.kid) {
      throw new TeegateError('JWE_KEY_MISMATCH', `JWE is for key ${describeUntrusted(header.kid)}, this enclave's seal key is ${this.kid}`);
    }
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await compactDecrypt(jwe, this.privateKey, {
        keyManagementAlgorithms: [SEAL_ALG],
        contentEncryptionAlgorithms: [SEAL_ENC],
      }));
    } catch {
      invalid('JWE does not decrypt with the seal key (tampered, or encrypted to another key)');
    }
    const body = parseJsonWithin(plaintext, SEALED_REQUEST_BUDGET, 'sealed plaintext', () => invalid('sealed plaintext is not JSON')) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) invalid('sealed plaintext must be an object');
    const { id, iat, request } = body;
    if (typeof id !== 'string' || id.length < 16 || id.length > 128) invalid('id must be a string of 16..128 characters');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) invalid('iat must be a number (seconds)');
    const responseKey = parseResponseKey(body.response_key);
    let responseCryptoKey: OpenedRequest['responseCryptoKey'];
    try {
      responseCryptoKey = await importJWK(responseKey, SEAL_ALG);
    } catch {
      invalid('response_key is not a P-256 public key (x and y must be a point on the curve, 32 bytes each in base64url)');
    }
    const model = parseModel(body.model);
    const now = this.now();
    if (iat < now - this.maxAgeSeconds || iat > now + 60) {
      throw new TeegateError('JWE_EXPIRED', `sealed request iat ${iat} is outside the ${this.maxAgeSeconds} s window`);
    }
    this.forgetOld(now);
    if (this.seen.has(id)) throw new TeegateError('JWE_REPLAYED', `sealed request ${id} was already processed`);
    this.seen.set(id, iat);
    return { id, request, responseKey, responseCryptoKey, ...(model !== undefined ? { model } : {}) };
  }

  private forgetOld(now: number): void {
    // Map iteration is insertion order, close to iat order; stop at the first fresh entry.
    for (const [id, iat] of this.seen) {
      if (iat >= now - this.maxAgeSeconds - 60) break;
      this.seen.delete(id);
    }
  }

  /** Encrypts the response to the client's key (as `open` returned it). */
  async seal(plaintext: string, { responseKey, responseCryptoKey }: Pick<OpenedRequest, 'responseKey' | 'responseCryptoKey'>): Promise<string> {
    return new CompactEncrypt(utf8(plaintext))
      .setProtectedHeader({ alg: SEAL_ALG, enc: SEAL_ENC, ...(responseKey.kid ? { kid: responseKey.kid } : {}) })
      .encrypt(responseCryptoKey);
  }
}
