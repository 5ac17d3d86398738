/**
 * bench:gateway — the same model through the enclave directly and through the gateway, in one run,
 * on loopback: throughput with autocannon (64 connections; ten alternating slices of 3 s per side, 30 s per side
 * in all; BENCH_ROUNDS and BENCH_SLICE_SECONDS override). The enclave and
 * the gateway run as their own processes, as deployed; the gateway verifies the enclave's
 * attestation, checks API keys and rate limits, relays, and appends every receipt to the
 * transparency log (file store) before answering.
 * Primary case: the shipped real model (PP-OCRv4 text recognition) on the shipped demo line.
 * Latency (the p50/p99 fields): the same 64 connections at a fixed offered load of half the direct
 * side's saturated rate, open loop, alternating slices; the saturated (closed-loop) percentiles, which
 * are the queue's length over the throughput, are reported under `saturated`.
 * BENCH_INSTANCES and BENCH_THREADS tune the real model's sessions (default: one, on onnxruntime's threads).
 * BENCH_TOPOLOGY=separate runs the enclave on a vCPU of its own (the last; onnxruntime on one thread
 * unless BENCH_THREADS says otherwise) and everything else on the others, as a Nitro host gives an
 * enclave vCPUs of its own (taskset); the default, `shared`, lets every process use every vCPU.
 * Also reported: one connection at a time, direct and gateway requests alternating (the gateway's
 * own latency per request, free of queueing, to 0.01 ms, and where it goes, from Server-Timing),
 * and the tiny generated affine model (the gateway's cost when inference costs almost nothing).
 * The floor, in the same run (`floor`): a bare node:http relay (bare-relay.ts) in the gateway's
 * place, with and without a durable append of each answer: what one more HTTP hop and one more
 * O_DSYNC write cost on this machine, whatever a gateway does besides; measured like the gateway:
 * saturated throughput (the durable relay, a third side in each round), at the fixed load, and one
 * connection at a time.
 * Last line of stdout: one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Agent } from 'node:http';
import { fromBase64 } from '../../attestation/bytes';
import { parseServerTiming } from '../../attestation/headers';
import { importDevCa, type DevCaJson } from '../../attestation/dev/dev-ca';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { pcrHex, REPO_ROOT } from '../../enclave/measurement';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { startChildService } from '../../infra/dev-stack/child-service';
import { DEMO_MODEL, demoRequest } from '../support/demo';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';
import { httpPost, log, median, quantile, report, round } from './measure';

/** Alternating slices per side, and their length in seconds: 10 x 3 s = 30 s per side by default. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SLICE = Number(process.env.BENCH_SLICE_SECONDS ?? 3);
/** Requests per side one connection at a time (alternating, for the gateway's own latency). */
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 300);
const CONNECTIONS = 64;
const TOPOLOGY = process.env.BENCH_TOPOLOGY ?? 'shared';
if (TOPOLOGY !== 'shared' && TOPOLOGY !== 'separate') throw new Error(`BENCH_TOPOLOGY must be shared or separate, not ${TOPOLOGY}`);

/** CPU lists (taskset -c) in the separate topology: the enclave's, and everything else's. */
function separateCpus(): { enclave: string; others: string } {
  const n = availableParallelism();
  if (n < 2) throw new Error('BENCH_TOPOLOGY=separate needs at least 2 vCPUs');
  return { enclave: String(n - 1), others: n === 2 ? '0' : `0-${n - 2}` };
}

/** Binds every thread of `pid` to `cpus` (threads started later inherit it from theirs). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
const RUN_TS = join(REPO_ROOT, 'bin', 'run-ts');

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

async function load(url: string, body: string, headers: Record<string, string>, connections: number, seconds: number): Promise<Load> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...headers },
    body,
    timeout: 60,
  });
  return {
    rps: round(result.requests.average, 1),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx, // autocannon counts timeouts among its errors
    requests: result.requests.total,
  };
}


/** Rounds of one side added up: requests over the total time; the median round's p50 and p99. */
function combine(runs: Load[], seconds: number): Load {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  return {
    rps: round(requests / seconds, 1),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    requests,
  };
}

/**
 * One connection at a time, alternating direct and gateway request by request (so both see the
 * same machine): each side's p50 and the median of the paired differences, in ms to 0.01; and where
 * the gateway's time went, from the Server-Timing headers (the enclave's `infer`, the gateway's
 * `enclave`, `log` and `total`). Per pair, the overhead (gateway − direct latency) is exactly the sum
 * of: the client↔gateway path (latency − total), the gateway's own handling (total − enclave − log),
 * the log append, the gateway↔enclave path less the client↔enclave path, and the enclave's `infer`
 * difference; `where_ms` has the median of each.
 */
