/**
 * The auditor: checks a transparency log end to end, in this order.
 *  1. key        the log's verifier key: given, pinned in the state, or fetched on first use;
 *  2. checkpoint its signed note verifies with that key and names the key's origin;
 *  3. consistency the log's consistency proof from the last checkpoint seen (the state) verifies;
 *  4. replay     every entry bundle and level-0 tile: each entry's leaf hash equals the tile's
 *                hash at its index, and the tiles' tree has the checkpoint's root (and, at the old
 *                size, the old root), so the tiles and therefore the entries are authenticated;
 *  5. entries    each attestation verifies (chain to the trusted roots at its own time, signature,
 *                measurement policy) and binds its manifest; each receipt names a logged and
 *                verified boot attestation (att), is signed by that enclave's receipt key, names
 *                its boot and a model of its manifest;
 *  6. sequences  per enclave boot, receipt seq numbers have no gaps and no repeats.
 * Evidence failures are collected (each with its entry index); the report is ok only without any.
 * Browser-safe.
 */
import { bytesEqual, fromBase64, sha384, toBase64, toHex } from '../bytes';
import { TeegateError, isTeegateError } from '../errors';
import { openCheckpoint, type Checkpoint } from '../log/checkpoint';
import { decodeEntry, entryLeafHash } from '../log/entry';
import { MerkleTree, verifyConsistency } from '../log/merkle';
import { parseVerifierKey } from '../log/signed-note';
import { TILE_WIDTH, tileWidth } from '../log/tiles';
import { verifyManifestBinding, type EnclaveManifest } from '../manifest';
import type { MeasurementPolicy } from '../nitro/policy';
import { verifyAttestation } from '../nitro/verify';
import { CertificateCache } from '../x509/certificate-cache';
import { unverifiedClaims, verifyReceipt } from '../receipt';
import { ImageTally, seqHoles, type AuditFailure, type AuditReport } from './audit-report';
import type { AuditState } from './audit-state';
import type { LogClient } from './log-client';

export interface AuditOptions {
  readonly client: LogClient;
  /** The log's verifier key (`<origin>+<id>+<key>`); default: the state's, else fetched from the log. */
  readonly verifierKey?: string;
  /** The previous run's state (last checkpoint seen). */
  readonly state?: AuditState;
  /** Measurement policy every logged attestation must meet. */
  readonly policy?: MeasurementPolicy;
  /** Trusted roots for attestation documents (default AWS Nitro Root-G1). */
  readonly rootCertificates?: readonly (Uint8Array | string)[];
  readonly onProgress?: (done: number, total: number) => void;
  /** Stop collecting after this many failures (default 100). */
  readonly maxFailures?: number;
}

interface LoggedEnclave {
  readonly index: number;
  readonly pcr0: string;
  readonly manifest: EnclaveManifest;
}

class TooManyFailures extends Error {}

/** The receipt's `att` claim (which boot attestation it names), read before the receipt is verified against it. */
function receiptAtt(jws: string): string {
  const c = unverifiedClaims(jws);
  if (c === undefined) throw new TeegateError('RECEIPT_INVALID', 'receipt is not a compact JWS with a JSON payload');
  if (typeof c.att !== 'string') throw new TeegateError('RECEIPT_INVALID', 'receipt has no att claim');
  return c.att;
}

