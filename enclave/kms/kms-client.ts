/**
 * The real AWS KMS client (@aws-sdk/client-kms), built from configuration only: in production it
 * talks to AWS KMS (through vsock-proxy: an endpoint override), in dev to the dev KMS in infra/.
 * Also turns what the SDK throws into typed errors that name the AWS exception.
 */
import { KMSClient, KMSServiceException } from '@aws-sdk/client-kms';
import { TeegateError } from '../../attestation/errors';

export interface KmsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface KmsClientConfig {
  /** AWS region; required unless `endpoint` is given (then default us-east-1). */
  readonly region?: string;
  /** Endpoint override: the dev KMS, or vsock-proxy's local port in a Nitro Enclave. */
  readonly endpoint?: string;
  /** Omitted: the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, IMDS). */
  readonly credentials?: KmsCredentials;
  /** SDK attempts per call (default 3, the SDK's). */
  readonly maxAttempts?: number;
}

export const DEV_KMS_ACCESS_KEY_ENV = 'TEEGATE_DEV_KMS_ACCESS_KEY_ID';
export const DEV_KMS_SECRET_ENV = 'TEEGATE_DEV_KMS_SECRET_ACCESS_KEY';

export function createKmsClient(config: KmsClientConfig): KMSClient {
  const region = config.region ?? (config.endpoint !== undefined ? 'us-east-1' : undefined);
  if (region === undefined) throw new TeegateError('CONFIG_INVALID', 'KMS client: give a region (or an endpoint override)');
  if (config.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(config.endpoint);
    } catch {
      throw new TeegateError('CONFIG_INVALID', `KMS client: endpoint ${JSON.stringify(config.endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TeegateError('CONFIG_INVALID', `KMS client: endpoint must be http(s), not ${url.protocol}`);
  }
  return new KMSClient({
    region,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(config.credentials !== undefined ? { credentials: { ...config.credentials } } : {}),
    ...(config.maxAttempts !== undefined ? { maxAttempts: config.maxAttempts } : {}),
  });
}

/**
 * Config from flags and the environment: region from the flag, AWS_REGION or AWS_DEFAULT_REGION;
 * with an endpoint override and TEEGATE_DEV_KMS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY set, those
 * credentials (the dev KMS's); otherwise the SDK's default chain.
 */
export function kmsClientConfigFromEnv(
  flags: { readonly endpoint?: string; readonly region?: string },
  env: Readonly<Record<string, string | undefined>> = process.env,
): KmsClientConfig {
  const region = flags.region ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  const accessKeyId = env[DEV_KMS_ACCESS_KEY_ENV];
  const secretAccessKey = env[DEV_KMS_SECRET_ENV];
  const devCredentials = flags.endpoint !== undefined && accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
  return {
    ...(region ? { region } : {}),
    ...(flags.endpoint !== undefined ? { endpoint: flags.endpoint } : {}),
    ...(devCredentials ? { credentials: devCredentials } : {}),
  };
}

/** KMS exceptions that say "try again later" although KMS counts them as client faults. */
const RETRYABLE = new Set(['LimitExceededException', 'ThrottlingException', 'KMSInternalException', 'DependencyTimeoutException', 'KeyUnavailableException']);


/**
 * A failed KMS call as a typed error whose message starts with the AWS exception:
 * KEY_RELEASE_REJECTED (KMS answered no: `AccessDeniedException: ...`) or KEY_RELEASE_UNAVAILABLE
 * (server fault, throttling, network, no credentials). TeegateErrors pass through.
 */
export function kmsCallError(operation: string, err: unknown): TeegateError {
  if (err instanceof TeegateError) return err;
  if (err instanceof KMSServiceException) {
    const code = err.$fault === 'server' || RETRYABLE.has(err.name) ? 'KEY_RELEASE_UNAVAILABLE' : 'KEY_RELEASE_REJECTED';
    const status = err.$metadata.httpStatusCode !== undefined ? ` (HTTP ${err.$metadata.httpStatusCode})` : '';
    return new TeegateError(code, `KMS ${operation} failed: ${err.name}: ${err.message}${status}`, { cause: err });
  }
  const name = err instanceof Error ? err.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  return new TeegateError('KEY_RELEASE_UNAVAILABLE', `KMS ${operation} failed: ${name}: ${message}`, { cause: err });
}
