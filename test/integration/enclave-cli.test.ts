/**
 * The enclave's command line (enclave/cli.ts), started as infra/nitro/enclave-init.sh and the dev
 * stack start it: --help, and each way of starting it wrongly refused before anything boots, with
 * the reason and exit code 2 (1 is kept for an enclave that cannot start).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'teegate-enclave-cli-'));

function enclaveCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO, 'bin/run-ts'), join(REPO, 'enclave/cli.ts'), '--data', dir, ...args], { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('--help prints every option and exits 0 without starting anything', async () => {
  const r = await enclaveCli('--help');
  expect(r.code).toBe(0);
  expect(r.stderr).toBe('');
  for (const option of ['--port', '--host', '--data', '--models', '--kms-endpoint', '--kms-region', '--nsm ', '--nsm-helper', '--debug']) expect(r.stdout).toContain(option);
});

test.each([
  ['an unknown option', ['--bogus'], "Unknown option '--bogus'"],
  ['a port that is not a number', ['--port', 'abc'], '--port must be a whole number from 0 to 65535, not "abc"'],
  ['a port out of range', ['--port', '70000'], '--port must be a whole number from 0 to 65535, not "70000"'],
  ['an NSM that does not exist', ['--nsm', 'tpm'], '--nsm must be "dev" or "hardware", not "tpm"'],
  ['a models file that is not there', ['--models', join(dir, 'absent.json')], `cannot read the models file ${join(dir, 'absent.json')}: ENOENT`],
  ['a models file that is not JSON', ['--models', file('broken.json', '[{"name": ')], `the models file ${join(dir, 'broken.json')} is not JSON`],
  ['a models file with no model', ['--models', file('empty.json', '[]')], `the models file ${join(dir, 'empty.json')}: MODEL_LOAD_FAILED: model config: must be a non-empty array`],
])('refuses %s with the reason and the help, exit 2', async (_what, args, reason) => {
  const r = await enclaveCli(...args);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.startsWith(`enclave: ${reason}`)).toBe(true);
  expect(r.stderr).toContain('usage: node bin/run-ts enclave/cli.ts');
});
