/**
 * Starts the dev KMS: in process (`startDevKms`, for tests and `teegate up`) or as a program:
 *
 *   node bin/run-ts infra/dev-kms/main.ts --data ./data/kms --attestation-root ./data/dev-root.pem
 *     [--port 4599] [--host 127.0.0.1] [--region us-east-1] [--account 111122223333]
 *     [--credentials creds.json]   (JSON list of {accessKeyId, secretAccessKey, principalArn?})
 *
 * Without --credentials, TEEGATE_DEV_KMS_ACCESS_KEY_ID and TEEGATE_DEV_KMS_SECRET_ACCESS_KEY are
 * used (secrets never go on the command line). Prints `dev-kms listening on <url>`.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { buildEnvelopedData } from './cms-build';
import { KeyStore } from './key-store';
import { nitroRecipientVerifier } from './nitro-recipient-verifier';
import { MalformedPolicyError, parseKeyPolicy } from './policy';
import type { RecipientEncryptor, VerifyRecipientDocument } from './recipient';
import { createDevKmsHandler } from './server';
import type { DevKmsCredential } from './sigv4-verify';

export type { DevKmsCredential } from './sigv4-verify';
export type { RecipientEncryptor, VerifiedRecipient, VerifyRecipientDocument } from './recipient';

export interface DevKmsOptions {
  /** Default 0: an ephemeral port (read it from `url`). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default us-east-1. */
  readonly region?: string;
  /** Twelve digits; default 111122223333. */
  readonly accountId?: string;
  /** Access keys accepted in SigV4 (at least one). */
  readonly credentials: readonly DevKmsCredential[];
  /** Folder for keys and policies; omitted = in memory only. */
  readonly dataDir?: string;
  /** Trusted attestation roots (PEM text or DER) for Recipient documents; none = Recipient unsupported. */
  readonly attestationRoots?: readonly (string | Uint8Array)[];
  /** Oldest acceptable Recipient document (default 5 minutes). */
  readonly recipientMaxAgeMs?: number;
  /** Policy document (JSON) for GenerateRandom, which has no key policy; default: allowed. */
  readonly generateRandomPolicy?: string;
  /** Replaces the Nitro verifier (tests of the non-attestation paths). */
  readonly verifyRecipientDocument?: VerifyRecipientDocument;
  /** Replaces buildEnvelopedData. */
  readonly encryptForRecipient?: RecipientEncryptor;
  readonly maxBodyBytes?: number;
  /** Clock (ms since the epoch) for SigV4 and attestation time checks. */
  readonly now?: () => number;
  readonly onInternalError?: (err: unknown) => void;
}

export interface DevKms {
  readonly url: string;
  close(): Promise<void>;
}

export async function startDevKms(options: DevKmsOptions): Promise<DevKms> {
  const accountId = options.accountId ?? '111122223333';
  if (!/^\d{12}$/.test(accountId)) throw new Error('accountId must be twelve digits');
  if (options.credentials.length === 0) throw new Error('the dev KMS needs at least one credential');
  const credentials = new Map(options.credentials.map((c) => [c.accessKeyId, c] as const));
  let generateRandomPolicy;
  try {
    generateRandomPolicy = options.generateRandomPolicy === undefined ? undefined : parseKeyPolicy(options.generateRandomPolicy);
  } catch (err) {
    if (err instanceof MalformedPolicyError) throw new Error(`generateRandomPolicy: ${err.message}`);
    throw err;
  }
  const now = options.now ?? Date.now;
  const verifyRecipientDocument =
    options.verifyRecipientDocument ??
    (options.attestationRoots && options.attestationRoots.length > 0
      ? nitroRecipientVerifier({
          rootCertificates: options.attestationRoots,
          now,
          ...(options.recipientMaxAgeMs !== undefined ? { maxAgeMs: options.recipientMaxAgeMs } : {}),
        })
      : undefined);
  const handler = createDevKmsHandler({
    region: options.region ?? 'us-east-1',
    accountId,
    credentials,
    store: new KeyStore(options.dataDir),
    verifyRecipientDocument,
    encryptForRecipient: options.encryptForRecipient ?? buildEnvelopedData,
    generateRandomPolicy,
    now,
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    ...(options.onInternalError !== undefined ? { onInternalError: options.onInternalError } : {}),
  });
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, handler);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    // Once: a second close (a test's cleanup after the test closed it) waits for the first.
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      })),
  };
}

function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

function loadCredentials(file: string | undefined): DevKmsCredential[] {
  if (file !== undefined) {
    const list = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!Array.isArray(list) || !list.every((c) => typeof c?.accessKeyId === 'string' && typeof c?.secretAccessKey === 'string')) {
      throw new Error(`${file}: expected a JSON list of {accessKeyId, secretAccessKey}`);
    }
    return list as DevKmsCredential[];
  }
  const accessKeyId = process.env.TEEGATE_DEV_KMS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.TEEGATE_DEV_KMS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('give --credentials FILE or set TEEGATE_DEV_KMS_ACCESS_KEY_ID and TEEGATE_DEV_KMS_SECRET_ACCESS_KEY');
  }
  return [{ accessKeyId, secretAccessKey }];
}

/** Program entry: parse flags, start, stop on SIGINT/SIGTERM. */
export async function main(argv: readonly string[]): Promise<void> {
  const rootFile = argValue(argv, '--attestation-root');
  const policyFile = argValue(argv, '--generate-random-policy');
  const port = argValue(argv, '--port');
  const host = argValue(argv, '--host');
  const region = argValue(argv, '--region');
  const accountId = argValue(argv, '--account');
  const dataDir = argValue(argv, '--data');
  const kms = await startDevKms({
    credentials: loadCredentials(argValue(argv, '--credentials')),
    port: port === undefined ? 4599 : Number(port),
    ...(host !== undefined ? { host } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(accountId !== undefined ? { accountId } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(rootFile !== undefined ? { attestationRoots: [readFileSync(rootFile, 'utf8')] } : {}),
    ...(policyFile !== undefined ? { generateRandomPolicy: readFileSync(policyFile, 'utf8') } : {}),
    onInternalError: (err) => process.stderr.write(`dev-kms internal error: ${err instanceof Error ? err.stack : String(err)}\n`),
  });
  process.stdout.write(`dev-kms listening on ${kms.url}\n`);
  const stop = () => void kms.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

// Run directly (`node bin/run-ts infra/dev-kms/main.ts ...`, where run-ts is require.main).
if (require.main === module || (process.argv[1] !== undefined && resolve(process.argv[1]) === __filename)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`dev-kms: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
