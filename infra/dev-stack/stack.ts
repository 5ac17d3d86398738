/**
 * The dev stack behind `teegate up`: the dev KMS (in process), N enclaves with the dev NSM and the
 * shipped model sealed under KMS (child processes), and the gateway (child process) on embedded
 * defaults. Everything it makes is kept under the data folder: dev CA, KMS keys, credentials, the
 * sealed model, the measurement policy, the gateway config and API key, and the log.
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createKmsClient } from '../../enclave/kms/kms-client';
import { loadOrCreateDevCa } from '../../enclave/main';
import { measureDevEnclave, pcrHex, REPO_ROOT } from '../../enclave/measurement';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { sha256, toHex, utf8 } from '../../attestation/bytes';
import { makePolicyFile } from '../../attestation/policy-file';
import { startDevKms } from '../dev-kms/main';
import { startChildService, type ChildService } from './child-service';
import { readOrCreate, writeFileAtomic } from '../../enclave/write-file-atomic';
import { loadOrCreateDevCredentials } from './dev-credentials';
import { DEV_ACCOUNT, ensureModelKey, ensureSealedModels, pinKeyPolicy } from './model-key';

export interface DevStackOptions {
  readonly port?: number;
  readonly host?: string;
  readonly dataDir?: string;
  readonly enclaves?: number;
  readonly log?: (line: string) => void;
}

export interface DevStack {
  readonly url: string;
  readonly apiKey: string;
  readonly dataDir: string;
  readonly enclaves: readonly ChildService[];
  readonly gateway: ChildService;
  readonly kmsUrl: string;
  stop(): Promise<void>;
}

const RUN_TS = join(REPO_ROOT, 'bin', 'run-ts');

/** The dev API key: `tg_` and 32 base64url characters (24 random bytes), one line. */
const API_KEY = /^tg_[A-Za-z0-9_-]{32}$/;

function loadOrCreateApiKey(file: string): Promise<string> {
  return readOrCreate(file, {
    parse: (text) => {
      const key = text.trim();
      if (!API_KEY.test(key)) throw new Error('it does not hold an API key (tg_ and 32 base64url characters)');
      return key;
    },
    create: () => `tg_${randomBytes(24).toString('base64url')}`,
    serialize: (key) => `${key}\n`,
  });
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const dataDir = resolve(options.dataDir ?? 'data');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const say = (msg: string) => log(JSON.stringify({ time: new Date().toISOString(), component: 'up', msg }));
  const started: { name: string; stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) {
      const t = Date.now();
      await s.stop().catch(() => undefined);
      say(`stopped ${s.name} in ${Date.now() - t} ms`);
    }
  };
  try {
    const ca = await loadOrCreateDevCa(join(dataDir, 'dev-ca.json'));
    await writeFileAtomic(join(dataDir, 'dev-root.pem'), ca.rootPem, 0o644);
    const credentials = await loadOrCreateDevCredentials(join(dataDir, 'dev-kms-credentials.json'));

    const kms = await startDevKms({
      credentials: [credentials.operator, credentials.enclave],
      accountId: DEV_ACCOUNT,
      dataDir: join(dataDir, 'kms'),
      attestationRoots: [ca.rootPem],
    });
    started.push({ name: 'dev KMS', stop: () => kms.close() });
    say(`dev KMS at ${kms.url}`);

    const operator = createKmsClient({ endpoint: kms.url, region: 'us-east-1', credentials: credentials.operator, maxAttempts: 1 });
    const keyId = await ensureModelKey(operator, dataDir);
    const models = await ensureSealedModels(operator, keyId, dataDir, defaultModelConfigs());
    const modelsFile = join(dataDir, 'models.json');
    await writeFileAtomic(modelsFile, JSON.stringify(models, null, 2), 0o644);

    // The image measurement the enclaves will report, computed the same way they compute it.
    const pcrs = pcrHex(await measureDevEnclave(models));
    await pinKeyPolicy(operator, keyId, credentials, pcrs[0]);
    operator.destroy();
    say(`model key ${keyId} released only to PCR0 ${pcrs[0].slice(0, 16)}…`);
    const policyFile = makePolicyFile(pcrs, { maxAgeSeconds: 600, rootCertificates: [ca.rootPem], image: { name: 'teegate-enclave (dev)', source: REPO_ROOT } });
    await writeFileAtomic(join(dataDir, 'measurement-policy.json'), JSON.stringify(policyFile, null, 2), 0o644);

    const enclaves: ChildService[] = [];
    for (let i = 0; i < Math.max(1, options.enclaves ?? 1); i++) {
      const enclave = await startChildService(
        `enclave-${i}`,
        [RUN_TS, join(REPO_ROOT, 'enclave', 'cli.ts'), '--port', '0', '--data', dataDir, '--models', modelsFile, '--kms-endpoint', kms.url, '--kms-region', 'us-east-1'],
        { env: { TEEGATE_DEV_KMS_ACCESS_KEY_ID: credentials.enclave.accessKeyId, TEEGATE_DEV_KMS_SECRET_ACCESS_KEY: credentials.enclave.secretAccessKey }, onLog: log, readyTimeoutMs: 120_000 },
      );
      started.push(enclave);
      enclaves.push(enclave);
      say(`enclave ${i} at ${enclave.url}`);
    }

    const apiKey = await loadOrCreateApiKey(join(dataDir, 'api-key'));
    const gatewayConfig = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8080,
      enclaves: enclaves.map((e) => e.url),
      attestation: { policyFile: 'measurement-policy.json' },
      // The configuration stores a key as the hex SHA-256 of its text (docs/gateway-config.md).
      auth: { disabled: false, keys: [{ id: 'dev', sha256: toHex(await sha256(utf8(apiKey))), scopes: ['infer', 'admin'] }] },
      log: { store: 'file', dataDir: '.' },
    };
    const gatewayFile = join(dataDir, 'gateway.json');
    await writeFileAtomic(gatewayFile, JSON.stringify(gatewayConfig, null, 2));
    const gateway = await startChildService('gateway', [RUN_TS, join(REPO_ROOT, 'gateway', 'main.ts'), '--config', gatewayFile], { onLog: log, readyTimeoutMs: 60_000 });
    started.push(gateway);
    // The log's verifier key, saved for the CLI and the explorer (dev: trusted on first use; in
    // production an auditor pins the key it got out of band).
    const logKey = await (await fetch(`${gateway.url}/v1/log/key`)).text();
    await writeFileAtomic(join(dataDir, 'log-key'), `${logKey.trim()}\n`, 0o644);
    return { url: gateway.url, apiKey, dataDir, enclaves, gateway, kmsUrl: kms.url, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
