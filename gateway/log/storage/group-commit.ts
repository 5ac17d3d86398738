/**
 * Group commit: concurrent appends queue up while one durable write (an fsync, a transaction) is
 * in flight; the next write takes everything queued. One write at a time, in arrival order, so
 * indexes follow the order of the calls and no acknowledged append is lost or reordered.
 */
interface Pending {
  readonly entries: readonly Uint8Array[];
  readonly resolve: (first: number) => void;
  readonly reject: (err: unknown) => void;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private running = false;

  /** `write` durably stores a batch and resolves to the index of its first entry. */
  constructor(
    private readonly write: (batch: readonly Uint8Array[]) => Promise<number>,
    private readonly maxBatch = 8192,
  ) {}

  append(entries: readonly Uint8Array[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ entries, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const taken: Pending[] = [];
        let count = 0;
        while (this.queue.length > 0 && (count === 0 || count + this.queue[0]!.entries.length <= this.maxBatch)) {
          const p = this.queue.shift()!;
          taken.push(p);
          count += p.entries.length;
        }
        const batch = taken.flatMap((p) => p.entries);
        try {
          let next = await this.write(batch);
          for (const p of taken) {
            p.resolve(next);
            next += p.entries.length;
          }
        } catch (err) {
          for (const p of taken) p.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
