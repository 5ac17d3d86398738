/**
 * The gateway process entry (gateway/main.ts): an invalid configuration, or a port in use, is
 * refused at start with the field or address named; a valid one serves, and SIGTERM shuts it down
 * cleanly (exit 0). `teegate up` refuses a port in use before it starts anything. In process: an
 * enclave whose attestation endpoint fails is kept out, and a request pinned to it is refused.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { captureLogger, testGatewayConfig } from '../support/gateway-harness';
import { serveHttp, type LoopbackServer } from '../support/loopback';

jest.setTimeout(60_000);

const REPO = join(__dirname, '../..');

/** A node process of the repository's `script` (its exit code and stderr). */
function spawnScript(script: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, script, { cwd: REPO, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

/** gateway/main.ts with `args` and `env`. */
const run = (args: string[], env: Record<string, string>) => spawnScript([join(REPO, 'bin/run-ts'), join(REPO, 'gateway/main.ts'), ...args], env);

/** `teegate up` with `args`. */
const up = (args: string[]) => spawnScript([join(REPO, 'bin/teegate'), 'up', ...args], {});

/** `teegate up` with `args`, once it says the stack is up. */
async function upReady(args: string[]): Promise<ReturnType<typeof up>> {
  const p = up(args);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    p.child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Press Ctrl-C to stop.')) resolve();
    });
    p.child.once('exit', (code) => reject(new Error(`teegate up exited (${code}): ${p.stderr()}`)));
  });
  return p;
}

