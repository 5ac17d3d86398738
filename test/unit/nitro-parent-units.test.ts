/**
 * The parent instance's deployment files (infra/nitro/teegate.env, systemd units, infra/README.md
 * step 5) read together as systemd and the gateway read them: the configuration they produce must
 * put everything the gateway writes where its unit lets it write.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { loadGatewayConfig } from '../../gateway/config';

const REPO = join(__dirname, '../..');

/** KEY=VALUE lines of an EnvironmentFile (comments and blank lines skipped), as systemd reads it. */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`not KEY=VALUE: ${line}`);
    env[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return env;
}

/** The values of one `Key=` directive of a unit file (space-separated, possibly repeated). */
function directive(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .flatMap((line) => line.slice(key.length + 1).split(/\s+/).filter((v) => v !== ''));
}

const within = (dir: string, path: string): boolean => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

test('the gateway unit with teegate.env and the step-5 gateway.json keeps the log in a folder the unit may write', () => {
  const unit = readFileSync(join(REPO, 'infra/nitro/systemd/teegate-gateway.service'), 'utf8');
  const env = environmentFile(readFileSync(join(REPO, 'infra/nitro/teegate.env'), 'utf8'));
  expect(directive(unit, 'ProtectSystem')).toEqual(['strict']); // everything else is read-only
  const writable = directive(unit, 'ReadWritePaths');
  expect(writable.length).toBeGreaterThan(0);
  expect(env.TEEGATE_CONFIG).toBe('/etc/teegate/gateway.json');

  // gateway.json as infra/README.md step 5 writes it, in a folder standing for /etc/teegate.
  const etc = mkdtempSync(join(tmpdir(), 'teegate-etc-'));
  try {
    const file = join(etc, 'gateway.json');
    writeFileSync(
      file,
      JSON.stringify({
        attestation: { policy: { pcrs: { '0': 'a'.repeat(96) }, allowDebug: false, maxAgeMs: 300000 } },
        auth: { keys: [{ id: 'ops', sha256: 'b'.repeat(64), scopes: ['infer'] }] },
      }),
    );
    const config = loadGatewayConfig({ file, env });
    expect(config.log.store).toBe('file');
    // Relative to the config file's folder it would be /etc/teegate/data: read-only under the unit.
    expect(writable.some((dir) => within(dir, config.log.dataDir))).toBe(true);
    expect(within(etc, config.log.dataDir)).toBe(false);
  } finally {
    rmSync(etc, { recursive: true, force: true });
  }
});
