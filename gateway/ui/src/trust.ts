/**
 * What the explorer trusts, and where it came from. A policy file or log key the user pasted in
 * Trust settings (kept in this browser's localStorage) wins over the one the gateway offers
 * (`GET /v1/policy`, `GET /v1/log/key`): the gateway is not trusted, so values it serves are shown
 * as such. The API key (for inference) stays in sessionStorage.
 */
import { bytesEqual } from '../../../attestation/bytes';
import { pemToDerList } from '../../../attestation/x509/pem';
import { TeegateError, isTeegateError } from '../../../attestation/errors';
import { parseVerifierKey } from '../../../attestation/log/signed-note';
import { AWS_NITRO_ROOT_G1_PEM } from '../../../attestation/nitro/aws-root';
import { parsePolicyFile, type LoadedPolicy } from '../../../attestation/policy-file';
import type { GatewayHttp } from '../../../attestation/client/http';
import { parseJson } from '../../../attestation/client/http';

export type TrustSource = 'pinned' | 'gateway';

export interface Trust {
  readonly policy?: LoadedPolicy;
  readonly policySource?: TrustSource;
  /** Why there is no policy. */
  readonly policyError?: TeegateError;
  readonly logKey?: string;
  readonly logKeySource?: TrustSource;
  readonly apiKey?: string;
}

const POLICY_KEY = 'teegate.ui.policy';
const LOG_KEY = 'teegate.ui.logKey';
const API_KEY = 'teegate.ui.apiKey';

export const pinned = {
  policy: (): string | null => localStorage.getItem(POLICY_KEY),
  logKey: (): string | null => localStorage.getItem(LOG_KEY),
  apiKey: (): string | null => sessionStorage.getItem(API_KEY),
  setPolicy(text: string | null): void {
    if (text === null) localStorage.removeItem(POLICY_KEY);
    else localStorage.setItem(POLICY_KEY, text);
  },
  setLogKey(text: string | null): void {
    if (text === null) localStorage.removeItem(LOG_KEY);
    else localStorage.setItem(LOG_KEY, text.trim());
  },
  setApiKey(text: string | null): void {
    if (text === null || text.trim() === '') sessionStorage.removeItem(API_KEY);
    else sessionStorage.setItem(API_KEY, text.trim());
  },
};

/** Parses a policy file's text; throws POLICY_INVALID with a readable message. */
export function parsePolicyText(text: string): LoadedPolicy {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new TeegateError('POLICY_INVALID', 'the measurement policy is not JSON');
  }
  return parsePolicyFile(value);
}

async function gatewayPolicy(http: GatewayHttp): Promise<LoadedPolicy> {
  const answer = await http.request('/v1/policy');
  if (answer.status === 404) {
    throw new TeegateError('POLICY_INVALID', 'the gateway publishes no measurement policy at /v1/policy: paste your policy file in Trust settings');
  }
  if (answer.status !== 200) throw new TeegateError('CLIENT_FETCH_FAILED', `GET /v1/policy answered ${answer.status}`);
  return parsePolicyFile(parseJson('/v1/policy', answer.text));
}

async function gatewayLogKey(http: GatewayHttp): Promise<string | undefined> {
  try {
    const answer = await http.request('/v1/log/key');
    if (answer.status !== 200) return undefined;
    const key = answer.text.trim();
    await parseVerifierKey(key);
    return key;
  } catch {
    return undefined;
  }
}

export async function loadTrust(http: GatewayHttp): Promise<Trust> {
  let policy: LoadedPolicy | undefined;
  let policySource: TrustSource | undefined;
  let policyError: TeegateError | undefined;
  try {
    const text = pinned.policy();
    if (text !== null) {
      policy = parsePolicyText(text);
      policySource = 'pinned';
    } else {
      policy = await gatewayPolicy(http);
      policySource = 'gateway';
    }
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    policyError = err;
  }
  const pinnedLogKey = pinned.logKey();
  const logKey = pinnedLogKey ?? (await gatewayLogKey(http));
  const apiKey = pinned.apiKey();
  return {
    ...(policy ? { policy, policySource: policySource! } : {}),
    ...(policyError ? { policyError } : {}),
    ...(logKey !== undefined ? { logKey, logKeySource: pinnedLogKey !== null ? 'pinned' : 'gateway' } : {}),
    ...(apiKey !== null ? { apiKey } : {}),
  };
}

/** True when the policy trusts roots other than AWS Nitro Enclaves Root-G1 (a dev deployment). */
export function trustsCustomRoot(policy: LoadedPolicy): boolean {
  // By certificate, not by PEM text: a root file may carry text around its BEGIN/END lines.
  const aws = pemToDerList(AWS_NITRO_ROOT_G1_PEM)[0]!;
  return (policy.rootCertificates ?? []).some((pem) => pemToDerList(pem).some((der) => !bytesEqual(der, aws)));
}

/** The trust anchors for the verifier, or the reason there are none. */
export function requirePolicy(trust: Trust): LoadedPolicy {
  if (trust.policy) return trust.policy;
  throw trust.policyError ?? new TeegateError('POLICY_INVALID', 'no measurement policy: paste one in Trust settings');
}
