/**
 * Where the gateway appends what it must log: every receipt it relays and every enclave boot
 * attestation (document + manifest) before that enclave takes traffic. The transparency log
 * (another module) implements this; `MemoryReceiptSink` keeps entries in memory for tests and for
 * a gateway started without a log.
 */
export interface ReceiptSink {
  /** Appends a receipt (JWS compact); resolves once the entry has a durable index. */
  appendReceipt(jws: string): Promise<{ index: number }>;
  /** Appends an enclave's boot attestation document (COSE_Sign1 bytes) with its manifest. */
  appendAttestation(document: Uint8Array, manifest: unknown): Promise<{ index: number }>;
}

export type MemoryLogEntry =
  | { readonly type: 'receipt'; readonly index: number; readonly jws: string }
  | { readonly type: 'attestation'; readonly index: number; readonly document: Uint8Array; readonly manifest: unknown };

/** In-memory, sequential indexes from 0: no durability, no proofs. For tests and development only. */
export class MemoryReceiptSink implements ReceiptSink {
  private readonly log: MemoryLogEntry[] = [];

  get entries(): readonly MemoryLogEntry[] {
    return this.log;
  }

  async appendReceipt(jws: string): Promise<{ index: number }> {
    const index = this.log.length;
    this.log.push({ type: 'receipt', index, jws });
    return { index };
  }

  async appendAttestation(document: Uint8Array, manifest: unknown): Promise<{ index: number }> {
    const index = this.log.length;
    this.log.push({ type: 'attestation', index, document: document.slice(), manifest });
    return { index };
  }
}
