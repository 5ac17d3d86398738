/**
 * How the client comes to trust one enclave behind a gateway (ARCHITECTURE.md, flow 3):
 *  1. `GET /v1/attestation?nonce=<fresh 32 bytes>[&enclave=<id>]`: a document made now, carrying
 *     the nonce; verified against the pinned roots, the measurement policy (with its maximum age)
 *     and the nonce; then the manifest binding (user_data, public_key, kids).
 *  2. `GET /v1/enclaves`: the same enclave's boot document, which receipts name by its SHA-384
 *     (`att`). Verified at its own timestamp (a boot document may be older than any certificate
 *     lifetime), under the same policy without the maximum age, and bound to the same manifest
 *     (user_data and public_key equal to the fresh document's).
 * The gateway is untrusted: it only carries evidence; a wrong answer fails one of these checks.
 */
import { ENCLAVE_HEADER } from '../headers';
import { fromBase64, randomBytes, toHex } from '../bytes';
import { TeegateError, isTeegateError, type ErrorCode } from '../errors';
import { verifyManifestBinding, type EnclaveManifest } from '../manifest';
import type { MeasurementPolicy } from '../nitro/policy';
import type { LoadedPolicy } from '../policy-file';
import type { StepOutcome } from '../nitro/report';
import { verifyAttestation, verifyAttestationReport, type VerifiedAttestation } from '../nitro/verify';
import { CertificateCache } from '../x509/certificate-cache';
import { jsonObject, parseJson, type GatewayHttp } from './http';

/** What the client verified about one enclave. */
export interface AttestedEnclave {
  readonly bootId: string;
  /** The gateway's name for this enclave (`teegate-enclave` header, `/v1/enclaves` id), if given. */
  readonly enclaveId?: string;
  readonly manifest: EnclaveManifest;
  /** The fresh document, carrying `nonce`. */
  readonly fresh: VerifiedAttestation;
  readonly nonce: string;
  /** The boot document (receipts name it by `att` = its SHA-384) and its verification. */
  readonly boot: VerifiedAttestation;
  readonly bootDocument: Uint8Array;
  /** Steps of the fresh document's verification (parse, chain, signature, time, policy, binding). */
  readonly steps: readonly StepOutcome[];
  /** Milliseconds since the epoch, client clock. */
  readonly verifiedAt: number;
}

export interface TrustAnchors {
  readonly policy: MeasurementPolicy;
  /** PEM or DER roots; default AWS Nitro Enclaves Root-G1. */
  readonly rootCertificates?: readonly (Uint8Array | string)[];
  readonly cache?: CertificateCache;
}

/**
 * The verifier's anchors for a policy: a bare MeasurementPolicy, or a loaded policy file with the
 * roots it names. `roots`, when given, win over the file's.
 */
export function trustAnchors(policy: MeasurementPolicy | LoadedPolicy | undefined, roots?: readonly (Uint8Array | string)[], cache?: CertificateCache): TrustAnchors {
  const loaded = policy !== undefined && 'file' in policy && 'policy' in policy ? policy : undefined;
  const rootCertificates = roots ?? loaded?.rootCertificates;
  return {
    policy: loaded ? loaded.policy : ((policy as MeasurementPolicy | undefined) ?? {}),
    ...(rootCertificates ? { rootCertificates } : {}),
    ...(cache ? { cache } : {}),
  };
}

/** A rejected attestation, with the fresh document's step outcomes when it got that far. */
export class AttestationRejectedError extends TeegateError {
  readonly steps: readonly StepOutcome[];
  readonly stage: 'attestation' | 'manifest';

  constructor(code: ErrorCode, message: string, stage: 'attestation' | 'manifest', steps: readonly StepOutcome[]) {
    super(code, message);
    this.stage = stage;
    this.steps = steps;
  }
}

interface DocumentAnswer {
  readonly document: Uint8Array;
  readonly manifest: unknown;
}

function documentAnswer(value: unknown, what: string): DocumentAnswer {
  const o = jsonObject(value, what);
  if (typeof o.document !== 'string' || o.document.length === 0) throw new TeegateError('CLIENT_RESPONSE_INVALID', `${what} has no document`);
  let document: Uint8Array;
  try {
    document = fromBase64(o.document);
  } catch {
    throw new TeegateError('CLIENT_RESPONSE_INVALID', `${what}: document is not base64`);
  }
  return { document, manifest: o.manifest };
}

/** One live enclave as `GET /v1/enclaves` lists it (untrusted until verified). */
export interface ListedEnclave {
  readonly id: string;
  readonly state: string;
  readonly bootId?: string;
  readonly document?: Uint8Array;
  readonly manifest?: unknown;
}

