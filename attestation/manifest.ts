/**
 * The enclave manifest: what an enclave publishes about itself at boot (its receipt and seal keys,
 * its models, its software), bound to its attestation document by
 * `user_data = SHA-256(JCS(manifest))` (RFC 8785) and `public_key = SPKI DER of the receipt key`.
 * A client that verified the document and then this binding may trust the manifest's keys.
 */
import canonicalize from 'canonicalize';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { constantTimeEqual, sha256, utf8, webcrypto } from './bytes';
import { TeegateError } from './errors';
import type { VerifiedAttestation } from './nitro/verify';

export interface ManifestModel {
  readonly name: string;
  readonly version: string;
  /** Hex SHA-256 of the ONNX model file. */
  readonly sha256: string;
}

/** A model as a request names it: its name, and a version if the request names one. */
export interface ModelRef {
  readonly name: string;
  readonly version?: string | undefined;
}

/** `name` or `name@version`, for messages. */
export function modelLabel({ name, version }: ModelRef): string {
  return version !== undefined ? `${name}@${version}` : name;
}

/** Public EC P-256 JWK as published (no private members). */
export interface PublicEcJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
  readonly kid: string;
  readonly alg: 'ES256' | 'ECDH-ES+A256KW';
  readonly use: 'sig' | 'enc';
}

export interface EnclaveManifest {
  readonly version: 1;
  readonly boot_id: string;
  /** ISO 8601 boot time. */
  readonly issued_at: string;
  readonly software: { readonly name: string; readonly version: string };
  readonly keys: { readonly receipt: PublicEcJwk; readonly seal: PublicEcJwk };
  readonly models: readonly ManifestModel[];
}

function invalid(message: string): never {
  throw new TeegateError('MANIFEST_INVALID', message);
}

/** RFC 8785 canonical JSON bytes of a manifest (or any JSON value). */
export function canonicalJson(value: unknown): Uint8Array {
  const text = canonicalize(value);
  if (text === undefined) invalid('value has no JSON form');
  return utf8(text);
}

export async function manifestDigest(manifest: EnclaveManifest): Promise<Uint8Array> {
  return sha256(canonicalJson(manifest));
}

/** RFC 3339 date-time, as `Date.prototype.toISOString` writes it (fractional seconds optional). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** `value` as an object with only the `allowed` members (a version-1 manifest has no others). */
function record(value: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`${what} must be an object`);
  for (const k of Object.keys(value)) if (!allowed.includes(k)) invalid(`${what} has an unexpected member ${JSON.stringify(k)}`);
  return value as Record<string, unknown>;
}

function str(v: unknown, what: string, max = 256): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalid(`${what} must be a non-empty string`);
  return v;
}

function parseJwk(v: unknown, what: string, alg: PublicEcJwk['alg'], use: PublicEcJwk['use']): PublicEcJwk {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`${what} must be a JWK object`);
  const o = v as Record<string, unknown>;
  const allowed = new Set(['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']);
  for (const k of Object.keys(o)) if (!allowed.has(k)) invalid(`${what} has an unexpected member ${JSON.stringify(k)} (private keys are never published)`);
  if (o.kty !== 'EC' || o.crv !== 'P-256') invalid(`${what} must be an EC P-256 key`);
  if (o.alg !== alg || o.use !== use) invalid(`${what} must have alg ${alg} and use ${use}`);
  const x = str(o.x, `${what}.x`, 64);
  const y = str(o.y, `${what}.y`, 64);
  if (!/^[A-Za-z0-9_-]{43}$/.test(x) || !/^[A-Za-z0-9_-]{43}$/.test(y)) invalid(`${what} coordinates must be 32-byte base64url`);
  return { kty: 'EC', crv: 'P-256', x, y, kid: str(o.kid, `${what}.kid`, 64), alg, use };
}

/**
 * Strict schema check of an untrusted manifest (parsed JSON): version 1 has exactly the members
 * below, so anything else (a key's private part, a field a client would not know to check) is
 * refused rather than carried along unchecked inside the attested digest.
 */
