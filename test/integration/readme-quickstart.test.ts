/**
 * The README's quick start as a new user runs it: `npm start` (teegate up) on a fresh data
 * directory, then the commands the README shows (the verified inference with `teegate infer
 * --demo`, the plain inference with curl, the audit), each taken from README.md and run by bash.
 * The README's `data/` and `http://127.0.0.1:8080` become this test's directory and port; nothing
 * else in a command is changed. Then a SIGTERM to the `npm start` process (as a supervisor sends
 * it) stops every process of the stack and frees the port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

jest.setTimeout(180_000);

const REPO = join(__dirname, '../..');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The shell code blocks of the README, and its one-line commands in backticks. */
const shellBlocks = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
const inlineCommands = [...README.matchAll(/`(npx teegate [^`]+)`/g)].map((m) => m[1]!);

function readmeCommand(what: string, found: string | undefined): string {
  if (found === undefined) throw new Error(`README.md has no ${what} command`);
  return found;
}

const inferCommand = readmeCommand('infer --demo', shellBlocks.find((b) => b.includes('teegate infer') && b.includes('--demo')));
const curlCommand = readmeCommand('curl inference', shellBlocks.find((b) => b.startsWith('curl ') && b.includes('/infer')));
const auditCommand = readmeCommand('audit', inlineCommands.find((c) => c.startsWith('npx teegate audit')));

let dir: string;
let stack: ChildProcess;
let stdout = '';
let url: string;

/** Pids of the processes whose command line names the test's data directory (the stack's). */
function stackPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // the process ended while the list was read
    }
  }
  return pids;
}

/** A README command with the test's directory and port, run by bash from the repository root. */
function runReadme(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = command.replaceAll('http://127.0.0.1:8080', url).replace(/(?<![\w/.])data\//g, `${dir}/data/`);
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd: REPO, maxBuffer: 16 << 20 }, (err, out, errOut) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut });
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'teegate-readme-'));
  // Its own process group, so that whatever a failed test leaves is killed in afterAll.
  stack = spawn('npm', ['start', '--', '--port', '0', '--data', join(dir, 'data')], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  stack.stderr!.on('data', (c: Buffer) => (stdout += c.toString()));
  url = await new Promise<string>((resolve, reject) => {
    stack.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const up = /^teegate is up: (http:\/\/\S+)$/m.exec(stdout);
      if (up && stdout.includes('Press Ctrl-C to stop.')) resolve(up[1]!);
    });
    stack.once('exit', (code) => reject(new Error(`npm start exited (${code}) before the stack was up:\n${stdout}`)));
  });
});

afterAll(() => {
  // The whole group, npm or not: a failed test may leave the stack's processes behind it.
  try {
    process.kill(-stack.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
});

it('the verified inference: every step passes, the demo line is read, inclusion is verified', async () => {
  const r = await runReadme(inferCommand);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('text BYTES [1]: "Confidential inference verified"');
  expect(r.stdout).toMatch(/^ {2}ok {3}log +entry \d+ included in checkpoint /m);
  expect(r.stdout).toMatch(/^VERIFIED receipt \S+ seq \d+ from enclave \S+, log index \d+ \(inclusion verified\)$/m);
});

it('the curl inference: the Open Inference Protocol answer with the text, the receipt and the log index', async () => {
  const r = await runReadme(curlCommand);
  expect(r.code).toBe(0);
  const answer = JSON.parse(r.stdout) as { model_name: string; outputs: { name: string; data: unknown[] }[]; parameters: Record<string, unknown> };
  expect(answer.model_name).toBe('ppocr-v4-rec');
  expect(answer.outputs.find((o) => o.name === 'text')?.data).toEqual(['Confidential inference verified']);
  expect(answer.parameters).toMatchObject({ log_index: expect.any(Number), receipt: expect.stringMatching(/^eyJ/), salt: expect.stringMatching(/^[0-9a-f]{64}$/), sealed: false });
});

it('the audit passes over what was served', async () => {
  const r = await runReadme(auditCommand);
  expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
  expect(r.stdout).toMatch(/PASSED/);
});

it('SIGTERM to the npm start process stops every process of the stack and frees the port', async () => {
  const pids = stackPids();
  // npm, teegate up, the dev KMS, the enclave and the gateway (each names the data directory).
  expect(pids.length).toBeGreaterThanOrEqual(4);
  const exited = new Promise<number | null>((resolve) => stack.once('exit', (code) => resolve(code)));
  stack.kill('SIGTERM');
  await exited;
  for (let waited = 0; stackPids().length > 0 && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  expect(stackPids()).toEqual([]);
  expect(stdout).toContain('teegate: stopped');
  // The AWS SDK's nine-line Node notice is said once, in one line, where Node is below 22.
  expect(stdout).not.toContain('NodeVersionSupportWarning');
  const below22 = Number(process.versions.node.split('.')[0]) < 22;
  expect(stdout.split('teegate: note: running on Node').length - 1).toBe(below22 ? 1 : 0);
  const { port } = new URL(url);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
  expect(refused).toBe(true);
});
