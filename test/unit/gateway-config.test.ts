import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { makePolicyFile } from '../../attestation/policy-file';
import { loadGatewayConfig, parseGatewayConfig } from '../../gateway/config';

const PCR0 = 'ab'.repeat(48);
const KEY = { id: 'client-a', sha256: 'cd'.repeat(32), scopes: ['infer'] };
const minimal = { enclaves: ['http://127.0.0.1:9001'], attestation: { policy: { pcrs: { 0: PCR0 } } }, auth: { keys: [KEY] } };

/** The CONFIG_INVALID message parseGatewayConfig refuses `sources` with (fails on success or another error). */
function refusal(sources: Parameters<typeof parseGatewayConfig>[0]): string {
  let caught: unknown;
  try {
    parseGatewayConfig(sources);
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: 'CONFIG_INVALID' });
  return (caught as Error).message;
}

function rejects(sources: Parameters<typeof parseGatewayConfig>[0], message: RegExp): void {
  expect(refusal(sources)).toMatch(message);
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

  it('the checkpoint cadence: defaults, variables, and the range named', () => {
    expect(parseGatewayConfig({ file: minimal }).log).toMatchObject({ publishIntervalMs: 1000, publishEveryEntries: 10_000 });
    const env = { TEEGATE_LOG_PUBLISH_INTERVAL_MS: '250', TEEGATE_LOG_PUBLISH_EVERY_ENTRIES: '64' };
    expect(parseGatewayConfig({ file: minimal, env }).log).toMatchObject({ publishIntervalMs: 250, publishEveryEntries: 64 });
    rejects({ file: { ...minimal, log: { publishIntervalMs: 5 } } }, /^log\.publishIntervalMs must be in 10\.\.3600000, got 5/);
    rejects({ file: minimal, env: { TEEGATE_LOG_PUBLISH_EVERY_ENTRIES: '0' } }, /^TEEGATE_LOG_PUBLISH_EVERY_ENTRIES \(log\.publishEveryEntries\) must be in 1\.\.1000000, got 0/);
    rejects({ file: { ...minimal, log: { publishEveryEntries: 1.5 } } }, /^log\.publishEveryEntries must be an integer/);
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

it('a PostgreSQL schema that is not a lower-case SQL identifier is refused at start, naming the variable', () => {
  expect(refusal({ file: minimal, env: { TEEGATE_LOG_SCHEMA: 'Teegate; DROP TABLE x' } })).toBe(
    'TEEGATE_LOG_SCHEMA (log.postgresSchema) must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters), got "Teegate; DROP TABLE x"',
  );
  expect(refusal({ file: { ...minimal, log: { postgresSchema: 'x'.repeat(64) } } })).toMatch(/^log\.postgresSchema must be a lower-case SQL identifier/);
  expect(parseGatewayConfig({ file: { ...minimal, log: { postgresSchema: 'tenant_2' } } }).log.postgresSchema).toBe('tenant_2');
});

it('trustProxies takes IP addresses and CIDR blocks, and refuses anything else naming the entry', () => {
  expect(parseGatewayConfig({ file: { ...minimal, trustProxies: ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32'] } }).trustProxies).toEqual(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);
  expect(parseGatewayConfig({ file: minimal }).trustProxies).toEqual([]);
  expect(refusal({ file: minimal, env: { TEEGATE_TRUST_PROXIES: '10.0.0.1,loadbalancer.internal' } })).toBe(
    'TEEGATE_TRUST_PROXIES (trustProxies)[1] "loadbalancer.internal" must be an IP address or a CIDR block such as 10.0.0.0/8',
  );
  for (const odd of ['10.0.0.0/33', '10/8', '010.0.0.1', '10.0.0.1/08', '::1/129', '10.0.0.0/8/8', '']) {
    expect(refusal({ file: { ...minimal, trustProxies: [odd] } })).toMatch(/^trustProxies(\[0\] ".*" must be an IP address or a CIDR block| must be a list of non-empty strings)/);
  }
});

it('a CIDR prefix may be the whole address: /32 for IPv4, /128 for IPv6', () => {
  expect(parseGatewayConfig({ file: { ...minimal, trustProxies: ['10.0.0.1/32', '::1/128', '0.0.0.0/0'] } }).trustProxies).toEqual(['10.0.0.1/32', '::1/128', '0.0.0.0/0']);
});

it('an integer variable is plain decimal digits: an exponent, a hex or a fraction is refused, naming the variable', () => {
  for (const text of ['1e3', '0x50', '80.0', '8 0', '+80']) {
    expect(refusal({ file: minimal, env: { TEEGATE_PORT: text } })).toBe(`TEEGATE_PORT (port) must be an integer, got ${JSON.stringify(text)}`);
  }
  expect(parseGatewayConfig({ file: minimal, env: { TEEGATE_PORT: ' 8081 ' } }).port).toBe(8081);
});

it('integer ranges include both ends', () => {
  const config = parseGatewayConfig({ file: { ...minimal, port: 65535, limits: { maxAttempts: 16, bodyBytes: 1024 } } });
  expect(config.port).toBe(65535);
  expect(config.limits.maxAttempts).toBe(16);
  expect(config.limits.bodyBytes).toBe(1024);
  expect(parseGatewayConfig({ file: { ...minimal, limits: { maxAttempts: 1, bodyBytes: 256 * 1024 * 1024 } } }).limits).toMatchObject({ maxAttempts: 1, bodyBytes: 256 * 1024 * 1024 });
  expect(refusal({ file: { ...minimal, limits: { maxAttempts: 17 } } })).toBe('limits.maxAttempts must be in 1..16, got 17');
  expect(refusal({ file: { ...minimal, limits: { maxAttempts: 0 } } })).toBe('limits.maxAttempts must be in 1..16, got 0');
  expect(refusal({ file: { ...minimal, limits: { bodyBytes: 256 * 1024 * 1024 + 1 } } })).toBe(`limits.bodyBytes must be in 1024..${256 * 1024 * 1024}, got ${256 * 1024 * 1024 + 1}`);
});

it('a list in the file must hold only non-empty strings: a root certificate entry that is a number is refused, not a crash', () => {
  expect(refusal({ file: { ...minimal, attestation: { ...minimal.attestation, rootCertificates: [42] } } })).toBe('attestation.rootCertificates must be a list of non-empty strings');
  expect(refusal({ file: { ...minimal, enclaves: ['http://127.0.0.1:9001', ''] } })).toBe('enclaves must be a list of non-empty strings');
});

it('a rate of more than 1e6 requests per second is refused; 1e6 is taken', () => {
  expect(refusal({ file: { ...minimal, limits: { rateLimit: { requestsPerSecond: 1e6 + 1, burst: 1 } } } })).toBe('limits.rateLimit.requestsPerSecond must be a number in (0, 1e6]');
  expect(parseGatewayConfig({ file: { ...minimal, limits: { rateLimit: { requestsPerSecond: 1e6, burst: 1e6 } } } }).limits.rateLimit).toEqual({ requestsPerSecond: 1e6, burst: 1e6 });
});

it('an enclave URL is exactly http://host:port: a path, a query, a fragment or credentials are refused, naming the entry', () => {
  for (const url of ['http://127.0.0.1:9001/v2', 'http://127.0.0.1:9001/?a=1', 'http://127.0.0.1:9001/#x', 'http://user:pw@127.0.0.1:9001']) {
    expect(refusal({ file: { ...minimal, enclaves: [url] } })).toBe(`enclaves[0] ${JSON.stringify(url)} must be http://host:port (the enclave API is plain HTTP over loopback or vsock)`);
  }
  expect(parseGatewayConfig({ file: { ...minimal, enclaves: ['http://127.0.0.1:9001/'] } }).enclaves).toEqual(['http://127.0.0.1:9001']);
});

it('a CORS origin is a scheme and a host only: a path or trailing text is refused', () => {
  for (const origin of ['https://app.example.com/', 'https://app.example.com/path', 'https://app.example.com x']) {
    expect(refusal({ file: { ...minimal, cors: { origins: [origin] } } })).toBe(`cors.origins[0] ${JSON.stringify(origin)} must be "*" or an origin like https://example.com`);
  }
});

(process.platform === 'linux' ? it : it.skip)('files the configuration names must be regular files of at most 1 MiB: a FIFO, a folder or a device is refused at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-config-files-'));
  const fifo = join(dir, 'policy.fifo');
  execFileSync('mkfifo', [fifo]); // reading it would block the start for good
  const big = join(dir, 'big.json');
  writeFileSync(big, ' '.repeat((1 << 20) + 1));
  const cases: [string, string][] = [
    [fifo, 'not a regular file'],
    [dir, 'not a regular file'],
    ['/dev/zero', 'not a regular file'],
    [big, `${(1 << 20) + 1} bytes, more than ${1 << 20}`],
  ];
  for (const [path, why] of cases) {
    expect(refusal({ file: { ...minimal, attestation: { policyFile: path } } })).toBe(`attestation.policyFile: cannot read ${path} as JSON: ${why}`);
    expect(refusal({ file: { ...minimal, attestation: { ...minimal.attestation, rootCertificates: [path] } } })).toBe(`attestation.rootCertificates[0]: cannot read ${path}: ${why}`);
  }
  let caught: unknown;
  try {
    loadGatewayConfig({ file: fifo, env: {} });
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: 'CONFIG_INVALID', message: `cannot read the configuration file ${fifo}: not a regular file` });
});

// Rejection paths, each CONFIG_INVALID at start with a message naming the setting (and the
// TEEGATE_* variable when the value came from the environment).

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'teegate-config-rej-'));
}

