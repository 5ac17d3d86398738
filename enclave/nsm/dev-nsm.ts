/**
 * The simulated NSM for dev and tests. Requests go through the real protocol both ways: the
 * client side (ProtocolNsm) encodes the CBOR request; the simulated device decodes it as the NSM
 * would (`decodeNsmRequest`), acts, and encodes a CBOR response (`encodeNsmResponse`) that the
 * client side decodes and checks, so the protocol code runs in dev exactly as in production.
 *
 * Device state, as the real NSM keeps it (aws-nitro-enclaves-nsm-api src/api/mod.rs):
 *  - `max_pcrs` PCRs (default 32) of 48 bytes (Digest::SHA384), zero unless measured at launch;
 *  - ExtendPCR: new = SHA-384(old || data) (attestation/dev/measure.ts `extendPcr`);
 *    a locked PCR answers Error(ReadOnlyIndex), an index ≥ max_pcrs Error(InvalidIndex);
 *  - LockPCR / LockPCRs make PCRs read-only; the launch PCRs (default 0..4 and 8) start locked;
 *  - Attestation: a document from the dev attester (attestation/dev/dev-attester.ts) carrying the
 *    current PCRs 0..15, re-created after every extend so documents report the current values.
 * Device-side requests are serialised (an extend is a read-modify-write).
 */
import { TeegateError, isTeegateError } from '../../attestation/errors';
import type { DevCa } from '../../attestation/dev/dev-ca';
import { DOCUMENT_PCR_COUNT, DevAttester, type DevAttesterOptions } from '../../attestation/dev/dev-attester';
import { extendPcr } from '../../attestation/dev/measure';
import {
  NSM_PCR_LENGTH,
  decodeNsmRequest,
  encodeNsmResponse,
  type NsmErrorCode,
  type NsmRequest,
  type NsmResponse,
} from './nsm-protocol';
import { ProtocolNsm } from './protocol-nsm';

/** Nitro's launch-time PCRs: image (0), kernel+boot ramdisk (1), application (2), IAM role (3), instance (4), signing certificate (8). */
export const DEV_NSM_LAUNCH_LOCKED_PCRS: readonly number[] = [0, 1, 2, 3, 4, 8];
export const DEV_NSM_MAX_PCRS = 32;
export const DEV_NSM_RANDOM_BYTES = 256;
/** The version this simulated NSM reports in DescribeNSM. */
export const DEV_NSM_VERSION = { major: 1, minor: 0, patch: 0 } as const;

export interface DevNsmOptions {
  readonly ca: DevCa;
  /** PCRs measured at launch, by index (0..15), 48 bytes each; unset ones are zero. */
  readonly pcrs?: ReadonlyMap<number, Uint8Array>;
  /** PCRs that start read-only (default DEV_NSM_LAUNCH_LOCKED_PCRS). */
  readonly lockedPcrs?: readonly number[];
  /** The rest of the dev attester's options (module id, encoding, clock, debug, leaf reuse). */
  readonly attester?: Omit<DevAttesterOptions, 'ca' | 'pcrs'>;
}

class NsmAnswer extends Error {
  constructor(readonly code: NsmErrorCode) {
    super(code);
  }
}

