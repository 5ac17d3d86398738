/**
 * One-shot setup of the docker-compose dev deployment (the `dev-setup` service): creates the dev
 * attestation root (or keeps the one already there) and writes, into DIR:
 *   dev-ca.json               the dev CA (private keys; read by the dev enclave only)
 *   dev-root.pem              the dev root certificate (trusted by the dev KMS)
 *   measurement-policy.json   the dev enclave's PCR0-2 and the dev root, in the one policy format
 *                             (docs/policy.md): `teegate ... --policy` from the host
 *   gateway.json              the gateway's configuration file (gateway/config.ts) pinning the same
 *
 *   node bin/run-ts infra/docker/dev-setup.ts --data DIR
 *
 * The dev enclave measures its sources, the lock file, the models and the Node version
 * (enclave/measurement.ts); this runs in the same image, so it computes the same PCRs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { makePolicyFile, type PolicyFile } from '../../attestation/policy-file';
import { loadOrCreateDevCa } from '../../enclave/main';
import { measureDevEnclave, pcrHex } from '../../enclave/measurement';
import { defaultModelConfigs } from '../../enclave/models/model-config';

export const DEV_ROOT_FILE = 'dev-root.pem';
export const POLICY_FILE = 'measurement-policy.json';
export const GATEWAY_CONFIG_FILE = 'gateway.json';
const MAX_AGE_SECONDS = 300;

export interface DevSetup {
  readonly rootPem: string;
  readonly policy: PolicyFile;
  /** The gateway configuration file's content (relative paths resolve against `dir`). */
  readonly gatewayConfig: Record<string, unknown>;
}

export async function writeDevSetup(dir: string): Promise<DevSetup> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateDevCa(join(dir, 'dev-ca.json'));
  const pcrs = pcrHex(await measureDevEnclave(defaultModelConfigs()));
  const policy = makePolicyFile(pcrs, {
    allowDebug: false,
    maxAgeSeconds: MAX_AGE_SECONDS,
    rootCertificates: [ca.rootPem],
    image: { name: 'teegate-dev-enclave', builtAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), source: 'docker-compose dev' },
  });
  // The gateway reads the same policy file as clients do (roots, PCRs, debug, maximum age).
  const gatewayConfig = { attestation: { policyFile: POLICY_FILE } };
  await writeFile(join(dir, DEV_ROOT_FILE), ca.rootPem, { mode: 0o644 });
  await writeFile(join(dir, POLICY_FILE), `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o644 });
  await writeFile(join(dir, GATEWAY_CONFIG_FILE), `${JSON.stringify(gatewayConfig, null, 2)}\n`, { mode: 0o644 });
  return { rootPem: ca.rootPem, policy, gatewayConfig };
}

async function run(): Promise<void> {
  const { values } = parseArgs({ options: { data: { type: 'string' } }, strict: true });
  const dir = values.data ?? 'data/dev';
  const setup = await writeDevSetup(dir);
  process.stdout.write(`dev setup in ${dir}: PCR0 ${setup.policy.pcrs['0']}\n`);
}

if (require.main === module || (process.argv[1] !== undefined && resolve(process.argv[1]) === __filename)) {
  run().catch((err: unknown) => {
    process.stderr.write(`dev-setup: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
