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
  /** Sequence numbers below the highest logged one that are missing from the log. */
  readonly missing: readonly number[];
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
        const have = new Set(seqs);
        const max = Math.max(...seqs);
        const missing: number[] = [];
        for (let s = 0; s < max; s++) if (!have.has(s)) missing.push(s);
        if (missing.length > 0) gaps.push({ bootId, missing });
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