/** The device side: state plus the request handler, bytes in and bytes out. */
class SimulatedNsmDevice {
  private readonly pcrs: Uint8Array[];
  private readonly locked: Set<number>;
  private attester: Promise<DevAttester> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: DevNsmOptions,
    private readonly moduleId: string,
    initial: ReadonlyMap<number, Uint8Array>,
  ) {
    this.pcrs = Array.from({ length: DEV_NSM_MAX_PCRS }, (_, i) => initial.get(i)?.slice() ?? new Uint8Array(NSM_PCR_LENGTH));
    this.locked = new Set(options.lockedPcrs ?? DEV_NSM_LAUNCH_LOCKED_PCRS);
  }

  /** One ioctl: request bytes → response bytes; never throws for a bad request. */
  process(request: Uint8Array): Promise<Uint8Array> {
    const run = this.queue.then(async () => {
      let req: NsmRequest;
      try {
        req = decodeNsmRequest(request);
      } catch {
        return encodeNsmResponse({ type: 'Error', error: 'InvalidArgument' });
      }
      try {
        return encodeNsmResponse(await this.handle(req));
      } catch (err) {
        const error: NsmErrorCode =
          err instanceof NsmAnswer ? err.code : isTeegateError(err, 'NSM_REQUEST_INVALID') ? 'InvalidArgument' : 'InternalError';
        return encodeNsmResponse({ type: 'Error', error });
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private index(i: number): number {
    if (i >= DEV_NSM_MAX_PCRS) throw new NsmAnswer('InvalidIndex');
    return i;
  }

  private async handle(req: NsmRequest): Promise<NsmResponse> {
    switch (req.type) {
      case 'DescribePCR': {
        const i = this.index(req.index);
        return { type: 'DescribePCR', lock: this.locked.has(i), data: this.pcrs[i]!.slice() };
      }
      case 'ExtendPCR': {
        const i = this.index(req.index);
        if (this.locked.has(i)) throw new NsmAnswer('ReadOnlyIndex');
        const next = await extendPcr(this.pcrs[i]!, req.data);
        this.pcrs[i] = next;
        if (i < DOCUMENT_PCR_COUNT) this.attester = undefined;
        return { type: 'ExtendPCR', data: next.slice() };
      }
      case 'LockPCR':
        this.locked.add(this.index(req.index));
        return { type: 'LockPCR' };
      case 'LockPCRs':
        if (req.range > DEV_NSM_MAX_PCRS) throw new NsmAnswer('InvalidIndex');
        for (let i = 0; i < req.range; i++) this.locked.add(i);
        return { type: 'LockPCRs' };
      case 'DescribeNSM':
        return {
          type: 'DescribeNSM',
          versionMajor: DEV_NSM_VERSION.major,
          versionMinor: DEV_NSM_VERSION.minor,
          versionPatch: DEV_NSM_VERSION.patch,
          moduleId: this.moduleId,
          maxPcrs: DEV_NSM_MAX_PCRS,
          lockedPcrs: [...this.locked].sort((a, b) => a - b),
          digest: 'SHA384',
        };
      case 'GetRandom': {
        const random = new Uint8Array(DEV_NSM_RANDOM_BYTES);
        globalThis.crypto.getRandomValues(random);
        return { type: 'GetRandom', random };
      }
      case 'Attestation': {
        const attester = await this.currentAttester();
        const document = await attester.attest({ publicKey: req.publicKey, userData: req.userData, nonce: req.nonce });
        return { type: 'Attestation', document };
      }
    }
  }

  /** A dev attester that reports the current PCRs 0..15 (re-created after an extend). */
  private currentAttester(): Promise<DevAttester> {
    if (!this.attester) {
      const pcrs = new Map(this.pcrs.slice(0, DOCUMENT_PCR_COUNT).map((v, i) => [i, v.slice()] as const));
      const made = DevAttester.create({ ...this.options.attester, moduleId: this.moduleId, ca: this.options.ca, pcrs });
      made.catch(() => {
        if (this.attester === made) this.attester = undefined;
      });
      this.attester = made;
    }
    return this.attester;
  }
}

export class DevNsm extends ProtocolNsm {
  readonly kind = 'dev' as const;

  private constructor(private readonly device: SimulatedNsmDevice) {
    super();
  }

  /**
   * A simulated NSM. Options are checked by the dev attester (NSM_REQUEST_INVALID for PCR
   * indexes outside 0..15 or values not 48 bytes, a bad module id or encoding; locked PCRs
   * outside 0..31).
   */
  static async create(options: DevNsmOptions): Promise<DevNsm> {
    for (const i of options.lockedPcrs ?? []) {
      if (!Number.isInteger(i) || i < 0 || i >= DEV_NSM_MAX_PCRS) {
        throw new TeegateError('NSM_REQUEST_INVALID', `locked PCR ${i} is outside 0..${DEV_NSM_MAX_PCRS - 1}`);
      }
    }
    // Validates the options once and fixes the module id (random unless given) for the lifetime.
    const probe = await DevAttester.create({ ...options.attester, ca: options.ca, pcrs: options.pcrs ?? new Map() });
    const launch = probe.pcrs();
    return new DevNsm(new SimulatedNsmDevice(options, probe.moduleId, launch));
  }

  protected transport(request: Uint8Array): Promise<Uint8Array> {
    return this.device.process(request);
  }
}
