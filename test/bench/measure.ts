/** Shared timing loop for benchmarks: warm up, then count completed operations for a fixed time. */
export async function opsPerSecond(op: () => unknown | Promise<unknown>, seconds = 3, warmupSeconds = 0.5): Promise<number> {
  const until = (s: number) => performance.now() + s * 1000;
  for (const end = until(warmupSeconds); performance.now() < end; ) await op();
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    await op();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Prints progress to stderr and the one JSON result as the last line of stdout. */
export function report(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}
