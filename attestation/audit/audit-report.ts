/**
 * What an audit found: failures (each naming the entry index when there is one) and, per enclave
 * image (PCR0), the boots, receipts, time range and receipt sequence gaps.
 */
import type { ErrorCode } from '../errors';
import type { AuditState } from './audit-state';

export interface AuditFailure {
  /** The log index of the offending entry, when the failure is about one entry. */
  readonly index?: number;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface SequenceGap {
  readonly bootId: string;
  /**
   * Runs of sequence numbers below the highest logged one that are missing from the log, each
   * `[first, last]` inclusive: one run per hole, so the report stays as small as the log however
   * large a seq a receipt claims.
   */
  readonly missing: readonly (readonly [number, number])[];
  /** How many sequence numbers the runs hold. */
  readonly count: number;
}

/** A run of missing sequence numbers and the logged seq that follows it. */
export interface SeqHole {
  readonly first: number;
  readonly last: number;
  readonly next: number;
}

/**
 * The holes in a boot's receipt numbering (from 0, no gaps), in order. Linear in the number of
 * logged receipts after the sort, never in the size of the seq values.
 */
export function seqHoles(seqs: Iterable<number>): SeqHole[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const holes: SeqHole[] = [];
  let expected = 0;
  for (const seq of sorted) {
    if (seq > expected) holes.push({ first: expected, last: seq - 1, next: seq });
    expected = seq + 1;
  }
  return holes;
}

export interface ImageSummary {
  /** Hex PCR0 (the enclave image measurement). */
  readonly pcr0: string;
  readonly boots: number;
  readonly receipts: number;
  /** ISO 8601 times of the earliest and latest boot document or receipt. */
  readonly firstSeen?: string;
  readonly lastSeen?: string;
  readonly gaps: readonly SequenceGap[];
}

export interface AuditReport {
  readonly ok: boolean;
  readonly origin?: string;
  readonly verifierKey?: string;
  /** How the verifier key was obtained: given, pinned in the state, or fetched (trust on first use). */
  readonly keySource?: 'option' | 'state' | 'fetched';
  readonly checkpoint?: { readonly size: number; readonly rootHash: string };
  readonly previous?: { readonly size: number; readonly rootHash: string };
  readonly entries: number;
  readonly attestations: number;
  readonly receipts: number;
  readonly images: readonly ImageSummary[];
  readonly failures: readonly AuditFailure[];
  /** The state to keep for the next run (only when ok). */
  readonly state?: AuditState;
}

/** Per-image tallies while replaying. */
export class ImageTally {
  private readonly images = new Map<string, { boots: Set<string>; receipts: number; first: number; last: number; seqs: Map<string, number[]> }>();

  private image(pcr0: string) {
    let img = this.images.get(pcr0);
    if (!img) {
      img = { boots: new Set(), receipts: 0, first: Infinity, last: -Infinity, seqs: new Map() };
      this.images.set(pcr0, img);
    }
    return img;
  }

  private seen(img: { first: number; last: number }, timeMs: number): void {
    if (Number.isFinite(timeMs)) {
      img.first = Math.min(img.first, timeMs);
      img.last = Math.max(img.last, timeMs);
    }
  }

  boot(pcr0: string, bootId: string, timeMs: number): void {
    const img = this.image(pcr0);
    img.boots.add(bootId);
    this.seen(img, timeMs);
  }

  receipt(pcr0: string, bootId: string, seq: number, timeMs: number): void {
    const img = this.image(pcr0);
    img.receipts++;
    this.seen(img, timeMs);
    const list = img.seqs.get(bootId) ?? [];
    list.push(seq);
    img.seqs.set(bootId, list);
  }

  summaries(): ImageSummary[] {
    return [...this.images].map(([pcr0, img]) => {
      const gaps: SequenceGap[] = [];
      for (const [bootId, seqs] of img.seqs) {
        const holes = seqHoles(seqs);
        if (holes.length > 0) {
          gaps.push({ bootId, missing: holes.map((h) => [h.first, h.last] as const), count: holes.reduce((n, h) => n + h.last - h.first + 1, 0) });
        }
      }
      return {
        pcr0,
        boots: img.boots.size,
        receipts: img.receipts,
        ...(Number.isFinite(img.first) ? { firstSeen: new Date(img.first).toISOString(), lastSeen: new Date(img.last).toISOString() } : {}),
        gaps,
      };
    });
  }
}
