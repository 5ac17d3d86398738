/**
 * The measurement policy file (attestation/policy-file.ts, docs/policy.md) of a gateway's own
 * configuration, for `GET /v1/policy`: what the gateway checks every enclave against. The explorer
 * uses it when the user has pinned none (it says so: a value served by the untrusted gateway is a
 * convenience for development, not a root of trust).
 */
import { makePolicyFile, type PolicyFile } from '../../attestation/policy-file';
import type { GatewayConfig } from '../config';

export function publishedPolicyFile(attestation: GatewayConfig['attestation']): PolicyFile {
  const { policy, rootCertificates } = attestation;
  return makePolicyFile(policy.pcrs ?? {}, {
    allowDebug: policy.allowDebug ?? false,
    ...(policy.maxAgeMs !== undefined ? { maxAgeSeconds: Math.floor(policy.maxAgeMs / 1000) } : {}),
    ...(rootCertificates.length > 0 ? { rootCertificates } : {}),
  });
}