async function sequentialPaired(
  direct: URL,
  through: URL,
  body: string,
  auth: Record<string, string>,
  n: number,
  peers: Record<string, URL> = {},
): Promise<{ direct_p50_ms: number; gateway_p50_ms: number; p50_overhead_ms: number; peers_overhead_ms: Record<string, number>; where_ms: Record<string, number> }> {
  const peerNames = Object.keys(peers);
  const agents = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })] as const;
  const peerAgents = peerNames.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    const peerPosts = () => peerNames.map((name, j) => timedPost(peerAgents[j]!, peers[name]!, body, {}));
    for (let i = 0; i < 20; i++) await Promise.all([timedPost(agents[0], direct, body, {}), timedPost(agents[1], through, body, auth), ...peerPosts()]);
    const d: Answer[] = [];
    const g: Answer[] = [];
    const p: Answer[][] = peerNames.map(() => []);
    for (let i = 0; i < n; i++) {
      d.push(await timedPost(agents[0], direct, body, {}));
      g.push(await timedPost(agents[1], through, body, auth));
      for (let j = 0; j < peerNames.length; j++) p[j]!.push(await timedPost(peerAgents[j]!, peers[peerNames[j]!]!, body, {}));
    }
    const ms = (x: number) => round(x, 2);
    const perPair = (f: (gw: Answer, dr: Answer) => number) => ms(median(g.map((x, i) => f(x, d[i]!))));
    return {
      direct_p50_ms: ms(median(d.map((x) => x.ms))),
      gateway_p50_ms: ms(median(g.map((x) => x.ms))),
      p50_overhead_ms: perPair((gw, dr) => gw.ms - dr.ms),
      peers_overhead_ms: Object.fromEntries(peerNames.map((name, j) => [name, ms(median(p[j]!.map((x, i) => x.ms - d[i]!.ms)))])),
      where_ms: {
        ...Object.fromEntries(Object.entries(GATEWAY_PARTS).map(([name, part]) => [name, perPair(part)])),
        relay_path_less_direct_path: perPair((gw, dr) => timingOf(gw, 'enclave') - timingOf(gw, 'infer') - (dr.ms - timingOf(dr, 'infer'))),
        enclave_infer_difference: perPair((gw, dr) => timingOf(gw, 'infer') - timingOf(dr, 'infer')),
      },
    };
  } finally {
    for (const a of [...agents, ...peerAgents]) a.destroy();
  }
}

/** An answered request: its latency from the call, and its Server-Timing durations (ms). */
interface Answer {
  ms: number;
  timing: Record<string, number>;
}

/** One timed POST (httpPost), with the answer's Server-Timing. */
async function timedPost(agent: Agent, url: URL, body: string, headers: Record<string, string>): Promise<Answer> {
  const start = performance.now();
  const answer = await httpPost(agent, url, body, headers);
  const ms = performance.now() - start;
  const value = answer.headers['server-timing'];
  return { ms, timing: parseServerTiming(typeof value === 'string' ? value : undefined) };
}

/** `name` of an answer's Server-Timing; throws if the answer had none (every inference answer has). */
function timingOf(answer: Answer, name: string): number {
  const v = answer.timing[name];
  if (v === undefined) throw new Error(`an answer had no Server-Timing ${name}`);
  return v;
}

/** The gateway's own parts of an answer through it: the HTTP exchange with the client, its handling, the log append. */
const GATEWAY_PARTS: Record<string, (gw: Answer) => number> = {
  client_gateway_path: (gw) => gw.ms - timingOf(gw, 'total'),
  gateway_handling: (gw) => timingOf(gw, 'total') - timingOf(gw, 'enclave') - timingOf(gw, 'log'),
  log_append: (gw) => timingOf(gw, 'log'),
};

/**
 * Medians over every answer of a side at a fixed load: the enclave's own time (waiting for its
 * model included) and the rest of the way, the gateway's split as in one_connection.
 */
