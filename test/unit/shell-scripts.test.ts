/**
 * Every shell script under infra/ parses (`bash -n`) and passes shellcheck (Debian package
 * `shellcheck`, installed by .ci/run; when absent locally that check is skipped with a note).
 * Also: the scripts are executable and strict (`set -euo pipefail`), and run-enclave.sh refuses
 * debug mode unless explicitly allowed, before it touches nitro-cli.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const REPO = join(__dirname, '../..');

function shellScripts(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...shellScripts(path));
    else if (entry.isFile() && (entry.name.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(readFileSync(path, 'utf8').split('\n', 1)[0]!))) out.push(path);
  }
  return out.sort();
}

const scripts = shellScripts(join(REPO, 'infra'));
const names = scripts.map((s) => relative(REPO, s));
const shellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
const haveShellcheck = shellcheck.status === 0;

describe('infra shell scripts', () => {
  it('finds the Nitro scripts', () => {
    expect(names).toEqual(expect.arrayContaining(['infra/nitro/build-enclave.sh', 'infra/nitro/enclave-init.sh', 'infra/nitro/run-enclave.sh']));
  });

  it.each(names)('%s parses with bash -n', (name) => {
    const r = spawnSync('bash', ['-n', join(REPO, name)], { encoding: 'utf8' });
    expect({ name, status: r.status, stderr: r.stderr }).toEqual({ name, status: 0, stderr: '' });
  });

  it.each(names)('%s is executable, bash and strict', (name) => {
    const text = readFileSync(join(REPO, name), 'utf8');
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(statSync(join(REPO, name)).mode & 0o111).not.toBe(0);
  });

  // Skipped (not failed) where shellcheck is absent; .ci/run installs it, so CI always runs it.
  (haveShellcheck ? it : it.skip)('pass shellcheck', () => {
    const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...scripts], { encoding: 'utf8' });
    expect({ status: r.status, output: r.stdout + r.stderr }).toEqual({ status: 0, output: '' });
  });

  it('run-enclave.sh refuses --debug-mode unless TEEGATE_ALLOW_DEBUG_MODE=yes', () => {
    const eif = join(REPO, 'package.json'); // any readable file: the refusal comes before nitro-cli
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', EIF_PATH: eif };
    const r = spawnSync('bash', [join(REPO, 'infra/nitro/run-enclave.sh'), '--debug-mode'], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('refusing --debug-mode');
  });

  it('run-enclave.sh rejects non-numeric resources and unknown arguments', () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', EIF_PATH: join(REPO, 'package.json') };
    const run = (...args: string[]) => spawnSync('bash', [join(REPO, 'infra/nitro/run-enclave.sh'), ...args], { encoding: 'utf8', env });
    expect(run('--cpus', 'two').status).toBe(2);
    expect(run('--verbose').status).toBe(2);
    expect(run('--eif', '/nonexistent.eif').stderr).toContain('cannot read');
  });
});
