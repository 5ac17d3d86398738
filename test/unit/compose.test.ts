/**
 * docker-compose.yml, checked without a Docker engine: services, ports, health checks and volumes,
 * and the gateway's environment against the gateway's real configuration schema
 * (gateway/config.ts, gateway/log/open-log.ts) with the configuration file dev-setup writes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parsePolicyFile } from '../../attestation/policy-file';
import { DEV_KMS_ACCESS_KEY_ENV, DEV_KMS_SECRET_ENV } from '../../enclave/kms/kms-client';
import { startEnclave } from '../../enclave/main';
import { CONFIG_FIELDS, parseGatewayConfig } from '../../gateway/config';
import { DEV_ROOT_FILE, GATEWAY_CONFIG_FILE, writeDevSetup, type DevSetup } from '../../infra/docker/dev-setup';

const REPO = join(__dirname, '../..');

interface Healthcheck {
  test: string[];
  interval: string;
  timeout: string;
  retries: number;
}
interface Service {
  build?: { context: string; dockerfile: string };
  image: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const compose = parseYaml(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8'), { strict: true, uniqueKeys: true }) as Compose;
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};

/** The value following `flag` in a command list. */
function flag(command: readonly string[] | undefined, name: string): string {
  const i = (command ?? []).indexOf(name);
  const v = i >= 0 ? command![i + 1] : undefined;
  if (v === undefined) throw new Error(`${name} missing in ${JSON.stringify(command)}`);
  return v;
}

/** Volume mounts of a service: named volume → {target, readOnly}. */
function mounts(service: Service): Map<string, { target: string; readOnly: boolean }> {
  const out = new Map<string, { target: string; readOnly: boolean }>();
  for (const spec of service.volumes ?? []) {
    const [source, target, mode] = spec.split(':');
    out.set(source!, { target: target!, readOnly: mode === 'ro' });
  }
  return out;
}

/** The `--flags` a program documents in its header comment (its usage). */
/** The flags a program documents: in its header comment, and in its `--help` text (a `const HELP`) if it has one. */
function documentedFlags(file: string): Set<string> {
  const text = readFileSync(join(REPO, file), 'utf8');
  const header = /^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1] ?? '';
  const help = /^const HELP = `([\s\S]*?)`;$/m.exec(text)?.[1] ?? '';
  return new Set(`${header}\n${help}`.match(/--[a-z][a-z-]*/g) ?? []);
}

