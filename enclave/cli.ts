/**
 * The enclave as a process: `node bin/run-ts enclave/cli.ts [--port N] [--host H] [--data DIR]
 * [--models FILE] [--kms-endpoint URL] [--kms-region R] [--nsm dev|hardware] [--nsm-helper PATH] [--debug]`. Sealed models (config `sealed`)
 * are released through KMS (credentials from the AWS environment, or TEEGATE_DEV_KMS_* for the
 * dev KMS). Prints one JSON line `{"event":"ready","url":...}` when serving and
 * stops cleanly on SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfigs, resolveModelPaths } from './models/model-config';
import { createKmsClient, kmsClientConfigFromEnv } from './kms/kms-client';
import { prepareSealedModels } from './kms/key-release';
import { startEnclave } from './main';
import { HardwareNsm } from './nsm/hardware-nsm';

async function run(): Promise<void> {
  const { values } = parseArgs({
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
    },
    strict: true,
  });
  const log = (e: Record<string, unknown>) => {
    if (e.level !== 'debug') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'enclave', ...e })}\n`);
  };
  const models = values.models
    ? resolveModelPaths(parseModelConfigs(JSON.parse(readFileSync(values.models, 'utf8'))), dirname(resolve(values.models)))
    : undefined;
  const sealed = models?.some((m) => m.sealed !== undefined) ?? false;
  const kms = sealed
    ? createKmsClient(kmsClientConfigFromEnv({ ...(values['kms-endpoint'] ? { endpoint: values['kms-endpoint'] } : {}), ...(values['kms-region'] ? { region: values['kms-region'] } : {}) }))
    : undefined;
  const nsmKind = values.nsm ?? 'dev';
  if (nsmKind !== 'dev' && nsmKind !== 'hardware') throw new Error(`--nsm must be "dev" or "hardware", not ${JSON.stringify(nsmKind)}`);
  const enclave = await startEnclave({
    ...(nsmKind === 'hardware' ? { nsm: new HardwareNsm(values['nsm-helper'] ? { helperPath: values['nsm-helper'] } : {}) } : {}),
    ...(kms && models ? { prepareModels: prepareSealedModels(kms, models, { log }) } : {}),
    ...(values.port ? { port: Number(values.port) } : {}),
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
  process.stderr.write(`enclave: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
