/**
 * The part of every `Nsm` that is the same on hardware and in dev: encode the request
 * (nsm-protocol.ts), hand the bytes to a transport (the ioctl helper, or the simulated device),
 * decode the answer and check that it answers the request. Tracks calls in flight so `close()`
 * waits for them (an ExtendPCR must not be cut in half by a shutdown).
 */
import { TeegateError } from '../../attestation/errors';
import type { Nsm, NsmAttestRequest, NsmPcr } from './nsm';
import {
  decodeNsmResponse,
  encodeNsmRequest,
  expectNsmResponse,
  type NsmRequest,
  type NsmSuccess,
} from './nsm-protocol';

export abstract class ProtocolNsm implements Nsm {
  abstract readonly kind: 'dev' | 'hardware';
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  /** Sends one encoded request and returns the raw encoded response. */
  protected abstract transport(request: Uint8Array): Promise<Uint8Array>;

  /**
   * One raw ioctl: encoded request bytes in, encoded response bytes out, nothing checked (for
   * diagnostics and protocol tests; everything else goes through `request`).
   */
  async exchange(request: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new TeegateError('NSM_UNAVAILABLE', `the ${this.kind} NSM is closed`);
    const call = this.transport(request);
    this.inFlight.add(call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(call);
    }
  }

  /** One request/response exchange, typed by the request variant (any request of the NSM API). */
  async request<R extends NsmRequest>(req: R): Promise<NsmSuccess<R['type']>> {
    const bytes = encodeNsmRequest(req);
    return expectNsmResponse<R['type']>(req.type, decodeNsmResponse(await this.exchange(bytes)));
  }

  async attest(req: NsmAttestRequest): Promise<Uint8Array> {
    const res = await this.request({ type: 'Attestation', userData: req.userData, nonce: req.nonce, publicKey: req.publicKey });
    return res.document;
  }

  async getRandom(): Promise<Uint8Array> {
    return (await this.request({ type: 'GetRandom' })).random;
  }

  async describePcr(index: number): Promise<NsmPcr> {
    const res = await this.request({ type: 'DescribePCR', index });
    return { lock: res.lock, data: res.data };
  }

  async extendPcr(index: number, data: Uint8Array): Promise<Uint8Array> {
    return (await this.request({ type: 'ExtendPCR', index, data })).data;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }
}
