/**
 * Verification of an AWS Nitro Enclaves attestation document, in the order of the spec:
 * parse (strict CBOR, COSE_Sign1, document schema) → chain (to the pinned root) → signature
 * (COSE, by the leaf) → time (validity of every certificate at the verification time) → policy
 * (debug mode, PCRs, maximum age) → binding (nonce, user_data, public_key).
 * `verifyAttestation` throws a TeegateError at the first failed step; `verifyAttestationReport`
 * never throws for bad evidence and returns every step's outcome.
 */
import { sha384, toHex } from '../bytes';
import { TeegateError, isTeegateError, type ErrorCode } from '../errors';
import { parseCoseSign1, verifyCoseSign1 } from '../cose/sign1';
import { CertificateCache, oneShotCache } from '../x509/certificate-cache';
import { checkValidity, fingerprintOf, validatePath } from '../x509/path';
import { pemToDerList } from '../x509/pem';
import { AWS_NITRO_ROOT_G1_PEM } from './aws-root';
import { parseNitroPayload, type NitroDocument } from './document';
import { checkBinding, checkPolicy, compilePolicy, isDebugMode, type BindingExpectations, type MeasurementPolicy } from './policy';
import { VERIFICATION_STEPS, type StepOutcome, type VerificationStep } from './report';

export interface VerifyOptions extends BindingExpectations {
  /**
   * Verification time (default: now). `'document'`: the document's own timestamp, for a boot
   * document checked as of when it was made (it may be older than its certificates' lifetime);
   * its age is then zero, so the policy's `maxAgeMs` does not apply.
   */
  readonly at?: Date | number | 'document';
  /** Trusted roots, DER or PEM (default: AWS Nitro Enclaves Root-G1 only). */
  readonly rootCertificates?: readonly (Uint8Array | string)[];
  readonly policy?: MeasurementPolicy;
  /** Allowed clock skew for a document timestamp ahead of the verification time (default 5 min). */
  readonly clockSkewMs?: number;
  /** Reuse parsed certificates and verified issuer signatures across calls. */
  readonly cache?: CertificateCache;
}

export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface VerifiedAttestation {
  readonly moduleId: string;
  /** Milliseconds since the epoch, from the document. */
  readonly timestamp: number;
  readonly digest: 'SHA384';
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly publicKey?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
  readonly debug: boolean;
  readonly certificate: CertificateSummary;
  /** The chain, root first, for display. */
  readonly chain: readonly CertificateSummary[];
  readonly rootFingerprint: string;
  /** Hex SHA-384 of the whole document as received (receipts name the boot document by it). */
  readonly documentSha384: string;
}

export interface AttestationReport {
  readonly valid: boolean;
  readonly steps: readonly StepOutcome[];
  readonly error?: { readonly code: ErrorCode; readonly message: string };
  readonly attestation?: VerifiedAttestation;
}

/** SHA-256 fingerprints of the trusted roots (default: AWS Nitro Enclaves Root-G1). */
async function rootFingerprints(roots: readonly (Uint8Array | string)[] | undefined): Promise<ReadonlySet<string>> {
  const list = roots ?? [AWS_NITRO_ROOT_G1_PEM];
  if (list.length === 0) throw new TeegateError('POLICY_INVALID', 'no trusted root given');
  const ders = list.flatMap((r) => (typeof r === 'string' ? pemToDerList(r) : [r]));
  return new Set(await Promise.all(ders.map(fingerprintOf)));
}

function toMillis(at: Date | number | undefined): number {
  const ms = at === undefined ? Date.now() : typeof at === 'number' ? at : at.getTime();
  if (!Number.isFinite(ms)) throw new TeegateError('POLICY_INVALID', 'verification time is not a valid time');
  return ms;
}

function summary(c: { subject: string; issuer: string; serialNumberHex: string; notBefore: number; notAfter: number }): CertificateSummary {
  return {
    subject: c.subject,
    issuer: c.issuer,
    serialNumber: c.serialNumberHex,
    notBefore: new Date(c.notBefore).toISOString(),
    notAfter: new Date(c.notAfter).toISOString(),
  };
}

