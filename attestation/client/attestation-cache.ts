/**
 * Verified enclaves by boot id, each kept until it is older than the maximum age (then the client
 * attests again with a fresh nonce). One entry is the *current* enclave: the one the client seals
 * to. Several enclaves can sit behind one gateway; a receipt names its own (`iss`).
 */
import type { AttestedEnclave } from './enclave-attestation';

export const DEFAULT_MAX_AGE_MS = 5 * 60_000;

export class AttestationCache {
  private readonly byBoot = new Map<string, AttestedEnclave>();
  private currentBootId: string | undefined;
  readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(maxAgeMs: number = DEFAULT_MAX_AGE_MS, now: () => number = Date.now) {
    if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) throw new RangeError('maxAgeMs must be a non-negative number');
    this.maxAgeMs = maxAgeMs;
    this.now = now;
  }

  /** Stores a verified enclave; `current` makes it the one to seal to. */
  put(enclave: AttestedEnclave, current: boolean): void {
    this.byBoot.set(enclave.bootId, enclave);
    if (current) this.currentBootId = enclave.bootId;
  }

  /** The entry for `bootId` if it is still within the maximum age. */
  get(bootId: string): AttestedEnclave | undefined {
    const e = this.byBoot.get(bootId);
    if (!e) return undefined;
    return this.now() - e.verifiedAt > this.maxAgeMs ? undefined : e;
  }

  /** The current enclave if still fresh. */
  current(): AttestedEnclave | undefined {
    return this.currentBootId === undefined ? undefined : this.get(this.currentBootId);
  }

  /** The current enclave even when expired (for display), or undefined before the first attestation. */
  last(): AttestedEnclave | undefined {
    return this.currentBootId === undefined ? undefined : this.byBoot.get(this.currentBootId);
  }

  /** Forgets an enclave (it restarted, or the gateway no longer routes to it). */
  forget(bootId: string): void {
    this.byBoot.delete(bootId);
    if (this.currentBootId === bootId) this.currentBootId = undefined;
  }

  get size(): number {
    return this.byBoot.size;
  }
}
