/**
 * The enclave as a process: `node bin/run-ts enclave/cli.ts [options]` (HELP below). Sealed models (config `sealed`)
 * are released through KMS (credentials from the AWS environment, or TEEGATE_DEV_KMS_* for the
 * dev KMS). Prints one JSON line `{"event":"ready","url":...}` when serving and
 * stops cleanly on SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isTeegateError } from '../attestation/errors';
import { parseModelConfigs, resolveModelPaths, type ModelConfig } from './models/model-config';
import { createKmsClient, kmsClientConfigFromEnv } from './kms/kms-client';
import { prepareSealedModels } from './kms/key-release';
import { startEnclave } from './main';
import { HardwareNsm } from './nsm/hardware-nsm';

const HELP = `usage: node bin/run-ts enclave/cli.ts [options]

Boots the enclave service: its receipt and seal keys, the boot attestation, the models (sealed
ones released through KMS), then serves the enclave API (docs/enclave-api.md). Prints one JSON
line {"event":"ready","url",...} when serving; SIGTERM or SIGINT stops it.

options:
  --port N            port (default 0: any free one)
  --host H            address (default 127.0.0.1)
  --data DIR          where the dev NSM's root CA is kept, dev-ca.json (default ./data)
  --models FILE       the models to serve, a JSON array (docs/enclave-api.md, "The models
                      file"; default: the shipped PP-OCRv4 model, plaintext)
  --kms-endpoint URL  KMS for sealed models (default: AWS KMS of the region)
  --kms-region R      its region (default: AWS_REGION or AWS_DEFAULT_REGION; us-east-1
                      with --kms-endpoint)
  --nsm dev|hardware  the simulated NSM (default) or /dev/nsm inside a Nitro Enclave
  --nsm-helper PATH   the NSM helper binary (--nsm hardware)
  --debug             the dev NSM attests as a debug-mode enclave (PCRs all zero)

KMS credentials: the AWS environment, or TEEGATE_DEV_KMS_ACCESS_KEY_ID and
TEEGATE_DEV_KMS_SECRET_ACCESS_KEY for the dev KMS. Exit codes: 2 for a usage error or a models
file that cannot be used, 1 when the enclave cannot start.
`;

/** A mistake in how the enclave was started: said with the help, exit 2. */
class UsageError extends Error {}

function portOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new UsageError(`--port must be a whole number from 0 to 65535, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** `--models FILE`, read and checked, paths made absolute against the file's folder. */
function modelsOption(path: string | undefined): ModelConfig[] | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the models file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`the models file ${path} is not JSON`);
  }
  try {
    return resolveModelPaths(parseModelConfigs(json), dirname(resolve(path)));
  } catch (err) {
    throw new UsageError(`the models file ${path}: ${isTeegateError(err) ? `${err.code}: ` : ''}${(err as Error).message}`);
  }
}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        data: { type: 'string' },
        models: { type: 'string' },
        debug: { type: 'boolean' },
        'kms-endpoint': { type: 'string' },
        'kms-region': { type: 'string' },
        nsm: { type: 'string' },
        'nsm-helper': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function run(): Promise<void> {
  const values = parseOptions();
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = portOption(values.port);
  const nsmKind = values.nsm ?? 'dev';
  if (nsmKind !== 'dev' && nsmKind !== 'hardware') throw new UsageError(`--nsm must be "dev" or "hardware", not ${JSON.stringify(nsmKind)}`);
  const log = (e: Record<string, unknown>) => {
    if (e.level !== 'debug') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'enclave', ...e })}\n`);
  };
  const models = modelsOption(values.models);
  const sealed = models?.some((m) => m.sealed !== undefined) ?? false;
  const kms = sealed
    ? createKmsClient(kmsClientConfigFromEnv({ ...(values['kms-endpoint'] ? { endpoint: values['kms-endpoint'] } : {}), ...(values['kms-region'] ? { region: values['kms-region'] } : {}) }))
    : undefined;
  const enclave = await startEnclave({
    ...(nsmKind === 'hardware' ? { nsm: new HardwareNsm(values['nsm-helper'] ? { helperPath: values['nsm-helper'] } : {}) } : {}),
    ...(kms && models ? { prepareModels: prepareSealedModels(kms, models, { log }) } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values.host ? { host: values.host } : {}),
    ...(models ? { models } : {}),
    devCaFile: join(values.data ?? 'data', 'dev-ca.json'),
    debug: values.debug ?? false,
    log,
  });
  process.stdout.write(`${JSON.stringify({ event: 'ready', url: enclave.url, boot_id: enclave.manifest.boot_id, status: enclave.service.health().status })}\n`);
  const stop = () => {
    void enclave.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Started by `teegate up` with an IPC channel: stop with it, even when it was killed outright.
  if (process.send !== undefined) {
    process.channel?.unref();
    if (process.connected) process.once('disconnect', stop);
    else stop();
  }
}

run().catch((err) => {
  if (err instanceof UsageError) {
    process.stderr.write(`enclave: ${err.message}\n\n${HELP}`);
    process.exit(2);
  }
  process.stderr.write(`enclave: ${isTeegateError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
