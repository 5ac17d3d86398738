/** Starts and drives `log-child-server.ts` processes for the crash and multi-replica tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Agent, request } from 'node:http';

export interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly agent: Agent;
}

const ROOT = join(__dirname, '..', '..');

export async function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin', 'run-ts'), join(__dirname, 'log-child-server.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child did not start: ${stderr}`)), 20000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
  return { proc, url: `http://127.0.0.1:${port}`, agent: new Agent({ keepAlive: true, maxSockets: 64 }) };
}

/** A raw HTTP request (keep-alive agent): status and body. */
export function call(child: Child, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${child.url}${path}`, { method, agent: child.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function kill(child: Child, signal: NodeJS.Signals): Promise<void> {
  child.agent.destroy();
  return new Promise((resolve) => {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) return resolve();
    child.proc.once('exit', () => resolve());
    child.proc.kill(signal);
  });
}

/** Appends `payload` through the child; the acknowledged index, or undefined if not acknowledged. */
export async function appendVia(child: Child, payload: string): Promise<number | undefined> {
  try {
    const r = await call(child, 'POST', `/test/append/${payload}`);
    if (r.status !== 200) return undefined;
    return (JSON.parse(r.body.toString()) as { index: number }).index;
  } catch {
    return undefined;
  }
}

/** Keeps `concurrency` appends in flight until `stop()`; records every acknowledged index. */
export function appendLoad(child: Child, prefix: string, concurrency: number): { acked: Map<number, string>; stop: () => Promise<void> } {
  const acked = new Map<number, string>();
  let running = true;
  let n = 0;
  const worker = async () => {
    while (running) {
      const payload = `${prefix}-${n++}`;
      const index = await appendVia(child, payload);
      if (index === undefined) {
        if (!running) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      acked.set(index, payload);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** Polls the published checkpoint every `ms` until `stop()`; keeps every distinct note. */
export function watchCheckpoints(child: Child, ms: number): { notes: string[]; stop: () => void } {
  const notes: string[] = [];
  const timer = setInterval(() => {
    call(child, 'GET', '/v1/log/checkpoint')
      .then((r) => {
        const note = r.body.toString();
        if (r.status === 200 && notes[notes.length - 1] !== note) notes.push(note);
      })
      .catch(() => undefined);
  }, ms);
  return { notes, stop: () => clearInterval(timer) };
}

/** All entries of the child's log up to `size` (via GET /v1/log/entries). */
export async function readAllEntries(child: Child, size: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let start = 0; start < size; start += 256) {
    const r = await call(child, 'GET', `/v1/log/entries?start=${start}&count=${Math.min(256, size - start)}`);
    if (r.status !== 200) throw new Error(`entries ${start}: HTTP ${r.status} ${r.body.toString()}`);
    for (const e of (JSON.parse(r.body.toString()) as { entries: string[] }).entries) out.push(new Uint8Array(Buffer.from(e, 'base64')));
  }
  return out;
}
