/**
 * Reading the transparency log for display: the signed checkpoint (verified with the log key),
 * entries decoded into rows (claims read but not verified here: the inclusion check and the
 * receipt verifier do that), inclusion and consistency proofs checked with the verifier library.
 */
import { fromBase64, toBase64, toHex } from '../../../attestation/bytes';
import { unverifiedClaims } from '../../../attestation/receipt';
import { jsonObject, parseJson, type GatewayHttp } from '../../../attestation/client/http';
import { parseInclusionProof, verifyLeafInclusion } from '../../../attestation/client/log-inclusion';
import { parseCoseSign1 } from '../../../attestation/cose/sign1';
import { TeegateError, isTeegateError } from '../../../attestation/errors';
import type { Checkpoint } from '../../../attestation/log/checkpoint';
import { decodeEntry, entryLeafHash, type AttestationEntry } from '../../../attestation/log/entry';
import { verifyConsistency } from '../../../attestation/log/merkle';
import { parseNitroPayload } from '../../../attestation/nitro/document';

export const PAGE = 256;

export interface LogRow {
  readonly index: number;
  /** The entry's canonical bytes, as the log serves them (the leaf hash input). */
  readonly bytes: Uint8Array;
  readonly kind: 'receipt' | 'attestation' | 'malformed';
  readonly bootId?: string;
  /** Milliseconds since the epoch: receipt `iat`, or the document's timestamp. */
  readonly time?: number;
  readonly model?: string;
  readonly seq?: number;
  /** PCR0 of an attestation entry (the enclave image). */
  readonly image?: string;
  readonly jws?: string;
  readonly attestation?: AttestationEntry;
  readonly error?: string;
}

function receiptRow(index: number, bytes: Uint8Array, jws: string): LogRow {
  const payload = unverifiedClaims(jws);
  if (payload === undefined) return { index, bytes, kind: 'receipt', jws, error: 'the receipt claims are unreadable' };
  const model = typeof payload.model === 'object' && payload.model !== null ? (payload.model as Record<string, unknown>) : {};
  return {
    index,
    bytes,
    kind: 'receipt',
    jws,
    ...(typeof payload.iss === 'string' ? { bootId: payload.iss } : {}),
    ...(typeof payload.iat === 'number' ? { time: payload.iat * 1000 } : {}),
    ...(typeof model.name === 'string' ? { model: `${model.name}${typeof model.version === 'string' ? `@${model.version}` : ''}` } : {}),
    ...(typeof payload.seq === 'number' ? { seq: payload.seq } : {}),
  };
}

function attestationRow(index: number, bytes: Uint8Array, entry: AttestationEntry): LogRow {
  const manifest = typeof entry.manifest === 'object' && entry.manifest !== null ? (entry.manifest as Record<string, unknown>) : {};
  const bootId = typeof manifest.boot_id === 'string' ? manifest.boot_id : undefined;
  try {
    const doc = parseNitroPayload(parseCoseSign1(entry.document).payload);
    const pcr0 = doc.pcrs.get(0);
    return { index, bytes, kind: 'attestation', attestation: entry, time: doc.timestamp, ...(bootId ? { bootId } : {}), ...(pcr0 ? { image: toHex(pcr0) } : {}) };
  } catch (err) {
    return { index, bytes, kind: 'attestation', attestation: entry, ...(bootId ? { bootId } : {}), error: isTeegateError(err) ? err.message : String(err) };
  }
}

export function decodeRow(index: number, bytes: Uint8Array): LogRow {
  try {
    const entry = decodeEntry(bytes);
    return entry.type === 'receipt' ? receiptRow(index, bytes, entry.jws) : attestationRow(index, bytes, entry);
  } catch (err) {
    return { index, bytes, kind: 'malformed', error: isTeegateError(err) ? err.message : String(err) };
  }
}

/** Entries [start, start + count) decoded, paging by 256. */
export async function fetchRows(http: GatewayHttp, start: number, count: number): Promise<LogRow[]> {
  const rows: LogRow[] = [];
  for (let at = start; at < start + count; at += PAGE) {
    const n = Math.min(PAGE, start + count - at);
    const body = jsonObject(parseJson('/v1/log/entries', (await http.ok(`/v1/log/entries?start=${at}&count=${n}`)).text), '/v1/log/entries answer');
    if (!Array.isArray(body.entries) || body.entries.length > n) throw new TeegateError('CLIENT_RESPONSE_INVALID', '/v1/log/entries: entries is not a list of at most the asked count');
    body.entries.forEach((e: unknown, i: number) => {
      if (typeof e !== 'string') throw new TeegateError('CLIENT_RESPONSE_INVALID', `/v1/log/entries: entry ${at + i} is not base64`);
      rows.push(decodeRow(at + i, fromBase64(e)));
    });
  }
  return rows;
}

/** The logged boot attestation of `bootId`, searched from the newest entry back (at most `limit` entries). */
export async function findLoggedAttestation(http: GatewayHttp, size: number, bootId: string, limit = 16 * PAGE): Promise<{ index: number; entry: AttestationEntry } | undefined> {
  for (let end = size; end > 0 && size - end < limit; end -= PAGE) {
    const start = Math.max(0, end - PAGE);
    const rows = await fetchRows(http, start, end - start);
    const hit = rows.reverse().find((r) => r.kind === 'attestation' && r.bootId === bootId && r.attestation);
    if (hit) return { index: hit.index, entry: hit.attestation! };
  }
  return undefined;
}

/** RFC 9162 inclusion of the row's leaf under the checkpoint. Throws LOG_PROOF_INVALID. */
export async function checkInclusion(http: GatewayHttp, row: LogRow, checkpoint: Checkpoint): Promise<void> {
  if (row.index >= checkpoint.size) throw new TeegateError('LOG_NOT_FOUND', `entry ${row.index} is not yet under the checkpoint (size ${checkpoint.size})`);
  await verifyLeafInclusion(http, await entryLeafHash(row.bytes), row.index, checkpoint);
}

export interface SeenCheckpoint {
  /** The log key it was verified with: another key (a new log under the same origin) starts afresh. */
  readonly logKey: string;
  readonly origin: string;
  readonly size: number;
  readonly root: string;
  readonly seenAt: number;
}

const SEEN_KEY = 'teegate.ui.checkpoint';

export function lastSeenCheckpoint(): SeenCheckpoint | undefined {
  try {
    const v = JSON.parse(localStorage.getItem(SEEN_KEY) ?? 'null') as SeenCheckpoint | null;
    return v && typeof v.size === 'number' && typeof v.root === 'string' && typeof v.origin === 'string' && typeof v.logKey === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

export function rememberCheckpoint(c: Checkpoint, logKey: string): void {
  localStorage.setItem(SEEN_KEY, JSON.stringify({ logKey, origin: c.origin, size: c.size, root: toBase64(c.rootHash), seenAt: Date.now() } satisfies SeenCheckpoint));
}

/** The log only grew since the checkpoint this browser saw last (RFC 9162 consistency). Throws LOG_INCONSISTENT. */
export async function checkConsistency(http: GatewayHttp, previous: SeenCheckpoint, current: Checkpoint): Promise<void> {
  if (previous.size > current.size) throw new TeegateError('LOG_INCONSISTENT', `the log shrank from ${previous.size} to ${current.size} entries since you last looked`);
  const proof = previous.size === current.size || previous.size === 0
    ? []
    : parseInclusionProof(parseJson('consistency proof', (await http.ok(`/v1/log/proof/consistency?from=${previous.size}&to=${current.size}`)).text));
  await verifyConsistency(previous.size, current.size, proof, fromBase64(previous.root), current.rootHash);
}