describe('gateway configuration: values of the wrong type', () => {
  it('a boolean variable that is not true/false/1/0 names the variable', () => {
    expect(refusal({ file: minimal, env: { TEEGATE_AUTH_DISABLED: 'yes' } })).toBe('TEEGATE_AUTH_DISABLED (auth.disabled) must be true or false, got "yes"');
    expect(refusal({ file: minimal, env: { TEEGATE_METRICS_PUBLIC: '' } })).toBe('TEEGATE_METRICS_PUBLIC (metrics.public) must be true or false, got ""');
  });

  it('a boolean in the file that is a string is refused, not read as truthy', () => {
    expect(refusal({ file: { ...minimal, auth: { ...minimal.auth, disabled: 'true' } } })).toBe('auth.disabled must be true or false');
    expect(refusal({ file: { ...minimal, metrics: { public: 1 } } })).toBe('metrics.public must be true or false');
  });

  it('a string setting that is empty or not a string names the setting', () => {
    expect(refusal({ file: { ...minimal, host: '' } })).toBe('host must be a non-empty string');
    expect(refusal({ file: { ...minimal, log: { origin: 42 } } })).toBe('log.origin must be a non-empty string');
    expect(refusal({ file: minimal, env: { TEEGATE_HOST: '' } })).toBe('TEEGATE_HOST (host) must be a non-empty string');
  });
});

