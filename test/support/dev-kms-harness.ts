/**
 * The tests' dev KMS servers and real `@aws-sdk/client-kms` clients: one account and region, each
 * server closed after the test file's tests.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { startDevKms, type DevKms, type DevKmsOptions } from '../../infra/dev-kms/main';

export const KMS_ACCOUNT = '111122223333';
export const KMS_REGION = 'us-east-1';

export interface KmsTestServers {
  /** A dev KMS with the file's credentials (and `options`), and a client of it. */
  start(options?: Partial<DevKmsOptions>): Promise<{ kms: DevKms; client: KMSClient }>;
  /** An SDK client of `url`, with the file's credentials unless others are given; no retries. */
  clientFor(url: string, secretAccessKey?: string, accessKeyId?: string): KMSClient;
}

/** Call at the top of a test file: the servers it starts are closed in its afterAll. */
export function kmsTestServers(accessKeyId: string, secretAccessKey: string): KmsTestServers {
  const running: DevKms[] = [];
  afterAll(async () => {
    await Promise.all(running.map((k) => k.close()));
  });
  const clientFor = (url: string, secret = secretAccessKey, id = accessKeyId): KMSClient =>
    new KMSClient({ endpoint: url, region: KMS_REGION, credentials: { accessKeyId: id, secretAccessKey: secret }, maxAttempts: 1 });
  return {
    clientFor,
    async start(options = {}) {
      const kms = await startDevKms({ credentials: [{ accessKeyId, secretAccessKey }], accountId: KMS_ACCOUNT, region: KMS_REGION, ...options });
      running.push(kms);
      return { kms, client: clientFor(kms.url) };
    },
  };
}

/** The error an SDK call fails with (the test fails if it succeeds). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number; requestId?: string } }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}
