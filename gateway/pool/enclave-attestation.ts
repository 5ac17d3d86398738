/**
 * How the gateway admits an enclave: fetch its boot attestation and manifest, verify the document
 * against the pinned roots and the measurement policy, check the manifest binding, then ask for a
 * fresh document carrying a gateway nonce and the same binding (proof that the enclave answering
 * now holds that manifest, not a replay of someone else's boot document). Only then may the
 * enclave take traffic.
 */
import { fromBase64, randomBytes, toHex } from '../../attestation/bytes';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import type { MeasurementPolicy } from '../../attestation/nitro/policy';
import { verifyAttestation, type VerifiedAttestation } from '../../attestation/nitro/verify';
import { CertificateCache } from '../../attestation/x509/certificate-cache';
import { UpstreamError, type EnclaveClient } from './enclave-client';

export interface AttestationRequirements {
  /** PEM roots; empty = AWS Nitro Enclaves Root-G1. */
  readonly rootCertificates: readonly string[];
  readonly policy: MeasurementPolicy;
  readonly cache?: CertificateCache;
}

export interface VerifiedEnclave {
  readonly bootId: string;
  readonly manifest: EnclaveManifest;
  /** The boot document bytes (COSE_Sign1) and its base64 as the enclave published it. */
  readonly document: Uint8Array;
  readonly documentBase64: string;
  readonly receiptKid: string;
  readonly verifiedAt: number;
}

interface AttestationAnswer {
  readonly document: Uint8Array;
  readonly documentBase64: string;
  readonly manifest: unknown;
}

function rejected(message: string, cause?: unknown): TeegateError {
  return new TeegateError('ENCLAVE_ATTESTATION_REJECTED', message, cause === undefined ? undefined : { cause });
}

async function fetchAttestation(client: EnclaveClient, path: string, timeoutMs: number): Promise<AttestationAnswer> {
  const { status, json } = await client.getJson(path, timeoutMs);
  if (status !== 200) throw new UpstreamError('invalid', `${client.label}${path} answered ${status}`);
  const o = json as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || typeof o.document !== 'string') throw rejected(`${path} did not answer {document, manifest}`);
  let document: Uint8Array;
  try {
    document = fromBase64(o.document);
  } catch {
    throw rejected(`${path}: document is not base64`);
  }
  return { document, documentBase64: o.document, manifest: o.manifest };
}

export async function attestEnclave(client: EnclaveClient, req: AttestationRequirements, timeoutMs: number): Promise<VerifiedEnclave> {
  const roots = req.rootCertificates.length > 0 ? { rootCertificates: req.rootCertificates } : {};
  const cache = req.cache ?? new CertificateCache();
  const boot = await fetchAttestation(client, '/attestation', timeoutMs);
  let attestation: VerifiedAttestation;
  let manifest: EnclaveManifest;
  try {
    // The boot document may be hours old (AWS leaves live 3 h): its chain is checked at its own
    // time and no maximum age applies; freshness comes from the nonce document below.
    attestation = await verifyAttestation(boot.document, { ...roots, policy: req.policy, at: 'document', cache });
    manifest = await verifyManifestBinding(attestation, boot.manifest);
  } catch (err) {
    if (isTeegateError(err)) throw rejected(`boot attestation: ${err.code}: ${err.message}`, err);
    throw err;
  }
  const nonce = randomBytes(32);
  const fresh = await fetchAttestation(client, `/attestation?nonce=${toHex(nonce)}`, timeoutMs);
  try {
    await verifyAttestation(fresh.document, {
      ...roots,
      policy: req.policy,
      cache,
      nonce,
      ...(attestation.userData ? { userData: attestation.userData } : {}),
      ...(attestation.publicKey ? { publicKey: attestation.publicKey } : {}),
    });
  } catch (err) {
    if (isTeegateError(err)) throw rejected(`fresh attestation: ${err.code}: ${err.message}`, err);
    throw err;
  }
  return {
    bootId: manifest.boot_id,
    manifest,
    document: boot.document,
    documentBase64: boot.documentBase64,
    receiptKid: manifest.keys.receipt.kid,
    verifiedAt: Date.now(),
  };
}
