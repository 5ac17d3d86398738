/** HTTP headers of the teegate protocol (docs/enclave-api.md), shared by enclave, gateway and clients. */

/** The enclave's receipt JWS for the inference it answered. */
export const RECEIPT_HEADER = 'teegate-receipt';
/** The gateway's transparency-log index of that receipt. */
export const LOG_INDEX_HEADER = 'teegate-log-index';
/** Sealed requests: the kid of the seal key the JWE is encrypted to. */
export const SEAL_KID_HEADER = 'teegate-seal-kid';
/** The gateway's id of the enclave that answered. */
export const ENCLAVE_HEADER = 'teegate-enclave';

/**
 * W3C Server-Timing (https://www.w3.org/TR/server-timing/) on inference answers: where the time
 * went, in milliseconds. The enclave sends `infer` (its inference, receipt included); the gateway
 * passes the enclave's `infer` on and adds `enclave` (the relay: request out, answer in, which
 * `infer` is part of), `log` (the receipt's durable append) and `total` (from the request's arrival
 * to the answer being ready, which the others are part of).
 */
export const SERVER_TIMING_HEADER = 'server-timing';

/** `name;dur=ms, …` with the durations to 0.001 ms. */
export function formatServerTiming(durations: Readonly<Record<string, number>>): string {
  return Object.entries(durations)
    .map(([name, ms]) => `${name};dur=${ms.toFixed(3)}`)
    .join(', ');
}

const METRIC_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const DURATION = /^\d{1,12}(\.\d{1,6})?$/;

/**
 * The `dur` of each metric of a Server-Timing value: metrics without a plain decimal one are
 * left out (the value may come from another party; nothing in it is trusted beyond a decimal number).
 * A metric's parameters are read up to its first `dur` (the gateway reads the enclave's on every inference).
 */
export function parseServerTiming(value: string | undefined): Record<string, number> {
  const out = Object.create(null) as Record<string, number>; // a metric named __proto__ stays data
  for (const metric of (value ?? '').split(',')) {
    const params = metric.split(';');
    const name = params[0]!.trim();
    if (!METRIC_NAME.test(name)) continue;
    for (let i = 1; i < params.length; i++) {
      const param = params[i]!.trim();
      if (!param.startsWith('dur=')) continue;
      const dur = param.slice(4);
      if (DURATION.test(dur)) out[name] = Number(dur);
      break; // the first dur is the metric's
    }
  }
  return out;
}