function whereAtLoad(direct: readonly Answer[], gateway: readonly Answer[], floor: readonly Answer[]) {
  const m = (answers: readonly Answer[], f: (a: Answer) => number) => round(median(answers.map(f)), 2);
  // Each answer's latency less the enclave's own `infer` (its Server-Timing, which the gateway and
  // the bare relay pass on): what the path to and from the enclave costs, free of how long the
  // model ran. The model's run time moves the slices' p50 by ±2 ms on this VM, more than the
  // gateway costs; these medians do not move with it.
  const outside = (answers: readonly Answer[]) => m(answers, (a) => a.ms - timingOf(a, 'infer'));
  const [d, g, f] = [outside(direct), outside(gateway), outside(floor)];
  return {
    outside_infer_p50_ms: { direct: d, gateway: g, floor: f, gateway_overhead: round(g - d, 2), floor_overhead: round(f - d, 2) },
    direct: { enclave_infer: m(direct, (a) => timingOf(a, 'infer')), client_enclave_path: d },
    gateway: {
      enclave_infer: m(gateway, (a) => timingOf(a, 'infer')),
      gateway_enclave_path: m(gateway, (a) => timingOf(a, 'enclave') - timingOf(a, 'infer')),
      ...Object.fromEntries(Object.entries(GATEWAY_PARTS).map(([name, part]) => [name, m(gateway, part)])),
    },
  };
}

interface FixedLoad {
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  answers: Answer[];
}

/**
 * Open-loop load at a fixed rate over at most `connections` keep-alive connections: request i is
 * sent at start + i / rate whether or not earlier ones have been answered, and its latency runs from
 * that call to the end of the answer (to 0.01 ms; a request waiting for a free connection counts
 * its wait). Below saturation this is the latency a client sees at that load, not queue length.
 */
async function fixedRate(url: URL, body: string, headers: Record<string, string>, rate: number, seconds: number, connections: number): Promise<FixedLoad> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const answers: Answer[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.floor(rate * seconds);
  try {
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(timedPost(agent, url, body, headers).then((a) => void answers.push(a), () => void errors++));
    }
    await Promise.all(pending);
  } finally {
    agent.destroy();
  }
  const ms = (x: number) => round(x, 2);
  const latencies = answers.map((a) => a.ms);
  return { p50: ms(median(latencies)), p99: ms(quantile(latencies, 0.99)), requests: latencies.length, errors, answers };
}

type Side = 'direct' | 'gateway' | 'floor';

/**
 * ROUNDS rounds of one slice per side, the order of the sides reversed every other round, the enclave
 * drained before each slice. This machine's speed halves for seconds to minutes at a time under
 * sustained load (a shared VM), more than the gateway costs: alternating short slices land drift on
 * both sides alike. Requests the load generator abandoned at the end of a slice would otherwise
 * still be queued at the enclave and slow down the next slice, whichever side it measures.
 */
async function alternating<S extends Side, T>(enclaveUrl: string, label: string, sides: readonly S[], run: (side: S) => Promise<T>): Promise<Record<S, T[]>> {
  const out = Object.fromEntries(sides.map((side) => [side, [] as T[]])) as Record<S, T[]>;
  for (let r = 0; r < ROUNDS; r++) {
    log(`${label}: round ${r + 1}/${ROUNDS} ...`);
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      await drained(enclaveUrl);
      out[side].push(await run(side));
    }
  }
  return out;
}

