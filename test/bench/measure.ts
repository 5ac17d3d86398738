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

/** Completed operations per second with `concurrency` operations kept in flight (a server's view). */
export async function opsPerSecondConcurrent(op: () => Promise<unknown>, concurrency: number, seconds = 3, warmupSeconds = 0.5): Promise<number> {
  const runFor = async (s: number): Promise<number> => {
    const end = performance.now() + s * 1000;
    let n = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          await op();
          n++;
        }
      }),
    );
    return n;
  };
  await runFor(warmupSeconds);
  const start = performance.now();
  const n = await runFor(seconds);
  return n / ((performance.now() - start) / 1000);
}
