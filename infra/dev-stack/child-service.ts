/**
 * A service of the dev stack run as a child process. It prints one JSON line
 * `{"event":"ready","url":...}` on stdout when serving; its stderr (JSON log lines) is passed on.
 * Stopping sends SIGTERM and, after a grace period, SIGKILL. Each child also has an IPC channel to
 * this process, and the services stop when it closes: killed outright (SIGKILL, a crash), this
 * process leaves no service running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildService {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly process: ChildProcess;
  stop(graceMs?: number): Promise<void>;
}

/** Lines of a child's output kept for the error when it exits before it is ready. */
const RECENT_LINES = 12;

/** A child service exited before it was ready; the message carries its last output. */
export class ChildExitedError extends Error {
  override readonly name = 'ChildExitedError';
}

export function startChildService(
  name: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; readyTimeoutMs?: number; onLog?: (line: string) => void } = {},
): Promise<ChildService> {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // Only there to close when this process goes away: it does not keep this process running.
  child.channel?.unref();
  // The last lines it printed, for the error if it exits before it is ready (the caller's onLog may
  // show only warnings and errors, and a process that fails to start often prints neither).
  const recent: string[] = [];
  const passOn = options.onLog ?? ((line: string) => process.stderr.write(`${line}\n`));
  const onLog = (line: string): void => {
    recent.push(line);
    if (recent.length > RECENT_LINES) recent.shift();
    passOn(line);
  };
  createInterface({ input: child.stderr! }).on('line', onLog);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within ${options.readyTimeoutMs ?? 60_000} ms`));
    }, options.readyTimeoutMs ?? 60_000);
    const exitedEarly = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      // Lines arrive through readline after the exit event: give them a turn of the event loop.
      setImmediate(() => {
        const said = recent.length > 0 ? `; its last output:\n  ${recent.join('\n  ')}` : '';
        reject(new ChildExitedError(`${name} exited before it was ready (code ${code}, signal ${signal})${said}`));
      });
    };
    child.once('exit', exitedEarly);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: { event?: string; url?: string };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        onLog(line);
        return;
      }
      if (event.event !== 'ready' || typeof event.url !== 'string') {
        onLog(line); // JSON log lines on stdout (pino) are passed on like stderr's
        return;
      }
      {
        clearTimeout(timer);
        child.off('exit', exitedEarly);
        resolve({
          name,
          url: event.url,
          pid: child.pid!,
          process: child,
          async stop(graceMs = 10_000) {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGTERM');
            const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            await exited;
            clearTimeout(killer);
          },
        });
      }
    });
  });
}
