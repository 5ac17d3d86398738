/**
 * The gateway process entry (gateway/main.ts): an invalid configuration is refused at start with
 * the field named; a valid one serves, and SIGTERM shuts it down cleanly (exit 0).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

jest.setTimeout(60_000);

const REPO = join(__dirname, '../..');

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(REPO, 'bin/run-ts'), join(REPO, 'gateway/main.ts'), ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

const POLICY = JSON.stringify({ pcrs: { 0: 'ab'.repeat(48) } });

it('refuses an invalid configuration with CONFIG_INVALID naming the field, exit 2', async () => {
  const p = run([], { TEEGATE_POLICY: POLICY, TEEGATE_AUTH_DISABLED: 'true', TEEGATE_PORT: '99999' });
  expect(await p.exit).toBe(2);
  expect(p.stderr()).toBe('REJECTED CONFIG_INVALID: TEEGATE_PORT (port) must be in 0..65535, got 99999\n');
  const dir = mkdtempSync(join(tmpdir(), 'teegate-main-'));
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({ auth: { disabled: true } }));
  const q = run(['--config', join(dir, 'gateway.json')], {});
  expect(await q.exit).toBe(2);
  expect(q.stderr()).toMatch(/^REJECTED CONFIG_INVALID: attestation\.policy is required/);
});

it('serves with a valid configuration and stops cleanly on SIGTERM', async () => {
  const p = run([], { TEEGATE_POLICY: POLICY, TEEGATE_AUTH_DISABLED: 'true', TEEGATE_PORT: '0', TEEGATE_LOG_LEVEL: 'warn' });
  const url = await new Promise<string>((resolve) => {
    createInterface({ input: p.child.stdout! }).on('line', (line) => {
      const m = /^teegate gateway listening on (http:\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  expect(await (await fetch(`${url}/v2/health/live`)).json()).toEqual({ live: true });
  const ready = await fetch(`${url}/v2/health/ready`);
  expect([ready.status, ((await ready.json()) as { code: string }).code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
  p.child.kill('SIGTERM');
  expect(await p.exit).toBe(0);
  expect(p.stderr()).toContain('SIGTERM: shutting down');
});
