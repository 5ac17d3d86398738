import { type Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';

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

/**
 * Seconds that `count` operations take, with `concurrency` in flight, once `warmup` operations have
 * completed. The pipeline is kept full from the first warm-up operation to the last measured one,
 * so a measured slice neither starts empty nor ends draining. For operations of milliseconds each,
 * a fixed count measures without the rounding error of counting operations in a fixed time, and
 * keeps a slice short enough to be compared with the slices taken just before and after it on a
 * machine whose speed drifts.
 */
export async function secondsFor(op: () => Promise<unknown>, count: number, { warmup = 1, concurrency = 1 } = {}): Promise<number> {
  const total = warmup + count;
  let done = 0;
  let start = performance.now();
  let end = start;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (done < total) {
        await op();
        done++;
        if (done === warmup) start = performance.now();
        if (done === total) end = performance.now();
      }
    }),
  );
  return (end - start) / 1000;
}

/** One POST over a keep-alive agent; resolves to the response's body and headers, rejects on anything but 200. */
export function httpPost(agent: Agent, url: URL, body: string, headers: Record<string, string> = {}): Promise<{ body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve({ body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }) : reject(new Error(`HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `x` rounded to `places` decimal places (for the JSON reports). */
export function round(x: number, places: number): number {
  const f = 10 ** places;
  return Math.round(x * f) / f;
}

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The q-quantile of a list of numbers by nearest rank (q = 0.99: the value 99% of them do not exceed). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