describe('gateway configuration: rate limits', () => {
  it('a rate limit that is not an object {requestsPerSecond, burst}', () => {
    expect(refusal({ file: { ...minimal, limits: { rateLimit: 5 } } })).toBe('limits.rateLimit must be an object {requestsPerSecond, burst}');
    expect(refusal({ file: minimal, env: { TEEGATE_ANONYMOUS_RATE_LIMIT: '[1, 2]' } })).toBe('TEEGATE_ANONYMOUS_RATE_LIMIT (limits.anonymousRateLimit) must be an object {requestsPerSecond, burst}');
  });

  it('a rate limit or a policy with a member it does not know is refused, naming the member', () => {
    expect(refusal({ file: { ...minimal, limits: { rateLimit: { requestsPerSecond: 1, burst: 1, perMinute: 60 } } } })).toBe('limits.rateLimit has unknown members perMinute');
    expect(refusal({ file: { ...minimal, auth: { keys: [{ ...KEY, rateLimit: { requestsPerSecond: 1, burst: 1, brust: 2 } }] } } })).toBe('auth.keys[0].rateLimit has unknown members brust');
    expect(refusal({ file: { ...minimal, attestation: { policy: { pcrs: { 0: PCR0 }, allowDebugg: true } } } })).toBe('attestation.policy has unknown members allowDebugg');
  });

  it('a burst that is not a whole number in 1..1e6, also in a key\'s own limit', () => {
    for (const burst of [0, 1.5, 1e6 + 1, '10']) {
      expect(refusal({ file: { ...minimal, limits: { rateLimit: { requestsPerSecond: 1, burst } } } })).toBe('limits.rateLimit.burst must be an integer in 1..1e6');
    }
    expect(refusal({ file: { ...minimal, auth: { keys: [{ ...KEY, rateLimit: { requestsPerSecond: 1, burst: 0 } }] } } })).toBe('auth.keys[0].rateLimit.burst must be an integer in 1..1e6');
  });
});

