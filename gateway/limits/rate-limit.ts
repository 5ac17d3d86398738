/**
 * Token-bucket rate limits, one bucket per subject (an API key id, or a client address for
 * anonymous routes). A bucket holds up to `burst` tokens and refills at `requestsPerSecond`;
 * a request takes one token or is refused with the time until one is available.
 */
import { TeegateError } from '../../attestation/errors';
import type { RateLimitConfig } from '../config';

interface Bucket {
  tokens: number;
  updatedMs: number;
  readonly limit: RateLimitConfig;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly defaults: RateLimitConfig,
    private readonly now: () => number = () => performance.now(),
    /** Buckets kept at most (the least recently created are dropped first: a full bucket is the default anyway). */
    private readonly maxBuckets = 100_000,
  ) {}

  /** Takes one token for `subject` or throws RATE_LIMITED carrying the seconds to wait. */
  take(subject: string, limit: RateLimitConfig = this.defaults): void {
    let bucket = this.refilled(subject, limit);
    if (!bucket) {
      if (this.buckets.size >= this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = { tokens: limit.burst, updatedMs: this.now(), limit };
      this.buckets.set(subject, bucket);
    }
    refuseIfEmpty(bucket);
    bucket.tokens -= 1;
  }

  /**
   * Throws RATE_LIMITED, as take would, when `subject` has no token left; takes nothing, and keeps
   * nothing for a subject without a bucket (its bucket would be full).
   */
  check(subject: string, limit: RateLimitConfig = this.defaults): void {
    const bucket = this.refilled(subject, limit);
    if (bucket) refuseIfEmpty(bucket);
  }

  /** `subject`'s bucket for `limit`, refilled up to now; undefined if it has none. */
  private refilled(subject: string, limit: RateLimitConfig): Bucket | undefined {
    const bucket = this.buckets.get(subject);
    if (!bucket || bucket.limit !== limit) return undefined;
    const now = this.now();
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * limit.requestsPerSecond);
    bucket.updatedMs = now;
    return bucket;
  }
}

function refuseIfEmpty(bucket: Bucket): void {
  if (bucket.tokens >= 1) return;
  throw new RateLimitedError(Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.limit.requestsPerSecond)));
}

export class RateLimitedError extends TeegateError {
  constructor(readonly retryAfterSeconds: number) {
    super('RATE_LIMITED', `rate limit exceeded: retry after ${retryAfterSeconds} s`);
  }
}
