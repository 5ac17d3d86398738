import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { loadGatewayConfig, parseGatewayConfig } from '../../gateway/config';

const PCR0 = 'ab'.repeat(48);
const KEY = { id: 'client-a', sha256: 'cd'.repeat(32), scopes: ['infer'] };
const minimal = { enclaves: ['http://127.0.0.1:9001'], attestation: { policy: { pcrs: { 0: PCR0 } } }, auth: { keys: [KEY] } };

function rejects(sources: Parameters<typeof parseGatewayConfig>[0], message: RegExp): void {
  let caught: unknown;
  try {
    parseGatewayConfig(sources);
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: 'CONFIG_INVALID' });
  expect((caught as Error).message).toMatch(message);
}

describe('gateway configuration schema', () => {
  it('fills defaults around a minimal file', () => {
    const config = parseGatewayConfig({ file: minimal });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      enclaves: ['http://127.0.0.1:9001'],
      attestation: { rootCertificates: [], policy: { pcrs: { 0: PCR0 } } },
      auth: { disabled: false, keys: [KEY] },
      limits: { maxAttempts: 3, rateLimit: { requestsPerSecond: 100, burst: 200 } },
      pool: { selection: 'least-in-flight' },
      cors: { origins: [] },
      metrics: { public: false },
      logLevel: 'info',
    });
  });

  it('lets TEEGATE_* variables override the file', () => {
    const config = parseGatewayConfig({
      file: minimal,
      env: {
        TEEGATE_PORT: '0',
        TEEGATE_ENCLAVES: 'http://127.0.0.1:1, http://127.0.0.1:2',
        TEEGATE_RATE_LIMIT: '{"requestsPerSecond": 5, "burst": 1}',
        TEEGATE_METRICS_PUBLIC: 'true',
        TEEGATE_CORS_ORIGINS: 'https://app.example.com',
        TEEGATE_SELECTION: 'round-robin',
      },
    });
    expect(config.port).toBe(0);
    expect(config.enclaves).toEqual(['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    expect(config.limits.rateLimit).toEqual({ requestsPerSecond: 5, burst: 1 });
    expect(config.metrics.public).toBe(true);
    expect(config.cors.origins).toEqual(['https://app.example.com']);
    expect(config.pool.selection).toBe('round-robin');
  });

  it('names the field (and the variable) of every invalid value', () => {
    rejects({ file: { ...minimal, port: 70000 } }, /^port must be in 0\.\.65535/);
    rejects({ file: minimal, env: { TEEGATE_PORT: 'eighty' } }, /TEEGATE_PORT \(port\) must be an integer/);
    rejects({ file: { ...minimal, limtis: {} } }, /unknown setting "limtis"/);
    rejects({ file: { ...minimal, limits: { bodyBytes: 1 } } }, /limits\.bodyBytes must be in/);
    rejects({ file: { ...minimal, enclaves: ['https://x:1'] } }, /enclaves\[0\] .* must be http:\/\/host:port/);
    rejects({ file: { ...minimal, enclaves: ['http://a:1', 'http://a:1/'] } }, /lists an enclave twice/);
    rejects({ file: { ...minimal, attestation: {} } }, /attestation\.policy is required/);
    rejects({ file: { ...minimal, attestation: { policy: { pcrs: {} } } } }, /must pin at least one PCR/);
    rejects({ file: { ...minimal, attestation: { policy: { pcrs: { 0: 'zz' } } } } }, /attestation\.policy: PCR0 must be/);
    rejects({ file: { ...minimal, auth: { keys: [] } } }, /auth\.keys is empty/);
    rejects({ file: { ...minimal, auth: { keys: [{ ...KEY, key: 'secret' }] } } }, /auth\.keys\[0\] has unknown members key/);
    rejects({ file: { ...minimal, auth: { keys: [{ ...KEY, scopes: ['root'] }] } } }, /auth\.keys\[0\]\.scopes/);
    rejects({ file: { ...minimal, auth: { keys: [KEY, { ...KEY, id: 'b' }] } } }, /auth\.keys\[1\]\.sha256 repeats another key/);
    rejects({ file: minimal, env: { TEEGATE_API_KEYS: '[{' } }, /TEEGATE_API_KEYS \(auth\.keys\) must be JSON/);
    rejects({ file: { ...minimal, limits: { rateLimit: { requestsPerSecond: 0, burst: 1 } } } }, /limits\.rateLimit\.requestsPerSecond/);
    rejects({ file: { ...minimal, cors: { origins: ['example.com'] } } }, /cors\.origins\[0\]/);
    rejects({ file: { ...minimal, pool: { selection: 'random' } } }, /pool\.selection must be one of/);
    rejects({ file: { ...minimal, attestation: { ...minimal.attestation, rootCertificates: ['missing.pem'] } }, baseDir: tmpdir() }, /cannot read missing\.pem: ENOENT/);
    rejects({ file: [] }, /must be a JSON object/);
  });

  it('allows no keys only when auth is disabled explicitly', () => {
    expect(parseGatewayConfig({ file: { ...minimal, auth: { disabled: true } } }).auth).toEqual({ disabled: true, keys: [] });
  });

  it('loads a file, resolving root certificate paths against its folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teegate-config-'));
    const ca = await createDevCa();
    writeFileSync(join(dir, 'root.pem'), ca.rootPem);
    writeFileSync(join(dir, 'gateway.json'), JSON.stringify({ ...minimal, attestation: { ...minimal.attestation, rootCertificates: ['root.pem'] } }));
    const config = loadGatewayConfig({ file: join(dir, 'gateway.json'), env: { TEEGATE_LOG_LEVEL: 'warn' } });
    expect(config.attestation.rootCertificates).toEqual([ca.rootPem]);
    expect(config.logLevel).toBe('warn');
    expect(() => loadGatewayConfig({ env: { TEEGATE_CONFIG: join(dir, 'absent.json') } })).toThrow(/cannot read the configuration file/);
    writeFileSync(join(dir, 'bad.json'), '{');
    expect(() => loadGatewayConfig({ file: join(dir, 'bad.json'), env: {} })).toThrow(/is not JSON/);
  });
});