describe('gateway configuration: API keys', () => {
  it('a key id of other characters or longer than 64 is refused; a key without scopes is refused', () => {
    for (const id of ['client a', 'a'.repeat(65), 'client/a', '']) {
      expect(refusal({ file: { ...minimal, auth: { keys: [{ ...KEY, id }] } } })).toBe('auth.keys[0].id must be 1..64 characters of A-Z a-z 0-9 . _ -');
    }
    expect(parseGatewayConfig({ file: { ...minimal, auth: { keys: [{ ...KEY, id: 'a'.repeat(64) }] } } }).auth.keys[0]!.id).toBe('a'.repeat(64));
    expect(refusal({ file: { ...minimal, auth: { keys: [{ ...KEY, scopes: [] }] } } })).toBe('auth.keys[0].scopes must be a non-empty list of infer, admin');
  });

  it('an id used twice is refused even with different hashes', () => {
    const keys = [KEY, { ...KEY, sha256: 'ef'.repeat(32) }];
    expect(refusal({ file: { ...minimal, auth: { keys } } })).toBe('auth.keys[1].id client-a is used twice');
  });

  it('a sha256 that is not 64 lower-case hex characters (e.g. the key itself) is refused', () => {
    for (const sha256 of ['CD'.repeat(32), 'cd'.repeat(31), 'tg_live_secretkeymaterial', 42]) {
      expect(refusal({ file: { ...minimal, auth: { keys: [{ ...KEY, sha256 }] } } })).toBe('auth.keys[0].sha256 must be 64 lower-case hex characters (SHA-256 of the key)');
    }
    expect(refusal({ file: minimal, env: { TEEGATE_API_KEYS: JSON.stringify([{ ...KEY, sha256: 'CD'.repeat(32) }]) } })).toBe(
      'TEEGATE_API_KEYS (auth.keys)[0].sha256 must be 64 lower-case hex characters (SHA-256 of the key)',
    );
  });
});

