/**
 * Client side of sealed inference (docs/enclave-api.md, "Sealed inference"): encrypts a request to
 * the attested seal key with a fresh response key, and opens the sealed response. Browser-safe.
 */
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { fromUtf8, utf8 } from './bytes';
import { TeegateError } from './errors';
import type { EnclaveManifest, ModelRef } from './manifest';

/** The sealed-inference JWE algorithms (both directions). */
export const SEAL_ALG = 'ECDH-ES+A256KW';
export const SEAL_ENC = 'A256GCM';

export interface SealedRequest {
  /** The JWE to send with Content-Type application/jose. */
  readonly jwe: string;
  readonly id: string;
  /** Decrypts the enclave's sealed response (a JWE to this request's response key). */
  open(responseJwe: string): Promise<unknown>;
}

/**
 * Seals `request` to the manifest's seal key. `options.id` is the JWE's one-time id (default: a
 * fresh UUID; the enclave refuses a repeat), `options.model` binds the request to a model (the
 * enclave runs it only under a path naming that model and version), since the path that names it
 * is outside the encryption.
 */
export async function sealRequest(manifest: Pick<EnclaveManifest, 'keys'>, request: unknown, options: { id?: string; iat?: number; model?: ModelRef } = {}): Promise<SealedRequest> {
  const seal = manifest.keys.seal;
  const sealKey = await importJWK({ kty: seal.kty, crv: seal.crv, x: seal.x, y: seal.y }, SEAL_ALG);
  const { publicKey, privateKey } = await generateKeyPair(SEAL_ALG, { crv: 'P-256', extractable: false });
  const responseKey: JWK = await exportJWK(publicKey);
  const id = options.id ?? globalThis.crypto.randomUUID();
  const plaintext = JSON.stringify({ id, iat: options.iat ?? Math.floor(Date.now() / 1000), request, response_key: responseKey, ...(options.model !== undefined ? { model: options.model } : {}) });
  const jwe = await new CompactEncrypt(utf8(plaintext)).setProtectedHeader({ alg: SEAL_ALG, enc: SEAL_ENC, kid: seal.kid }).encrypt(sealKey);
  return {
    jwe,
    id,
    async open(responseJwe: string): Promise<unknown> {
      try {
        const { plaintext: out } = await compactDecrypt(responseJwe.trim(), privateKey, { keyManagementAlgorithms: [SEAL_ALG], contentEncryptionAlgorithms: [SEAL_ENC] });
        return JSON.parse(fromUtf8(out));
      } catch {
        // The gateway's answer, not a request of ours: a hostile or broken answer (docs/errors.md).
        throw new TeegateError('CLIENT_RESPONSE_INVALID', 'the sealed answer does not decrypt to JSON with this request\'s response key');
      }
    },
  };
}