/** Runs the pipeline, recording each step; stops at the first failure. */
async function run(document: Uint8Array, options: VerifyOptions, record: (o: StepOutcome) => void): Promise<VerifiedAttestation> {
  let current: VerificationStep = 'parse';
  const pass = (reason: string) => record({ step: current, status: 'passed', reason });
  try {
    const givenAt = options.at === 'document' ? undefined : toMillis(options.at);
    const policy = compilePolicy(options.policy);
    const roots = await rootFingerprints(options.rootCertificates);
    const cache = options.cache ?? oneShotCache();

    const sign1 = parseCoseSign1(document);
    const doc: NitroDocument = parseNitroPayload(sign1.payload);
    const at = givenAt ?? doc.timestamp;
    pass(`COSE_Sign1 ES384${sign1.tagged ? ' (tag 18)' : ''}, module ${doc.moduleId}, ${doc.pcrs.size} PCRs`);

    // The COSE signature check starts now, concurrently with the chain's signatures; its result is
    // only looked at after the chain step passed, so the outcome and the report order are unchanged.
    const coseValid = cache
      .key(cache.parse(doc.certificate))
      .then((key) => verifyCoseSign1(sign1, key))
      .catch(() => false);
    const documentDigest = sha384(document);

    current = 'chain';
    const path = await validatePath(doc.certificate, doc.cabundle, roots, cache);
    pass(`${path.chain.length} certificates to the pinned root ${path.rootFingerprint.slice(0, 16)}…`);

    current = 'signature';
    if (!(await coseValid)) {
      throw new TeegateError('SIGNATURE_INVALID', 'COSE_Sign1 signature does not verify with the leaf certificate key');
    }
    pass('COSE_Sign1 signature verified with the leaf certificate key');

    current = 'time';
    checkValidity(path.chain, at);
    const skew = options.clockSkewMs ?? 5 * 60_000;
    if (doc.timestamp > at + skew) {
      throw new TeegateError('DOCUMENT_FROM_FUTURE', `document timestamp ${new Date(doc.timestamp).toISOString()} is after the verification time ${new Date(at).toISOString()}`);
    }
    pass(`every certificate valid at ${new Date(at).toISOString()}`);

    current = 'policy';
    checkPolicy(doc, policy, at);
    pass(`${policy.pcrs.size} PCRs matched${isDebugMode(doc) ? ', debug mode allowed' : ''}${policy.maxAgeMs !== undefined && givenAt !== undefined ? `, age within ${policy.maxAgeMs} ms` : ''}`);

    current = 'binding';
    checkBinding(doc, options);
    const bound = [options.nonce && 'nonce', options.userData && 'user_data', options.publicKey && 'public_key'].filter(Boolean);
    pass(bound.length ? `${bound.join(', ')} matched` : 'nothing expected');

    return {
      moduleId: doc.moduleId,
      timestamp: doc.timestamp,
      digest: doc.digest,
      pcrs: doc.pcrs,
      ...(doc.publicKey ? { publicKey: doc.publicKey } : {}),
      ...(doc.userData ? { userData: doc.userData } : {}),
      ...(doc.nonce ? { nonce: doc.nonce } : {}),
      debug: isDebugMode(doc),
      certificate: summary(path.leaf),
      chain: path.chain.map(summary),
      rootFingerprint: path.rootFingerprint,
      documentSha384: toHex(await documentDigest),
    };
  } catch (err) {
    const e = isTeegateError(err) ? err : new TeegateError('INTERNAL', `unexpected failure in step ${current}: ${String(err)}`, { cause: err });
    record({ step: current, status: 'failed', reason: e.message, code: e.code });
    throw e;
  }
}

export async function verifyAttestation(document: Uint8Array, options: VerifyOptions = {}): Promise<VerifiedAttestation> {
  return run(document, options, () => undefined);
}

export async function verifyAttestationReport(document: Uint8Array, options: VerifyOptions = {}): Promise<AttestationReport> {
  const steps: StepOutcome[] = [];
  try {
    const attestation = await run(document, options, (o) => steps.push(o));
    return { valid: true, steps, attestation };
  } catch (err) {
    const e = err as TeegateError;
    const failed = steps[steps.length - 1]?.step ?? 'parse';
    for (const step of VERIFICATION_STEPS.slice(steps.length)) {
      steps.push({ step, status: 'skipped', reason: `not checked: step ${failed} failed` });
    }
    return { valid: false, steps, error: e.toJSON() };
  }
}

/** JSON-friendly form (hex bytes, PCRs as an object) for `--json` output and HTTP answers. */
export function attestationToJSON(a: VerifiedAttestation): Record<string, unknown> {
  return {
    moduleId: a.moduleId,
    timestamp: a.timestamp,
    time: new Date(a.timestamp).toISOString(),
    digest: a.digest,
    pcrs: Object.fromEntries([...a.pcrs].map(([i, v]) => [String(i), toHex(v)])),
    publicKey: a.publicKey ? toHex(a.publicKey) : null,
    userData: a.userData ? toHex(a.userData) : null,
    nonce: a.nonce ? toHex(a.nonce) : null,
    debug: a.debug,
    certificate: a.certificate,
    chain: a.chain,
    rootFingerprint: a.rootFingerprint,
    documentSha384: a.documentSha384,
  };
}