describe('gateway configuration: files it names', () => {
  it('a root certificate file that holds no PEM certificate', () => {
    const dir = folder();
    writeFileSync(join(dir, 'root.der'), Buffer.from([0x30, 0x82, 0x01, 0x00]));
    const file = { ...minimal, attestation: { ...minimal.attestation, rootCertificates: ['root.der'] } };
    expect(refusal({ file, baseDir: dir })).toBe('attestation.rootCertificates[0]: root.der holds no PEM certificate');
  });

  it('a policy and a policy file both set: the operator must choose one', () => {
    const dir = folder();
    writeFileSync(join(dir, 'policy.json'), JSON.stringify(makePolicyFile({ 0: PCR0 })));
    const both = { ...minimal, attestation: { ...minimal.attestation, policyFile: 'policy.json' } };
    expect(refusal({ file: both, baseDir: dir })).toBe('set attestation.policy or attestation.policyFile, not both');
    expect(refusal({ file: minimal, baseDir: dir, env: { TEEGATE_POLICY_FILE: 'policy.json' } })).toBe('set attestation.policy or TEEGATE_POLICY_FILE (attestation.policyFile), not both');
    // Each alone is accepted.
    const { policy: _, ...noPolicy } = both.attestation;
    expect(parseGatewayConfig({ file: { ...minimal, attestation: noPolicy }, baseDir: dir }).attestation.policy.pcrs).toEqual({ 0: PCR0 });
  });

  it('a policy file that cannot be read, or is not JSON, names the setting and the file', () => {
    const dir = folder();
    const file = (policyFile: string) => ({ ...minimal, attestation: { policyFile } });
    expect(refusal({ file: file('absent.json'), baseDir: dir })).toBe(`attestation.policyFile: cannot read ${join(dir, 'absent.json')} as JSON: ENOENT`);
    writeFileSync(join(dir, 'broken.json'), '{"format":');
    expect(refusal({ file: file('broken.json'), baseDir: dir })).toMatch(new RegExp(`^attestation\\.policyFile: cannot read ${join(dir, 'broken\\.json')} as JSON: .*JSON`));
    expect(refusal({ file: { ...minimal, attestation: {} }, baseDir: dir, env: { TEEGATE_POLICY_FILE: 'absent.json' } })).toMatch(/^TEEGATE_POLICY_FILE \(attestation\.policyFile\): cannot read .* ENOENT$/);
  });

  it('a policy file in another format, or pinning nothing, is refused with the policy file\'s reason', () => {
    const dir = folder();
    const file = (policyFile: string) => ({ ...minimal, attestation: { policyFile } });
    writeFileSync(join(dir, 'bare.json'), JSON.stringify({ pcrs: { 0: PCR0 } })); // the inline shape, not the file format
    expect(refusal({ file: file('bare.json'), baseDir: dir })).toMatch(/^attestation\.policyFile: measurement policy: format must be "/);
    writeFileSync(join(dir, 'empty.json'), JSON.stringify({ ...makePolicyFile({ 0: PCR0 }), pcrs: {} }));
    expect(refusal({ file: file('empty.json'), baseDir: dir })).toMatch(/^attestation\.policyFile: measurement policy: pcrs must pin at least one PCR/);
  });

  it('loadGatewayConfig resolves the policy file against the configuration file\'s folder', () => {
    const dir = folder();
    writeFileSync(join(dir, 'gateway.json'), JSON.stringify({ ...minimal, attestation: { policyFile: 'missing-policy.json' } }));
    expect(() => loadGatewayConfig({ file: join(dir, 'gateway.json'), env: {} })).toThrow(`attestation.policyFile: cannot read ${join(dir, 'missing-policy.json')} as JSON: ENOENT`);
  });
});

describe('gateway configuration: the log store', () => {
  it('the postgres store without a connection URL names the missing setting', () => {
    expect(refusal({ file: { ...minimal, log: { store: 'postgres' } } })).toBe('log.postgresUrl is required when log.store is postgres');
    expect(refusal({ file: minimal, env: { TEEGATE_LOG_STORE: 'postgres' } })).toBe('log.postgresUrl is required when log.store is postgres');
    expect(parseGatewayConfig({ file: minimal, env: { TEEGATE_LOG_STORE: 'postgres', TEEGATE_PG_URL: 'postgres://127.0.0.1/x' } }).log).toMatchObject({ store: 'postgres', postgresUrl: 'postgres://127.0.0.1/x' });
  });
});