export function parseManifest(value: unknown): EnclaveManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('manifest must be a JSON object');
  if ((value as Record<string, unknown>).version !== 1) invalid('manifest version must be 1');
  const o = record(value, 'manifest', ['version', 'boot_id', 'issued_at', 'software', 'keys', 'models']);
  const software = record(o.software, 'software', ['name', 'version']);
  const keys = record(o.keys, 'keys', ['receipt', 'seal']);
  if (!Array.isArray(o.models) || o.models.length > 256) invalid('models must be an array of at most 256 entries');
  const issuedAt = str(o.issued_at, 'issued_at', 64);
  if (!RFC3339.test(issuedAt) || !Number.isFinite(Date.parse(issuedAt))) invalid('issued_at must be an RFC 3339 time');
  // An enclave may serve several versions of one model (OIP /versions/{v}): (name, version) is the key.
  const seen = new Set<string>();
  const models = o.models.map((m: unknown, i: number): ManifestModel => {
    const mm = record(m, `models[${i}]`, ['name', 'version', 'sha256']);
    const name = str(mm.name, `models[${i}].name`, 128);
    const version = str(mm.version, `models[${i}].version`, 64);
    const key = JSON.stringify([name, version]);
    if (seen.has(key)) invalid(`model ${name} version ${version} is listed twice`);
    seen.add(key);
    const sha = str(mm.sha256, `models[${i}].sha256`, 64);
    if (!/^[0-9a-f]{64}$/.test(sha)) invalid(`models[${i}].sha256 must be 64 lowercase hex characters`);
    return { name, version, sha256: sha };
  });
  return {
    version: 1,
    boot_id: str(o.boot_id, 'boot_id', 128),
    issued_at: issuedAt,
    software: { name: str(software.name, 'software.name'), version: str(software.version, 'software.version') },
    keys: {
      receipt: parseJwk(keys.receipt, 'keys.receipt', 'ES256', 'sig'),
      seal: parseJwk(keys.seal, 'keys.seal', 'ECDH-ES+A256KW', 'enc'),
    },
    models,
  };
}

/** SPKI DER of a public P-256 JWK (what the enclave puts in the document's public_key). */
export async function jwkToSpki(jwk: PublicEcJwk): Promise<Uint8Array> {
  const { kty, crv, x, y } = jwk;
  const key = await webcrypto().importKey('jwk', { kty, crv, x, y }, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  return new Uint8Array(await webcrypto().exportKey('spki', key));
}

/** RFC 7638 thumbprint (base64url SHA-256), the `kid` of receipt and seal keys. */
export async function jwkThumbprint(jwk: PublicEcJwk): Promise<string> {
  const { kty, crv, x, y } = jwk;
  return calculateJwkThumbprint({ kty, crv, x, y } as JWK, 'sha256');
}

/**
 * Checks that `manifest` is the one the verified document is bound to: user_data is
 * SHA-256(JCS(manifest)) and public_key is the receipt key; the keys' kids are their thumbprints.
 */
export async function verifyManifestBinding(attestation: VerifiedAttestation, manifest: unknown): Promise<EnclaveManifest> {
  const parsed = parseManifest(manifest);
  const digest = await manifestDigest(manifest as EnclaveManifest);
  if (!attestation.userData || !constantTimeEqual(attestation.userData, digest)) {
    throw new TeegateError('MANIFEST_BINDING_MISMATCH', 'document user_data is not SHA-256 of the canonical manifest');
  }
  // Both keys must be P-256 points: a key that does not import would fail later, outside any check.
  const spkiOf = async (k: PublicEcJwk, name: string): Promise<Uint8Array> => {
    try {
      return await jwkToSpki(k);
    } catch {
      return invalid(`the ${name} key is not a P-256 public key`);
    }
  };
  const spki = await spkiOf(parsed.keys.receipt, 'receipt');
  await spkiOf(parsed.keys.seal, 'seal');
  if (!attestation.publicKey || !constantTimeEqual(attestation.publicKey, spki)) {
    throw new TeegateError('MANIFEST_BINDING_MISMATCH', 'document public_key is not the manifest receipt key');
  }
  for (const k of [parsed.keys.receipt, parsed.keys.seal]) {
    if ((await jwkThumbprint(k)) !== k.kid) invalid(`kid of the ${k.use} key is not its RFC 7638 thumbprint`);
  }
  return parsed;
}