/** Waits until the enclave has no inference in flight (its /health), then a moment for sockets to close. */
async function drained(enclaveUrl: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const health = (await (await fetch(`${enclaveUrl}/health`)).json()) as { in_flight: number };
    if (health.in_flight === 0) break;
    if (Date.now() > deadline) throw new Error(`the enclave still has ${health.in_flight} inferences in flight after 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200));
}

/** Samples the enclave's in-flight inferences every 100 ms until the returned function is called (mean). */
function sampleInFlight(enclaveUrl: string): () => number {
  const xs: number[] = [];
  const timer = setInterval(() => {
    fetch(`${enclaveUrl}/health`)
      .then((r) => r.json())
      .then((h) => xs.push((h as { in_flight: number }).in_flight))
      .catch(() => undefined);
  }, 100);
  return () => {
    clearInterval(timer);
    return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-bench-gateway-'));
  // BENCH_INSTANCES and BENCH_THREADS set the real model's `instances` and `threads` (docs/enclave-api.md).
  const tuning = Object.fromEntries(
    (['instances', 'threads'] as const).flatMap((key) => {
      const value = process.env[`BENCH_${key.toUpperCase()}`] ?? (key === 'threads' && TOPOLOGY === 'separate' ? '1' : undefined);
      return value === undefined ? [] : [[key, Number(value)]];
    }),
  );
  const cpus = TOPOLOGY === 'separate' ? separateCpus() : undefined;
  if (cpus) pin(process.pid, cpus.others);
  const models = [...defaultModelConfigs().map((c) => ({ ...c, ...tuning })), ...tinyModelConfigs(dir)];
  const modelsFile = join(dir, 'models.json');
  writeFileSync(modelsFile, JSON.stringify(models));
  const quiet = () => undefined;

  const enclave = await startChildService('enclave', [RUN_TS, join(REPO_ROOT, 'enclave', 'cli.ts'), '--port', '0', '--data', dir, '--models', modelsFile], { onLog: quiet, readyTimeoutMs: 120_000 });
  try {
    // Started from this process, the others inherit its CPUs; the enclave's threads (onnxruntime's
    // included, started with its sessions) move to its own.
    if (cpus) pin(enclave.pid, cpus.enclave);
    // Pin what the enclave really is: its dev root and its measured PCRs, verified.
    const ca = await importDevCa(JSON.parse(readFileSync(join(dir, 'dev-ca.json'), 'utf8')) as DevCaJson);
    const att = (await (await fetch(`${enclave.url}/attestation`)).json()) as { document: string };
    const verified = await verifyAttestation(fromBase64(att.document), { rootCertificates: [ca.rootPem] });
    const pcrs = pcrHex(verified.pcrs);
    const apiKey = 'tg_bench_' + createHash('sha256').update(dir).digest('hex').slice(0, 24);
    const config = {
      port: 0,
      enclaves: [enclave.url],
      attestation: { rootCertificates: [ca.rootPem], policy: { pcrs } },
      auth: { keys: [{ id: 'bench', sha256: createHash('sha256').update(apiKey).digest('hex'), scopes: ['infer'] }] },
      limits: { rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 } },
      log: { store: 'file', dataDir: dir },
      logLevel: 'warn',
    };
    const configFile = join(dir, 'gateway.json');
    writeFileSync(configFile, JSON.stringify(config));
    const gateway = await startChildService('gateway', [RUN_TS, join(REPO_ROOT, 'gateway', 'main.ts'), '--config', configFile], { onLog: quiet, readyTimeoutMs: 60_000 });
    // The floor: bare relays in the gateway's place (bare-relay.ts), one appending durably to `dir`.
    const relayArgs = [RUN_TS, join(REPO_ROOT, 'test', 'bench', 'bare-relay.ts'), '--enclave', enclave.url];
    const relays = await Promise.all([startChildService('bare relay', relayArgs, { onLog: log }), startChildService('durable bare relay', [...relayArgs, '--append', dir], { onLog: log })]);
    const [bareRelay, durableRelay] = relays;
    try {
      const auth = { authorization: `Bearer ${apiKey}` };
      const cases = [
        { name: DEMO_MODEL, body: JSON.stringify(demoRequest()) },
        { name: 'affine', body: JSON.stringify(affineRequest()) },
      ];
      const base: Record<Side, string> = { direct: enclave.url, gateway: gateway.url, floor: durableRelay.url };
      const url = (side: Side, path: string): URL => new URL(`${base[side]}${path}`);
      const headers = (side: Side): Record<string, string> => (side === 'gateway' ? auth : {});
      const results: Record<string, { directRuns: Load[]; gatewayRuns: Load[]; floorRuns: Load[]; direct: Load; gateway: Load; floor: Load; pairedRatio: number; floorRatio: number; sequential: Awaited<ReturnType<typeof sequentialPaired>>; inFlightDirect: number; inFlightGateway: number }> = {};
      for (const c of cases) {
        const path = `/v2/models/${c.name}/infer`;
        log(`${c.name}: warm-up ...`);
        await load(`${enclave.url}${path}`, c.body, {}, 4, 2);
        await load(`${gateway.url}${path}`, c.body, auth, 4, 2);
        // The durable bare relay too: the throughput any process that relays and appends keeps.
        const runs = await alternating(enclave.url, `${c.name}: ${CONNECTIONS} connections, ${SLICE} s per side`, ['direct', 'gateway', 'floor'], async (side) => {
          const sampled = sampleInFlight(enclave.url);
          const run = await load(url(side, path).href, c.body, headers(side), CONNECTIONS, SLICE);
          return { run, inFlight: sampled() };
        });
        await drained(enclave.url);
        const directRuns = runs.direct.map((x) => x.run);
        const gatewayRuns = runs.gateway.map((x) => x.run);
        const floorRuns = runs.floor.map((x) => x.run);
        log(`${c.name}: one connection, ${SEQUENTIAL} requests per side, alternating ...`);
        const sequential = await sequentialPaired(url('direct', path), url('gateway', path), c.body, auth, SEQUENTIAL, {
          bare_relay: new URL(`${bareRelay.url}${path}`),
          durable_bare_relay: new URL(`${durableRelay.url}${path}`),
        });
        const mean = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length), 1);
        // Each round's two slices are seconds apart; the median of their ratios is what the machine's
        // slow phases (which can start or end within any slice) disturb least.
        const pairedRatio = median(gatewayRuns.map((g, i) => g.rps / directRuns[i]!.rps));
        results[c.name] = {
          directRuns,
          gatewayRuns,
          floorRuns,
          direct: combine(directRuns, SLICE * ROUNDS),
          gateway: combine(gatewayRuns, SLICE * ROUNDS),
          floor: combine(floorRuns, SLICE * ROUNDS),
          pairedRatio,
          floorRatio: median(floorRuns.map((f, i) => f.rps / directRuns[i]!.rps)),
          sequential,
          inFlightDirect: mean(runs.direct.map((x) => x.inFlight)),
          inFlightGateway: mean(runs.gateway.map((x) => x.inFlight)),
        };
      }
      const real = results[DEMO_MODEL]!;
      const tiny = results.affine!;
      // Latency at a fixed load: at saturation a closed-loop p50 is the queue (64 / rps), whatever
      // the gateway's own latency. Half the direct side's throughput, offered to both sides over
      // the same 64 connections, alternating slices as above (the real model only: the tiny
      // model's rate is beyond a timer-driven sender).
      const rate = Math.max(1, Math.round(median(real.directRuns.map((r) => r.rps)) / 2));
      const demoPath = `/v2/models/${DEMO_MODEL}/infer`;
      const fixed = await alternating(enclave.url, `${DEMO_MODEL}: fixed load ${rate}/s, ${SLICE} s per side`, ['direct', 'gateway', 'floor'], (side) =>
        fixedRate(url(side, demoPath), cases[0]!.body, headers(side), rate, SLICE, CONNECTIONS),
      );
      const ratio = (a: number, b: number) => round(a / b, 3);
      const sliceMedian = (runs: FixedLoad[], key: 'p50' | 'p99') => round(median(runs.map((r) => r[key])), 2);
      const answersOf = (side: Side) => fixed[side].flatMap((r) => r.answers);
      const atLoad = {
        direct_p50_ms: sliceMedian(fixed.direct, 'p50'),
        gateway_p50_ms: sliceMedian(fixed.gateway, 'p50'),
        direct_p99_ms: sliceMedian(fixed.direct, 'p99'),
        gateway_p99_ms: sliceMedian(fixed.gateway, 'p99'),
        requests: { direct: fixed.direct.reduce((n, r) => n + r.requests, 0), gateway: fixed.gateway.reduce((n, r) => n + r.requests, 0) },
        errors: [...fixed.direct, ...fixed.gateway].reduce((n, r) => n + r.errors, 0),
        p50_overhead_paired_ms: round(median(fixed.gateway.map((g, i) => g.p50 - fixed.direct[i]!.p50)), 2),
        where_ms: whereAtLoad(answersOf('direct'), answersOf('gateway'), answersOf('floor')),
        floor_p50_ms: sliceMedian(fixed.floor, 'p50'),
        floor_errors: fixed.floor.reduce((n, r) => n + r.errors, 0),
        floor_p50_overhead_paired_ms: round(median(fixed.floor.map((f, i) => f.p50 - fixed.direct[i]!.p50)), 2),
        gateway_over_floor_paired_ms: round(median(fixed.gateway.map((g, i) => g.p50 - fixed.floor[i]!.p50)), 2),
      };
      const p50Overhead = round(atLoad.gateway_p50_ms - atLoad.direct_p50_ms, 2);
      const floorOverhead = round(atLoad.floor_p50_ms - atLoad.direct_p50_ms, 2);
      report({
        model: DEMO_MODEL,
        model_tuning: tuning,
        topology: cpus ? { name: 'separate', enclave_cpus: cpus.enclave, other_cpus: cpus.others } : { name: 'shared' },
        connections: CONNECTIONS,
        seconds_per_side: SLICE * ROUNDS,
        slices_per_side: ROUNDS,
        per_slice_rps: { direct: real.directRuns.map((r) => r.rps), gateway: real.gatewayRuns.map((r) => r.rps), floor: real.floorRuns.map((r) => r.rps) },
        // Throughput: 64 connections closed-loop (saturated), totals over all slices per side;
        // gateway_vs_direct is the median over rounds of the two slices' ratio.
        direct_rps: real.direct.rps,
        gateway_rps: real.gateway.rps,
        // Latency: the same 64 connections at a fixed offered load (latency_basis), medians of the
        // slices' percentiles; `saturated` has the closed-loop percentiles, which are queueing (64 / rps).
        latency_basis: `64 connections, open loop at ${rate} requests/s to each side (half the direct side's saturated rate), ${ROUNDS} alternating slices of ${SLICE} s per side`,
        direct_p50_ms: atLoad.direct_p50_ms,
        gateway_p50_ms: atLoad.gateway_p50_ms,
        gateway_p99_ms: atLoad.gateway_p99_ms,
        errors: real.direct.errors + real.gateway.errors + atLoad.errors,
        gateway_vs_direct: round(real.pairedRatio, 3),
        gateway_vs_direct_of_totals: ratio(real.gateway.rps, real.direct.rps),
        p50_overhead_ms: p50Overhead,
        // What one more process on the path costs here whatever it does: a bare relay (one HTTP hop,
        // and a durable O_DSYNC append of each answer before it), in the same run. The gateway's
        // overhead over the floor's is what the gateway's own work adds.
        floor: {
          relay: 'test/bench/bare-relay.ts: node:http, keep-alive to the enclave, O_DSYNC append of each answer before answering',
          // Saturated throughput, as the gateway's (its slices in the same rounds).
          rps: real.floor.rps,
          floor_vs_direct: round(real.floorRatio, 3),
          p50_ms: atLoad.floor_p50_ms,
          p50_overhead_ms: floorOverhead,
          gateway_p50_overhead_over_floor_ms: round(p50Overhead - floorOverhead, 2),
          // Medians over rounds of the differences between slices of one round (the machine's speed
          // can change between rounds, which the medians of slices above do not see).
          paired: { floor_p50_overhead_ms: atLoad.floor_p50_overhead_paired_ms, gateway_p50_overhead_ms: atLoad.p50_overhead_paired_ms, gateway_over_floor_ms: atLoad.gateway_over_floor_paired_ms },
          errors: atLoad.floor_errors + real.floor.errors,
          one_connection_overhead_ms: {
            bare_relay: real.sequential.peers_overhead_ms.bare_relay,
            durable_bare_relay: real.sequential.peers_overhead_ms.durable_bare_relay,
            gateway: real.sequential.p50_overhead_ms,
          },
        },
        at_fixed_load: {
          rate_per_s: rate,
          direct_p99_ms: atLoad.direct_p99_ms,
          requests: atLoad.requests,
          errors: atLoad.errors,
          p50_overhead_paired_ms: atLoad.p50_overhead_paired_ms,
          where_ms: atLoad.where_ms,
          per_slice_p50_ms: { direct: fixed.direct.map((r) => r.p50), gateway: fixed.gateway.map((r) => r.p50), floor: fixed.floor.map((r) => r.p50) },
        },
        saturated: { direct_p50_ms: real.direct.p50, gateway_p50_ms: real.gateway.p50, gateway_p99_ms: real.gateway.p99, p50_overhead_ms: real.gateway.p50 - real.direct.p50 },
        one_connection: real.sequential,
        // Mean inferences in flight at the enclave (its /health, every 100 ms): equal means the
        // gateway keeps the enclave as busy as direct clients do.
        enclave_in_flight: { direct: real.inFlightDirect, gateway: real.inFlightGateway },
        tiny_model: {
          model: 'affine',
          direct_rps: tiny.direct.rps,
          gateway_rps: tiny.gateway.rps,
          gateway_vs_direct: round(tiny.pairedRatio, 3),
          gateway_vs_direct_of_totals: ratio(tiny.gateway.rps, tiny.direct.rps),
          floor_rps: tiny.floor.rps,
          floor_vs_direct: round(tiny.floorRatio, 3),
          errors: tiny.direct.errors + tiny.gateway.errors + tiny.floor.errors,
          saturated: { direct_p50_ms: tiny.direct.p50, gateway_p50_ms: tiny.gateway.p50, gateway_p99_ms: tiny.gateway.p99 },
          one_connection: tiny.sequential,
        },
        goals: { gateway_vs_direct: '>= 0.9', p50_overhead_ms: '<= 1', errors: 0 },
      });
    } finally {
      await Promise.all([gateway.stop(), ...relays.map((r) => r.stop())]);
    }
  } finally {
    await enclave.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:gateway failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
