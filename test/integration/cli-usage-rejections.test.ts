/**
 * Usage and I/O errors of `teegate` (bin/commands/usage.ts) as a user meets them: the real
 * bin/teegate in a child process exits 2 with one line naming the option or file and what is wrong
 * with it, before anything goes over the wire or starts. (Files that are not regular files or too
 * large are covered in client-cli.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makePolicyFile } from '../../attestation/policy-file';

jest.setTimeout(60_000);

const BIN = join(__dirname, '../../bin/teegate');
/** Nothing listens on the discard port: a command that got as far as the network would fail differently. */
const NOWHERE = 'http://127.0.0.1:9';
let dir: string;

async function teegate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEEGATE_')));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: dir, env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'teegate-cli-usage-'));
});

it('an option the command does not know, or one missing its value, is refused with the command\'s help', async () => {
  const unknown = await teegate('verify-attestation', '--bogus', 'doc.cbor');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/^teegate verify-attestation: Unknown option '--bogus'/);
  expect(unknown.stderr).toContain('usage: teegate verify-attestation FILE [options]');
  const missing = await teegate('audit', '--url');
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/^teegate audit: Option '--url <value>' argument missing/);
});

it('a file that cannot be read names it and the reason', async () => {
  const absent = join(dir, 'absent.cbor');
  expect(await teegate('verify-attestation', absent)).toEqual({ code: 2, stdout: '', stderr: `teegate verify-attestation: cannot read document ${absent}: ENOENT\n` });
});

it('--at that is not an ISO 8601 time or milliseconds since the epoch', async () => {
  const doc = file('doc.cbor', Uint8Array.of(0x84)); // raw CBOR as far as the encoding goes
  for (const at of ['yesterday', '2024-13-45T00:00:00Z', '-5', '12:00']) {
    expect(await teegate('verify-attestation', doc, `--at=${at}`)).toEqual({
      code: 2,
      stdout: '',
      stderr: `teegate verify-attestation: --at: ${JSON.stringify(at)} is not an ISO 8601 time or milliseconds since the epoch\n`,
    });
  }
});

it('a number option that is not a whole number in its range names the option and the range', async () => {
  expect(await teegate('up', '--port', '70000')).toEqual({ code: 2, stdout: '', stderr: 'teegate up: --port must be a whole number from 0 to 65535\n' });
  expect(await teegate('up', '--port', '0', '--enclaves', '0')).toEqual({ code: 2, stdout: '', stderr: 'teegate up: --enclaves must be a whole number from 1 to 16\n' });
  const doc = file('doc.cbor', Uint8Array.of(0x84));
  for (const age of ['-5', '1.5', '1e3', '1000000001']) {
    expect(await teegate('verify-attestation', doc, `--max-age=${age}`)).toEqual({ code: 2, stdout: '', stderr: 'teegate verify-attestation: --max-age (seconds) must be a whole number from 0 to 1000000000\n' });
  }
});

it('an input file or a policy file that is not JSON names the file', async () => {
  const notJson = file('not-json.json', '{"inputs": [');
  expect(await teegate('infer', '--url', NOWHERE, '--model', 'affine', '--input', notJson)).toEqual({ code: 2, stdout: '', stderr: `teegate infer: input file ${notJson} is not JSON\n` });
  const input = file('input.json', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }));
  expect(await teegate('infer', '--url', NOWHERE, '--model', 'affine', '--input', input, '--policy', notJson)).toEqual({ code: 2, stdout: '', stderr: `teegate infer: policy file ${notJson} is not JSON\n` });
});

it('a policy file in another format, or pinning nothing, is refused with the reason, not trusted', async () => {
  const bare = file('bare-policy.json', JSON.stringify({ pcrs: { 0: 'ab'.repeat(48) } }));
  const r = await teegate('audit', '--url', NOWHERE, '--policy', bare);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(new RegExp(`^teegate audit: POLICY_INVALID: policy file ${bare}: measurement policy: format must be "[^"]+"\\n$`));
  const empty = file('empty-policy.json', JSON.stringify({ ...makePolicyFile({ 0: 'ab'.repeat(48) }), pcrs: {} }));
  const e = await teegate('audit', '--url', NOWHERE, '--policy', empty);
  expect(e.code).toBe(2);
  expect(e.stderr).toMatch(new RegExp(`^teegate audit: POLICY_INVALID: policy file ${empty}: measurement policy: pcrs must pin at least one PCR`));
});

it('an audit state file that is not a state names the file and AUDIT_STATE_INVALID, exit 2, before any fetch', async () => {
  const policy = file('state-policy.json', JSON.stringify(makePolicyFile({ 0: 'ab'.repeat(48) })));
  for (const [name, text, reason] of [
    ['not-json-state.json', '{"checkpoint": ', 'audit state: not JSON'],
    ['wrong-state.json', JSON.stringify({ checkpoint: 'yes' }), 'audit state: '],
  ] as const) {
    const state = file(name, text);
    const r = await teegate('audit', '--url', NOWHERE, '--policy', policy, '--state', state);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(`teegate audit: AUDIT_STATE_INVALID: state ${state}: ${reason}`)).toBe(true);
  }
});
