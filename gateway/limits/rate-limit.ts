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
    this.refill(subject, limit, true);
  }

  /** Throws RATE_LIMITED, as take would, when `subject` has no token left; takes nothing. */
  check(subject: string, limit: RateLimitConfig = this.defaults): void {
    this.refill(subject, limit, false);
  }

  private refill(subject: string, limit: RateLimitConfig, taking: boolean): void {
    const now = this.now();
    let bucket = this.buckets.get(subject);
    if (!bucket || bucket.limit !== limit) {
      if (this.buckets.size >= this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = { tokens: limit.burst, updatedMs: now, limit };
      this.buckets.set(subject, bucket);
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * limit.requestsPerSecond);
      bucket.updatedMs = now;
    }
    if (bucket.tokens >= 1) {
      if (taking) bucket.tokens -= 1;
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / limit.requestsPerSecond));
    throw new RateLimitedError(retryAfterSeconds);
  }
}

export class RateLimitedError extends TeegateError {
  constructor(readonly retryAfterSeconds: number) {
    super('RATE_LIMITED', `rate limit exceeded: retry after ${retryAfterSeconds} s`);
  }
}