/** Runs `body` with a port of 127.0.0.1 that something else listens on. */
async function withBusyPort(body: (port: number) => Promise<void>): Promise<void> {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    await body((blocker.address() as AddressInfo).port);
  } finally {
    blocker.close();
  }
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
  const data = mkdtempSync(join(tmpdir(), 'teegate-main-serve-'));
  const p = run([], { TEEGATE_POLICY: POLICY, TEEGATE_AUTH_DISABLED: 'true', TEEGATE_PORT: '0', TEEGATE_LOG_LEVEL: 'warn', TEEGATE_DATA_DIR: data });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: p.child.stdout! }).on('line', (line) => {
        const m = /^teegate gateway listening on (http:\S+)$/.exec(line);
        if (m) resolve(m[1]!);
      });
      p.child.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening: ${p.stderr()}`)));
    });
    expect(await (await fetch(`${url}/v2/health/live`)).json()).toEqual({ live: true });
    const ready = await fetch(`${url}/v2/health/ready`);
    expect([ready.status, ((await ready.json()) as { code: string }).code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
    // No manifest attested yet, so no model is known to be missing: not ready, not 404.
    const model = await fetch(`${url}/v2/models/ppocr-v4-rec/ready`);
    expect([model.status, await model.json()]).toEqual([503, { code: 'NO_ENCLAVE_AVAILABLE', message: 'no enclave has been attested yet', name: 'ppocr-v4-rec', ready: false }]);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.stderr()).toContain('SIGTERM: shutting down');
  } finally {
    p.child.kill('SIGKILL'); // a failed expectation above must not leave the gateway running
  }
});


it('refuses a port in use with CONFIG_INVALID naming the address, exit 2', () =>
  withBusyPort(async (port) => {
    const p = run([], { TEEGATE_POLICY: POLICY, TEEGATE_AUTH_DISABLED: 'true', TEEGATE_PORT: String(port), TEEGATE_LOG_LEVEL: 'warn', TEEGATE_LOG_STORE: 'memory' });
    expect(await p.exit).toBe(2);
    expect(p.stderr()).toContain(`REJECTED CONFIG_INVALID: cannot listen on 127.0.0.1:${port}: the address is in use`);
  }));

it('teegate up refuses a port in use before it starts anything, exit 2', () =>
  withBusyPort(async (port) => {
    const data = mkdtempSync(join(tmpdir(), 'teegate-up-busy-'));
    const p = up(['--port', String(port), '--data', data]);
    expect(await p.exit).toBe(2);
    expect(p.stderr()).toBe(`teegate up: CONFIG_INVALID: cannot listen on 127.0.0.1:${port} (EADDRINUSE): choose another port with --port N\n`);
    expect(readdirSync(data)).toEqual([]); // nothing was started or written
  }));

it('teegate up killed outright (SIGKILL) leaves no service running: each stops when its IPC channel to up closes', async () => {
  const data = mkdtempSync(join(tmpdir(), 'teegate-up-killed-'));
  const p = await upReady(['--port', '0', '--data', data]);
  /** The services of this stack: every process but up itself whose command line names its folder. */
  const services = () =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e) && Number(e) !== p.child.pid)
      .filter((e) => {
        try {
          return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(data);
        } catch {
          return false;
        }
      });
  const running = services();
  expect(running.length).toBe(2); // the enclave and the gateway
  p.child.kill('SIGKILL');
  for (let waited = 0; services().length > 0 && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  const left = services();
  for (const pid of left) process.kill(Number(pid), 'SIGKILL');
  expect(left).toEqual([]);
});

it('a second teegate up on the same data folder is refused before it writes anything; the first keeps its files', async () => {
  const data = mkdtempSync(join(tmpdir(), 'teegate-up-twice-'));
  const first = await upReady(['--port', '0', '--data', data]);
  try {
    const config = readFileSync(join(data, 'gateway.json'), 'utf8');
    const second = up(['--port', '0', '--data', data]);
    expect(await second.exit).toBe(2);
    expect(second.stderr()).toContain(`teegate up: CONFIG_INVALID: the data folder ${data} is in use by another teegate up (process ${first.child.pid}): stop it, or choose another folder with --data DIR\n`);
    expect(readFileSync(join(data, 'gateway.json'), 'utf8')).toBe(config);
  } finally {
    first.child.kill('SIGTERM');
    await first.exit;
  }
  expect(readdirSync(data)).not.toContain('LOCK');
});

it('teegate up refuses a kept file it cannot use, naming it, exit 1, and leaves it as it was', async () => {
  const data = mkdtempSync(join(tmpdir(), 'teegate-up-corrupt-'));
  writeFileSync(join(data, 'dev-ca.json'), '{"broken":');
  const p = up(['--port', '0', '--data', data]);
  expect(await p.exit).toBe(1);
  expect(p.stderr()).toContain(`teegate: could not start the dev stack: CONFIG_INVALID: ${join(data, 'dev-ca.json')} cannot be used (`);
  expect(p.stderr()).not.toMatch(/\n\s+at /); // no stack trace
  expect(readFileSync(join(data, 'dev-ca.json'), 'utf8')).toBe('{"broken":');
});

describe('startGateway in process: an enclave that answers /health but not /attestation', () => {
  let enclave: LoopbackServer;
  let gateway: RunningGateway;
  const nonce = 'ab'.repeat(32);

  beforeAll(async () => {
    enclave = await serveHttp((req, res) => {
      const [status, body] = req.url === '/health' ? [200, { status: 'ready', boot_id: 'boot-1' }] : [500, { code: 'INTERNAL', message: 'nsm failed' }];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    gateway = await startGateway(
      testGatewayConfig({ enclaves: [enclave.url], attestation: { policy: { pcrs: { 0: 'ab'.repeat(48) } } }, auth: { disabled: true }, log: { store: 'memory' } }),
      { sink: new MemoryReceiptSink(), logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await enclave?.close();
  });

  it('is kept out as unhealthy with UPSTREAM_INVALID naming what answered', async () => {
    const list = (await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { id: string; state: string; last_error?: { code: string; message: string } }[] };
    expect(list.enclaves).toEqual([
      expect.objectContaining({ id: 'enclave-0', state: 'unhealthy', last_error: expect.objectContaining({ code: 'UPSTREAM_INVALID', message: 'enclave-0/attestation answered 500' }) }),
    ]);
  });

  it('GET /v1/attestation pinned to it is 503 NO_ENCLAVE_AVAILABLE naming its state, and nothing is relayed', async () => {
    const res = await fetch(`${gateway.url}/v1/attestation?nonce=${nonce}&enclave=enclave-0`);
    expect([res.status, await res.json()]).toEqual([503, { code: 'NO_ENCLAVE_AVAILABLE', message: 'enclave enclave-0 is unhealthy' }]);
  });
});
