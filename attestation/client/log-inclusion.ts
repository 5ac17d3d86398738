/**
 * The `log` step: is this receipt in the transparency log? The client fetches the latest signed
 * checkpoint (`GET /v1/log/checkpoint`), verifies it with the log key the caller pinned (a C2SP
 * signed-note verifier key `name+keyid+base64`), then the RFC 9162 inclusion proof of its entry
 * (`GET /v1/log/proof/inclusion?index=N&size=M`) against the checkpoint's root. The leaf is the
 * entry's canonical encoding (attestation/log/entry.ts), rebuilt from the receipt the caller holds.
 * An entry the log has not integrated yet is `pending`, not failed; so is a log the client could
 * not reach (the gateway may delay, but cannot forge a proof).
 */
import { fromBase64, fromHex } from '../bytes';
import { TeegateError, isTeegateError } from '../errors';
import { openCheckpoint, type Checkpoint } from '../log/checkpoint';
import { encodeEntry, entryLeafHash } from '../log/entry';
import { MAX_PROOF_ELEMENTS, verifyInclusion } from '../log/merkle';
import { parseVerifierKey, type NoteVerifierKey } from '../log/signed-note';
import { jsonObject, type GatewayHttp } from './http';
import type { ReportStepOutcome } from './report';

export interface LogCheckOptions {
  /** The log's verifier key (`name+keyid+base64`), pinned by the caller. Without it the step is skipped. */
  readonly logKey?: string;
  /** Keep polling the checkpoint this long for the entry to be integrated (default 0: answer pending). */
  readonly waitMs?: number;
  readonly pollMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function proofHash(value: unknown, i: number): Uint8Array {
  if (typeof value === 'string') {
    try {
      const bytes = /^[0-9a-f]{64}$/.test(value) ? fromHex(value) : fromBase64(value);
      if (bytes.length === 32) return bytes;
    } catch {
      // fall through
    }
  }
  throw new TeegateError('LOG_PROOF_INVALID', `inclusion proof element ${i} is not a 32-byte hash (base64 or hex)`);
}

/** Parses `{proof: [hash, ...]}` (also `hashes`); the proof is attacker-controlled. */
export function parseInclusionProof(value: unknown): Uint8Array[] {
  const o = jsonObject(value, 'inclusion proof answer');
  const list = o.proof ?? o.hashes;
  if (!Array.isArray(list) || list.length > MAX_PROOF_ELEMENTS) throw new TeegateError('LOG_PROOF_INVALID', `inclusion proof answer has no proof array of at most ${MAX_PROOF_ELEMENTS} hashes`);
  return list.map(proofHash);
}

/** The log's latest checkpoint, its signature checked against `logKey` (a note verifier key). */
export async function latestCheckpoint(http: GatewayHttp, logKey: string | NoteVerifierKey): Promise<Checkpoint> {
  const key = typeof logKey === 'string' ? await parseVerifierKey(logKey.trim()) : logKey;
  const answer = await http.ok('/v1/log/checkpoint');
  return (await openCheckpoint(answer.text, key)).checkpoint;
}

/** RFC 9162 inclusion of `leaf` at `index` under `checkpoint`, with the proof the log serves. Throws LOG_PROOF_INVALID. */
export async function verifyLeafInclusion(http: GatewayHttp, leaf: Uint8Array, index: number, checkpoint: Checkpoint): Promise<void> {
  const proof = parseInclusionProof(await http.getJson(`/v1/log/proof/inclusion?index=${index}&size=${checkpoint.size}`));
  await verifyInclusion(leaf, index, checkpoint.size, proof, checkpoint.rootHash);
}

function outcome(status: ReportStepOutcome['status'], reason: string, code?: ReportStepOutcome['code']): ReportStepOutcome {
  return { step: 'log', status, reason, ...(code ? { code } : {}) };
}

export async function checkLogInclusion(http: GatewayHttp, receipt: string, index: number | undefined, options: LogCheckOptions): Promise<ReportStepOutcome> {
  if (index === undefined) return outcome('skipped', 'the gateway returned no log index');
  if (options.logKey === undefined) return outcome('skipped', `log index ${index}; no log key pinned (logKey / --log-key), inclusion not checked`);
  try {
    const key = await parseVerifierKey(options.logKey.trim());
    const leaf = await entryLeafHash(encodeEntry({ type: 'receipt', jws: receipt }));
    const deadline = Date.now() + (options.waitMs ?? 0);
    let checkpoint = await latestCheckpoint(http, key);
    while (checkpoint.size <= index && Date.now() < deadline) {
      await sleep(Math.min(options.pollMs ?? 250, Math.max(0, deadline - Date.now())));
      checkpoint = await latestCheckpoint(http, key);
    }
    if (checkpoint.size <= index) return outcome('pending', `log index ${index} is not yet in the latest checkpoint (size ${checkpoint.size}); check again later`);
    await verifyLeafInclusion(http, leaf, index, checkpoint);
    return outcome('passed', `entry ${index} included in checkpoint ${checkpoint.origin} size ${checkpoint.size}, signed by ${key.name}`);
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    const transient = err.action === 'retry' || err.code === 'ROUTE_NOT_FOUND';
    return outcome(transient ? 'pending' : 'failed', transient ? `log not reachable: ${err.message}` : err.message, err.code);
  }
}