export async function listEnclaves(http: GatewayHttp): Promise<ListedEnclave[]> {
  const body = jsonObject(await http.getJson('/v1/enclaves'), '/v1/enclaves answer');
  if (!Array.isArray(body.enclaves) || body.enclaves.length > 1024) throw new TeegateError('CLIENT_RESPONSE_INVALID', '/v1/enclaves: enclaves is not an array');
  return body.enclaves.map((e: unknown, i: number): ListedEnclave => {
    const o = jsonObject(e, `/v1/enclaves enclaves[${i}]`);
    if (typeof o.id !== 'string' || typeof o.state !== 'string') throw new TeegateError('CLIENT_RESPONSE_INVALID', `/v1/enclaves enclaves[${i}] has no id or state`);
    const listed: ListedEnclave = { id: o.id, state: o.state };
    if (typeof o.boot_id !== 'string' || typeof o.document !== 'string') return listed;
    const { document, manifest } = documentAnswer(o, `/v1/enclaves enclaves[${i}]`);
    return { ...listed, bootId: o.boot_id, document, manifest };
  });
}

/** Verifies the boot document of the enclave whose fresh attestation and manifest we trust. */
async function verifyBootDocument(document: Uint8Array, manifest: unknown, fresh: VerifiedAttestation, anchors: TrustAnchors): Promise<VerifiedAttestation> {
  const boot = await verifyAttestation(document, {
    ...anchors,
    at: 'document',
    ...(fresh.userData ? { userData: fresh.userData } : {}),
    ...(fresh.publicKey ? { publicKey: fresh.publicKey } : {}),
  });
  await verifyManifestBinding(boot, manifest);
  return boot;
}

/**
 * Fetches and verifies a fresh attestation (of one named enclave, or of any the gateway picks),
 * then the boot document of the same enclave. Throws AttestationRejectedError for evidence that
 * fails a check, other TeegateErrors for transport problems.
 */
export async function attestThroughGateway(
  http: GatewayHttp,
  anchors: TrustAnchors,
  options: { enclaveId?: string; nonce?: Uint8Array; /** The gateway's listing of the enclave, if the caller has it (else fetched). */ listed?: ListedEnclave } = {},
): Promise<AttestedEnclave> {
  const nonce = options.nonce ?? randomBytes(32);
  const query = `nonce=${toHex(nonce)}${options.enclaveId !== undefined ? `&enclave=${encodeURIComponent(options.enclaveId)}` : ''}`;
  const answer = await http.ok(`/v1/attestation?${query}`);
  const { document, manifest: rawManifest } = documentAnswer(parseJson('/v1/attestation', answer.text), '/v1/attestation answer');
  const enclaveId = answer.headers.get(ENCLAVE_HEADER) ?? options.enclaveId;

  const report = await verifyAttestationReport(document, { ...anchors, nonce });
  if (!report.valid || !report.attestation) {
    const error = report.error ?? { code: 'INTERNAL' as const, message: 'attestation verification failed' };
    throw new AttestationRejectedError(error.code, error.message, 'attestation', report.steps);
  }
  const fresh = report.attestation;
  let manifest: EnclaveManifest;
  try {
    manifest = await verifyManifestBinding(fresh, rawManifest);
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    throw new AttestationRejectedError(err.code, err.message, 'manifest', report.steps);
  }

  const matches = (e: ListedEnclave) => e.bootId === manifest.boot_id && (enclaveId === undefined || e.id === enclaveId);
  // A listing taken before this attestation may name the enclave's previous boot: then list again.
  const listed = options.listed && matches(options.listed) ? options.listed : (await listEnclaves(http)).find(matches);
  if (!listed?.document) {
    throw new TeegateError('CLIENT_ENCLAVE_UNKNOWN', `the gateway lists no enclave with boot id ${manifest.boot_id}${enclaveId ? ` (enclave ${enclaveId})` : ''}`);
  }
  let boot: VerifiedAttestation;
  try {
    boot = await verifyBootDocument(listed.document, listed.manifest, fresh, anchors);
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    throw new AttestationRejectedError(err.code, `boot document of ${manifest.boot_id}: ${err.message}`, 'attestation', report.steps);
  }
  return {
    bootId: manifest.boot_id,
    enclaveId: listed.id, // the one asked for, or the one that answered: matches() saw to it
    manifest,
    fresh,
    nonce: toHex(nonce),
    boot,
    bootDocument: listed.document,
    steps: report.steps,
    verifiedAt: Date.now(),
  };
}

