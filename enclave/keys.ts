/**
 * The enclave's two keys, generated inside at boot and never exported: the receipt key (ES256,
 * signs every receipt) and the seal key (ECDH-ES on P-256, opens sealed requests). Private keys are
 * non-extractable WebCrypto keys; only the public JWKs leave (in the manifest).
 */
import { webcrypto } from '../attestation/bytes';
import { jwkThumbprint, type PublicEcJwk } from '../attestation/manifest';

export interface EnclaveKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: PublicEcJwk;
}

export interface EnclaveKeys {
  readonly receipt: EnclaveKey;
  readonly seal: EnclaveKey;
  /** SPKI DER of the receipt key: the attestation document's `public_key`. */
  readonly receiptSpki: Uint8Array;
}

async function publicJwk(key: CryptoKey, alg: PublicEcJwk['alg'], use: PublicEcJwk['use']): Promise<PublicEcJwk> {
  const jwk = await webcrypto().exportKey('jwk', key);
  const base = { kty: 'EC' as const, crv: 'P-256' as const, x: jwk.x!, y: jwk.y!, alg, use };
  return { ...base, kid: await jwkThumbprint({ ...base, kid: '' }) };
}

export async function generateEnclaveKeys(): Promise<EnclaveKeys> {
  const receipt = await webcrypto().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const seal = await webcrypto().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
  return {
    receipt: { privateKey: receipt.privateKey, publicJwk: await publicJwk(receipt.publicKey, 'ES256', 'sig') },
    seal: { privateKey: seal.privateKey, publicJwk: await publicJwk(seal.publicKey, 'ECDH-ES+A256KW', 'enc') },
    receiptSpki: new Uint8Array(await webcrypto().exportKey('spki', receipt.publicKey)),
  };
}
