/**
 * The one measurement policy file format (docs/policy.md), read by the gateway's enclave checks,
 * the client SDK and CLI (`--policy FILE`), and the KMS key-policy generator. JSON:
 *   {"format": "teegate-measurement-policy", "version": 1,
 *    "pcrs": {"0": "<96 hex>", "1": "...", "2": "..."},
 *    "allowDebug": false, "maxAgeSeconds": 300,
 *    "rootCertificates": ["-----BEGIN CERTIFICATE-----..."],   // optional; default AWS Nitro Root-G1
 *    "image": {"name": "...", "builtAt": "...", "source": "..."}} // optional, informational
 */
import { TeegateError, isTeegateError } from './errors';
import { compilePolicy, type MeasurementPolicy } from './nitro/policy';
import { pemToDerList } from './x509/pem';

export const POLICY_FORMAT = 'teegate-measurement-policy';

export interface PolicyFile {
  readonly format: typeof POLICY_FORMAT;
  readonly version: 1;
  readonly pcrs: Readonly<Record<string, string>>;
  readonly allowDebug?: boolean;
  readonly maxAgeSeconds?: number;
  readonly rootCertificates?: readonly string[];
  readonly image?: Readonly<Record<string, string>>;
}

export interface LoadedPolicy {
  readonly policy: MeasurementPolicy;
  /** PEM roots to trust instead of AWS Nitro Root-G1 (dev deployments), if any. */
  readonly rootCertificates?: readonly string[];
  readonly file: PolicyFile;
}

function invalid(message: string): never {
  throw new TeegateError('POLICY_INVALID', `measurement policy: ${message}`);
}

const KNOWN = new Set(['format', 'version', 'pcrs', 'allowDebug', 'maxAgeSeconds', 'rootCertificates', 'image']);

/** Validates a parsed policy file (untrusted JSON). PCR values are normalised to lower case. */
export function parsePolicyFile(value: unknown): LoadedPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('must be a JSON object');
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) invalid(`unknown member ${JSON.stringify(k)}`);
  if (o.format !== POLICY_FORMAT) invalid(`format must be "${POLICY_FORMAT}"`);
  if (o.version !== 1) invalid('version must be 1');
  if (typeof o.pcrs !== 'object' || o.pcrs === null || Array.isArray(o.pcrs)) invalid('pcrs must be an object of index → hex');
  const pcrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.pcrs as Record<string, unknown>)) {
    if (typeof v !== 'string') invalid(`PCR${k} must be a hex string`);
    pcrs[k] = v.toLowerCase();
  }
  // The gateway's configured policy has the same rule: a policy pinning nothing would pass every
  // genuine enclave, whatever code it runs, and a report would still read "verified".
  if (Object.keys(pcrs).length === 0) invalid('pcrs must pin at least one PCR: one that pins none accepts every enclave image under the root');
  if (o.allowDebug !== undefined && typeof o.allowDebug !== 'boolean') invalid('allowDebug must be a boolean');
  if (o.maxAgeSeconds !== undefined && (typeof o.maxAgeSeconds !== 'number' || !Number.isInteger(o.maxAgeSeconds) || o.maxAgeSeconds < 0)) {
    invalid('maxAgeSeconds must be a non-negative integer');
  }
  let roots: string[] | undefined;
  if (o.rootCertificates !== undefined) {
    if (!Array.isArray(o.rootCertificates) || o.rootCertificates.length === 0 || o.rootCertificates.some((r) => typeof r !== 'string')) {
      invalid('rootCertificates must be a non-empty array of PEM strings');
    }
    roots = o.rootCertificates as string[];
    for (const [i, pem] of roots.entries()) {
      try {
        pemToDerList(pem);
      } catch (err) {
        if (!isTeegateError(err)) throw err;
        invalid(`rootCertificates[${i}]: ${err.message}`);
      }
    }
  }
  if (o.image !== undefined && (typeof o.image !== 'object' || o.image === null || Array.isArray(o.image) || Object.values(o.image).some((v) => typeof v !== 'string'))) {
    invalid('image must be an object of strings');
  }
  const policy: MeasurementPolicy = {
    pcrs: Object.fromEntries(Object.entries(pcrs).map(([k, v]) => [Number(k), v])) as Record<number, string>,
    allowDebug: (o.allowDebug as boolean | undefined) ?? false,
    ...(o.maxAgeSeconds !== undefined ? { maxAgeMs: (o.maxAgeSeconds as number) * 1000 } : {}),
  };
  compilePolicy({ ...policy, pcrs: pcrs as unknown as Record<number, string> }); // PCR index and length checks
  return { policy, ...(roots ? { rootCertificates: roots } : {}), file: value as PolicyFile };
}

/** Builds a policy file from measured PCRs (hex by index). */
export function makePolicyFile(pcrs: Readonly<Record<number, string>>, options: { allowDebug?: boolean; maxAgeSeconds?: number; rootCertificates?: readonly string[]; image?: Record<string, string> } = {}): PolicyFile {
  return {
    format: POLICY_FORMAT,
    version: 1,
    pcrs: Object.fromEntries(Object.entries(pcrs).map(([k, v]) => [k, v.toLowerCase()])),
    ...(options.allowDebug !== undefined ? { allowDebug: options.allowDebug } : {}),
    ...(options.maxAgeSeconds !== undefined ? { maxAgeSeconds: options.maxAgeSeconds } : {}),
    ...(options.rootCertificates ? { rootCertificates: [...options.rootCertificates] } : {}),
    ...(options.image ? { image: options.image } : {}),
  };
}