export async function auditLog(options: AuditOptions): Promise<AuditReport> {
  const { client, state } = options;
  const failures: AuditFailure[] = [];
  const maxFailures = options.maxFailures ?? 100;
  const fail = (code: AuditFailure['code'], message: string, index?: number) => {
    failures.push({ ...(index !== undefined ? { index } : {}), code, message });
    if (failures.length >= maxFailures) throw new TooManyFailures();
  };
  const empty = { entries: 0, attestations: 0, receipts: 0, images: [] };

  // 1. key
  if (state && options.verifierKey && state.verifierKey !== options.verifierKey) {
    throw new TeegateError('AUDIT_STATE_INVALID', 'the given log key is not the one pinned in the state file');
  }
  const keySource = options.verifierKey ? 'option' : state ? 'state' : 'fetched';
  const verifierKeyText = options.verifierKey ?? state?.verifierKey ?? (await client.verifierKey());
  let logKey;
  try {
    logKey = await parseVerifierKey(verifierKeyText);
  } catch (err) {
    throw new TeegateError('AUDIT_STATE_INVALID', `log key: ${(err as Error).message}`);
  }
  const base = { verifierKey: verifierKeyText, keySource, origin: logKey.name } as const;
  // The state's own note must be the checkpoint it records, signed by the key it pins: an edited or
  // damaged state file is the auditor's problem, not evidence that the log forked.
  if (state) {
    let recorded: Checkpoint | undefined;
    try {
      ({ checkpoint: recorded } = await openCheckpoint(state.checkpoint.note, logKey, { origin: state.origin }));
    } catch (err) {
      if (!isTeegateError(err)) throw err;
    }
    if (!recorded || recorded.size !== state.checkpoint.size || toBase64(recorded.rootHash) !== state.checkpoint.rootHash) {
      throw new TeegateError('AUDIT_STATE_INVALID', "the state's checkpoint note is not a checkpoint of its size and root signed by its log key: the state file was edited or damaged");
    }
  }

  // 2. checkpoint
  let checkpoint: Checkpoint;
  const note = await client.checkpoint();
  try {
    ({ checkpoint } = await openCheckpoint(note, logKey));
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    return { ok: false, ...base, ...empty, failures: [{ code: err.code, message: `checkpoint: ${err.message}` }] };
  }
  const current = { size: checkpoint.size, rootHash: toBase64(checkpoint.rootHash) };
  const previous = state ? { size: state.checkpoint.size, rootHash: state.checkpoint.rootHash } : undefined;

  // 3. consistency with the last checkpoint seen
  if (state) {
    try {
      if (state.origin !== checkpoint.origin) throw new TeegateError('LOG_INCONSISTENT', `the state is for log ${state.origin}, this is ${checkpoint.origin}`);
      const oldRoot = fromBase64(state.checkpoint.rootHash);
      const proof = state.checkpoint.size < checkpoint.size && state.checkpoint.size > 0 ? await client.consistencyProof(state.checkpoint.size, checkpoint.size) : [];
      await verifyConsistency(state.checkpoint.size, checkpoint.size, proof, oldRoot, checkpoint.rootHash);
    } catch (err) {
      if (!isTeegateError(err) || err.code === 'AUDIT_FETCH_FAILED') throw err;
      const message = `checkpoint of size ${checkpoint.size} is not consistent with the last one seen (size ${state.checkpoint.size}): ${err.message}`;
      return { ok: false, ...base, checkpoint: current, ...(previous ? { previous } : {}), ...empty, failures: [{ code: err.code, message }] };
    }
  }

  // 4.-6. replay
  const tree = new MerkleTree();
  const enclaves = new Map<string, LoggedEnclave>();
  const tally = new ImageTally();
  // The logged attestations share their AWS root and intermediates: parsed and verified once.
  const certificates = new CertificateCache();
  const receiptSeqs = new Map<string, { seq: number; index: number }[]>();
  // Attestations logged but refused (hex SHA-384 of the document → entry and code): a receipt that
  // names one is reported as naming a refused attestation, not one that was never logged.
  const refused = new Map<string, { index: number; code: string }>();
  const verifyBoot = async (document: Uint8Array, published: unknown) => {
    const verified = await verifyAttestation(document, {
      at: 'document',
      cache: certificates,
      ...(options.rootCertificates ? { rootCertificates: options.rootCertificates } : {}),
      ...(options.policy ? { policy: options.policy } : {}),
    });
    return { verified, manifest: await verifyManifestBinding(verified, published) };
  };
  let attestations = 0;
  let receipts = 0;
  const bundles = Math.ceil(checkpoint.size / TILE_WIDTH);
  try {
    for (let n = 0; n < bundles; n++) {
      const width = tileWidth(0, n, checkpoint.size);
      const first = n * TILE_WIDTH;
      const tile = await client.tile(0, n, width);
      let entries: Uint8Array[];
      try {
        entries = await client.entryBundle(n, width);
      } catch (err) {
        if (!isTeegateError(err, 'LOG_ENTRY_MALFORMED')) throw err;
        fail('AUDIT_ENTRY_MISMATCH', `entry bundle ${n} (entries ${first}..${first + width - 1}): ${err.message}`, first);
        entries = [];
      }
      await tree.appendAll(tile);
      for (let i = 0; i < entries.length; i++) {
        const index = first + i;
        const bytes = entries[i]!;
        if (!bytesEqual(await entryLeafHash(bytes), tile[i]!)) {
          fail('AUDIT_ENTRY_MISMATCH', `entry ${index} does not match the tree: its leaf hash differs from the tile hash at its index`, index);
          continue;
        }
        try {
          const entry = decodeEntry(bytes);
          if (entry.type === 'attestation') {
            attestations++;
            const { verified, manifest } = await verifyBoot(entry.document, entry.manifest).catch(async (err: unknown) => {
              if (isTeegateError(err)) refused.set(toHex(await sha384(entry.document)), { index, code: err.code });
              throw err;
            });
            const pcr0 = toHex(verified.pcrs.get(0) ?? new Uint8Array(0));
            if (!enclaves.has(verified.documentSha384)) enclaves.set(verified.documentSha384, { index, pcr0, manifest });
            tally.boot(pcr0, manifest.boot_id, verified.timestamp);
          } else {
            receipts++;
            const att = receiptAtt(entry.jws);
            const enclave = enclaves.get(att);
            if (!enclave) {
              const refusal = refused.get(att);
              const why = refusal ? `which was logged at entry ${refusal.index} but refused (${refusal.code})` : 'which is not logged before it';
              fail('AUDIT_ATTESTATION_MISSING', `receipt at entry ${index} names boot attestation ${att.slice(0, 16)}… ${why}`, index);
              continue;
            }
            const claims = await verifyReceipt({ receipt: entry.jws, attestation: { documentSha384: att }, manifest: enclave.manifest });
            tally.receipt(enclave.pcr0, claims.iss, claims.seq, claims.iat * 1000);
            const key = `${enclave.pcr0}/${claims.iss}`;
            const list = receiptSeqs.get(key) ?? [];
            list.push({ seq: claims.seq, index });
            receiptSeqs.set(key, list);
          }
        } catch (err) {
          if (!isTeegateError(err)) throw err;
          fail(err.code, `entry ${index}: ${err.message}`, index);
        }
      }
      options.onProgress?.(first + width, checkpoint.size);
    }

    // The tiles (which the entries matched) must be the tree the checkpoints sign.
    if (!bytesEqual(await tree.root(checkpoint.size), checkpoint.rootHash)) {
      fail('AUDIT_ENTRY_MISMATCH', `the log's tiles do not lead to the root of checkpoint ${checkpoint.size}: entries were rewritten or removed`);
    }
    if (state && state.checkpoint.size <= checkpoint.size && !bytesEqual(await tree.root(state.checkpoint.size), fromBase64(state.checkpoint.rootHash))) {
      fail('LOG_INCONSISTENT', `the replayed tree at size ${state.checkpoint.size} does not have the root of the last checkpoint seen`);
    }

    // Sequence gaps and repeats, per boot.
    for (const [key, list] of receiptSeqs) {
      const bootId = key.slice(key.indexOf('/') + 1);
      const bySeq = new Map<number, number>();
      for (const { seq, index } of list) {
        const earlier = bySeq.get(seq);
        if (earlier !== undefined) fail('AUDIT_SEQUENCE_GAP', `receipt seq ${seq} of boot ${bootId} is logged twice (entries ${earlier} and ${index})`, index);
        else bySeq.set(seq, index);
      }
      for (const { first, last, next } of seqHoles(bySeq.keys())) {
        const what = first === last ? `seq ${first}` : `seq ${first} to ${last} (${last - first + 1} receipts)`;
        fail('AUDIT_SEQUENCE_GAP', `boot ${bootId} has no logged receipt with ${what} (the log continues with seq ${next} at entry ${bySeq.get(next)})`, bySeq.get(next));
      }
    }
  } catch (err) {
    if (!(err instanceof TooManyFailures)) throw err;
  }

  const ok = failures.length === 0;
  return {
    ok,
    ...base,
    checkpoint: current,
    ...(previous ? { previous } : {}),
    entries: checkpoint.size,
    attestations,
    receipts,
    images: tally.summaries(),
    failures,
    ...(ok ? { state: { version: 1, origin: checkpoint.origin, verifierKey: verifierKeyText, checkpoint: { ...current, note } } } : {}),
  };
}