/** The port a Node fetch health check probes. */
function healthPort(service: Service): number {
  const m = /fetch\('http:\/\/127\.0\.0\.1:(\d+)\//.exec(service.healthcheck!.test.join(' '));
  if (!m) throw new Error('health check is not a loopback fetch');
  return Number(m[1]);
}

describe('docker-compose.yml', () => {
  it('has exactly the dev deployment: setup, dev KMS, enclave, gateway, PostgreSQL', () => {
    expect(Object.keys(services).sort()).toEqual(['dev-setup', 'enclave', 'gateway', 'kms', 'postgres']);
  });

  it('builds the app services from infra/docker/Dockerfile and runs files that exist', () => {
    for (const name of ['dev-setup', 'kms', 'enclave', 'gateway']) {
      const s = svc(name);
      expect(s.build).toEqual({ context: '.', dockerfile: 'infra/docker/Dockerfile' });
      expect(s.command?.slice(0, 2)).toEqual(['node', 'bin/run-ts']);
      expect(existsSync(join(REPO, s.command![2]!))).toBe(true);
    }
    expect(existsSync(join(REPO, 'infra/docker/Dockerfile'))).toBe(true);
  });

  it('gives every long-running service a health check, and orders start-up on them', () => {
    for (const name of ['kms', 'enclave', 'gateway', 'postgres']) {
      const h = svc(name).healthcheck!;
      expect(h.test[0]).toBe('CMD');
      expect(h.interval).toMatch(/^\d+s$/);
      expect(h.timeout).toMatch(/^\d+s$/);
      expect(h.retries).toBeGreaterThan(0);
    }
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep]).toBeDefined();
        if (condition === 'service_healthy') expect(svc(dep).healthcheck).toBeDefined();
        else expect({ name, dep, condition }).toEqual({ name, dep, condition: 'service_completed_successfully' });
      }
    }
    expect(svc('gateway').depends_on).toEqual({ enclave: { condition: 'service_healthy' }, postgres: { condition: 'service_healthy' } });
    expect(svc('enclave').depends_on?.kms).toEqual({ condition: 'service_healthy' });
    expect(svc('kms').depends_on?.['dev-setup']).toEqual({ condition: 'service_completed_successfully' });
  });

  it('declares every named volume it mounts; the dev root is written by setup and read-only elsewhere', () => {
    const declared = Object.keys(compose.volumes).sort();
    expect(declared).toEqual(['dev-root', 'gateway-data', 'kms-data', 'postgres-data']);
    for (const s of Object.values(services)) for (const source of mounts(s).keys()) expect(declared).toContain(source);
    const setupDir = flag(svc('dev-setup').command, '--data');
    expect(mounts(svc('dev-setup')).get('dev-root')).toEqual({ target: setupDir, readOnly: false });
    for (const name of ['kms', 'enclave', 'gateway']) expect(mounts(svc(name)).get('dev-root')).toEqual({ target: setupDir, readOnly: true });
    expect(mounts(svc('postgres')).get('postgres-data')?.target).toBe('/var/lib/postgresql/data');
  });

  it('runs the dev KMS with flags it knows, on the published and probed port, trusting the dev root', () => {
    const kms = svc('kms');
    const known = documentedFlags('infra/dev-kms/main.ts');
    for (const arg of kms.command!.filter((a) => a.startsWith('--'))) expect(known).toContain(arg);
    const port = Number(flag(kms.command, '--port'));
    expect(port).toBe(4599);
    expect(kms.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    expect(healthPort(kms)).toBe(port);
    expect(flag(kms.command, '--attestation-root')).toBe(posix.join(flag(svc('dev-setup').command, '--data'), DEV_ROOT_FILE));
    expect(mounts(kms).get('kms-data')?.target).toBe(flag(kms.command, '--data'));
    expect(Object.keys(kms.environment ?? {}).sort()).toEqual([DEV_KMS_ACCESS_KEY_ENV, DEV_KMS_SECRET_ENV].sort());
  });

  it('runs the enclave with flags it knows, its dev CA from the setup volume, on the probed port', () => {
    const enclave = svc('enclave');
    const known = documentedFlags('enclave/cli.ts');
    for (const arg of enclave.command!.filter((a) => a.startsWith('--'))) expect(known).toContain(arg);
    expect(flag(enclave.command, '--data')).toBe(flag(svc('dev-setup').command, '--data'));
    expect(flag(enclave.command, '--host')).toBe('0.0.0.0');
    const port = Number(flag(enclave.command, '--port'));
    expect(healthPort(enclave)).toBe(port);
    expect(enclave.expose).toEqual([String(port)]);
    expect(enclave.healthcheck!.test.join(' ')).toContain('/health');
    // The dev KMS credentials the enclave would use for key release are the KMS's own.
    expect(enclave.environment?.[DEV_KMS_ACCESS_KEY_ENV]).toBe(svc('kms').environment?.[DEV_KMS_ACCESS_KEY_ENV]);
    expect(enclave.environment?.[DEV_KMS_SECRET_ENV]).toBe(svc('kms').environment?.[DEV_KMS_SECRET_ENV]);
  });

  describe('gateway, against gateway/config.ts and the file dev-setup writes', () => {
    let dir: string;
    let setup: DevSetup;
    const gateway = svc('gateway');
    const env = gateway.environment ?? {};
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'compose-'));
      setup = await writeDevSetup(dir);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('sets only TEEGATE_* variables the gateway reads', () => {
      const read = new Set<string>();
      const recorder = new Proxy({ ...env }, { get: (t, k) => (typeof k === 'string' && read.add(k), t[k as string]) });
      parseGatewayConfig({ env: recorder, file: setup.gatewayConfig, baseDir: dir });
      for (const name of Object.keys(env)) expect({ name, read: read.has(name) }).toEqual({ name, read: true });
      for (const name of Object.keys(env)) expect(name).toMatch(/^TEEGATE_[A-Z_]+$/);
      expect(CONFIG_FIELDS.map((f) => f.env)).toEqual(expect.arrayContaining(['TEEGATE_HOST', 'TEEGATE_PORT', 'TEEGATE_ENCLAVES']));
    });

    it('is a valid configuration: listens where it is published and probed, reaches the enclave service', () => {
      const config = parseGatewayConfig({ env, file: setup.gatewayConfig, baseDir: dir });
      expect(config.host).toBe('0.0.0.0');
      expect(gateway.ports).toEqual([`${config.port}:${config.port}`]);
      expect(healthPort(gateway)).toBe(config.port);
      expect(gateway.healthcheck!.test.join(' ')).toContain('/v2/health/ready');
      const enclaveUrl = new URL(config.enclaves[0]!);
      expect(config.enclaves).toHaveLength(1);
      expect(services[enclaveUrl.hostname]).toBe(svc('enclave'));
      expect(Number(enclaveUrl.port)).toBe(Number(flag(svc('enclave').command, '--port')));
      expect(config.attestation.rootCertificates).toEqual([setup.rootPem]);
      expect(config.attestation.policy.pcrs).toEqual(setup.policy.pcrs);
      expect(config.auth.disabled).toBe(true);
    });

    it('reads its configuration file from the setup volume', () => {
      const file = flag(gateway.command, '--config');
      expect(file).toBe(posix.join(flag(svc('dev-setup').command, '--data'), GATEWAY_CONFIG_FILE));
      expect(documentedFlags('gateway/main.ts')).toContain('--config');
      expect(JSON.parse(readFileSync(join(dir, GATEWAY_CONFIG_FILE), 'utf8'))).toEqual(setup.gatewayConfig);
    });

    it('keeps the transparency log in the compose PostgreSQL and its data directory on a volume', () => {
      const { log } = parseGatewayConfig({ env, file: setup.gatewayConfig, baseDir: dir });
      expect(log.store).toBe('postgres');
      const url = new URL(log.postgresUrl!);
      const pg = svc('postgres').environment ?? {};
      expect(services[url.hostname]).toBe(svc('postgres'));
      expect({ user: url.username, password: url.password, db: url.pathname.slice(1), port: url.port }).toEqual({
        user: pg.POSTGRES_USER,
        password: pg.POSTGRES_PASSWORD,
        db: pg.POSTGRES_DB,
        port: '5432',
      });
      expect(mounts(gateway).get('gateway-data')?.target).toBe(log.dataDir);
      expect(svc('postgres').healthcheck!.test).toEqual(['CMD', 'pg_isready', '-U', pg.POSTGRES_USER, '-d', pg.POSTGRES_DB]);
    });

    it('dev-setup writes a measurement policy file in the one format, pinning the dev root', () => {
      const file = JSON.parse(readFileSync(join(dir, 'measurement-policy.json'), 'utf8')) as unknown;
      const loaded = parsePolicyFile(file);
      expect(loaded.rootCertificates).toEqual([setup.rootPem]);
      expect(Object.keys(loaded.policy.pcrs ?? {}).sort()).toEqual(['0', '1', '2']);
      expect(loaded.policy.allowDebug).toBe(false);
    });

    it('pins the PCRs the compose enclave really reports (same sources, models and Node)', async () => {
      const enclave = await startEnclave({ port: 0, devCaFile: join(dir, 'dev-ca.json') });
      try {
        expect({ 0: enclave.pcrs[0], 1: enclave.pcrs[1], 2: enclave.pcrs[2] }).toEqual(setup.policy.pcrs);
        expect(enclave.devRootPem).toBe(setup.rootPem);
      } finally {
        await enclave.close();
      }
    });

    it('dev-setup keeps the dev root it created on a second run', async () => {
      const again = await writeDevSetup(dir);
      expect(again.rootPem).toBe(setup.rootPem);
      expect(again.policy.pcrs).toEqual(setup.policy.pcrs);
    });
  });
});
