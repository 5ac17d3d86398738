/**
 * The one way the enclave talks to a Nitro Secure Module (NSM). Two implementations:
 *  - `HardwareNsm` (hardware-nsm.ts): the real /dev/nsm through the native nsm-ioctl helper;
 *  - `DevNsm` (dev-nsm.ts): a simulated NSM backed by the dev attester, for dev and tests.
 * Both speak the same CBOR request/response protocol (nsm-protocol.ts), so the protocol code runs
 * in dev as it does in production. Failures are TeegateErrors with an NSM_* code.
 */

export interface NsmAttestRequest {
  /** DER SubjectPublicKeyInfo to bind into the document (`public_key`), at most 1024 bytes. */
  readonly publicKey?: Uint8Array;
  /** Application data to bind into the document (`user_data`), at most 1024 bytes. */
  readonly userData?: Uint8Array;
  /** A verifier's nonce to bind into the document (`nonce`), at most 1024 bytes. */
  readonly nonce?: Uint8Array;
}

export interface NsmPcr {
  /** True when the PCR is read-only (locked). */
  readonly lock: boolean;
  /** The PCR's current value (48 bytes: the NSM's PCR bank is SHA-384). */
  readonly data: Uint8Array;
}

export interface Nsm {
  /** An attestation document (COSE_Sign1, untagged) carrying the given fields. */
  attest(req: NsmAttestRequest): Promise<Uint8Array>;
  /** Entropy from the NSM. */
  getRandom(): Promise<Uint8Array>;
  describePcr(index: number): Promise<NsmPcr>;
  /**
   * Extends PCR `index` with `data` (new = SHA-384(old || data)); returns the new value. After an
   * NSM_FAILED (timeout, helper death) the extend may or may not have happened: describe first.
   */
  extendPcr(index: number, data: Uint8Array): Promise<Uint8Array>;
  /** Releases the NSM; later calls fail with NSM_UNAVAILABLE. Waits for calls in flight. */
  close(): Promise<void>;
  readonly kind: 'dev' | 'hardware';
}
