/**
 * Sealed requests (docs/enclave-api.md, "Sealed inference"): a JWE (ECDH-ES+A256KW, A256GCM) to the
 * seal key carrying `{id, iat, request, response_key}`; the answer is a JWE to `response_key`.
 * Replays are refused by id within the freshness window (ids older than the window are refused by
 * `iat` anyway, so the replay memory stays bounded).
 */
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import { isCanonicalBase64Url, utf8 } from '../attestation/bytes';
import { TeegateError, describeUntrusted } from '../attestation/errors';
import { CompactFormError, compactParts, protectedHeader } from '../attestation/jose-compact';

import type { ModelRef } from '../attestation/manifest';
import { parseJsonWithin, SEALED_REQUEST_BUDGET } from './json-budget';
import { SEAL_ALG, SEAL_ENC } from '../attestation/sealed-request';
const MAX_JWE_CHARS = 24 * 1024 * 1024;
/** The protected header teegate's clients write is about 300 characters: alg, enc, kid and epk. */
const MAX_HEADER_CHARS = 1024;
const HEADER_MEMBERS = ['alg', 'enc', 'kid', 'epk'];
const EPK_MEMBERS = ['kty', 'crv', 'x', 'y'];
const MAX_KID_CHARS = 128;

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
  // 32 bytes each, in the one encoding (43 characters): the key is echoed and compared as text.
  if (!isCoordinate(k.x) || !isCoordinate(k.y)) invalid('response_key x and y must be 32 bytes each in unpadded base64url (43 characters)');
  // The kid names the key in the sealed answer's header: a short string, or none.
  if (k.kid !== undefined && (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > MAX_KID_CHARS)) invalid(`response_key kid must be a string of 1..${MAX_KID_CHARS} characters`);
  return { kty: 'EC', crv: 'P-256', x: k.x, y: k.y, ...(k.kid !== undefined ? { kid: k.kid } : {}) };
}

function isCoordinate(v: string): boolean {
  return v.length === 43 && isCanonicalBase64Url(v);
}

/**
 * The protected header, read strictly before anything is decrypted: five canonical base64url parts
 * (jose's own decoding is lenient), a header of at most MAX_HEADER_CHARS with only alg, enc, kid and
 * epk (no `zip`, no `crit`).
 */
function sealedHeader(jwe: string): Record<string, unknown> {
  try {
    return protectedHeader(compactParts(jwe, 5)[0]!, MAX_HEADER_CHARS, HEADER_MEMBERS);
  } catch (err) {
    if (err instanceof CompactFormError) invalid(`not a sealed request JWE: ${err.message}`);
    throw err;
  }
}

/** The ephemeral key of ECDH-ES: a JWK object with its public members only (jose checks the point). */
function checkEpk(epk: unknown): void {
  if (typeof epk !== 'object' || epk === null || Array.isArray(epk)) invalid('the JWE header\'s epk must be a JWK object');
  if (Object.keys(epk).some((name) => !EPK_MEMBERS.includes(name))) invalid(`the JWE header's epk may have only ${EPK_MEMBERS.join(', ')}`);
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
  /**
   * Ids with an iat below this have been forgotten: such a request cannot be told from a replay, so
   * it is refused even if the clock has since stepped back and its iat looks fresh again.
   */
  private forgottenBefore = -Infinity;

  constructor(
    private readonly privateKey: CryptoKey,
    private readonly kid: string,
    private readonly maxAgeSeconds = 300,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  async open(jwe: string): Promise<OpenedRequest> {
    if (jwe.length > MAX_JWE_CHARS) throw new TeegateError('BODY_TOO_LARGE', 'sealed request too large');
    const header = sealedHeader(jwe);
    if (header.alg !== SEAL_ALG || header.enc !== SEAL_ENC) invalid(`JWE must use alg ${SEAL_ALG} and enc ${SEAL_ENC}`);
    if (header.kid !== undefined && header.kid !== this.kid) {
      throw new TeegateError('JWE_KEY_MISMATCH', `JWE is for key ${describeUntrusted(header.kid)}, this enclave's seal key is ${this.kid}`);
    }
    checkEpk(header.epk);
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
    if (iat < now - this.maxAgeSeconds || iat > now + 60 || iat < this.forgottenBefore) {
      throw new TeegateError('JWE_EXPIRED', `sealed request iat ${iat} is outside the ${this.maxAgeSeconds} s window`);
    }
    this.forgetOld(now);
    if (this.seen.has(id)) throw new TeegateError('JWE_REPLAYED', `sealed request ${id} was already processed`);
    this.seen.set(id, iat);
    return { id, request, responseKey, responseCryptoKey, ...(model !== undefined ? { model } : {}) };
  }

  private forgetOld(now: number): void {
    const before = now - this.maxAgeSeconds - 60;
    // Map iteration is insertion order, close to iat order; stop at the first fresh entry.
    for (const [id, iat] of this.seen) {
      if (iat >= before) break;
      this.seen.delete(id);
      this.forgottenBefore = Math.max(this.forgottenBefore, before);
    }
  }

  /** Encrypts the response to the client's key (as `open` returned it). */
  async seal(plaintext: string, { responseKey, responseCryptoKey }: Pick<OpenedRequest, 'responseKey' | 'responseCryptoKey'>): Promise<string> {
    return new CompactEncrypt(utf8(plaintext))
      .setProtectedHeader({ alg: SEAL_ALG, enc: SEAL_ENC, ...(responseKey.kid ? { kid: responseKey.kid } : {}) })
      .encrypt(responseCryptoKey);
  }
}
