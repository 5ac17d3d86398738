/**
 * The dev attester: a simulated Nitro Secure Module that issues attestation documents in the exact
 * AWS Nitro wire format under a dev CA, so the enclave, dev KMS, gateway and tests run without Nitro
 * hardware. A document is an untagged (or tag 18) COSE_Sign1 with protected header {1: -35}, an
 * empty unprotected map, the payload map (module_id, digest "SHA384", timestamp in ms, pcrs 0..15 of
 * 48 bytes, certificate, cabundle root first, public_key, user_data, nonce: absent ones CBOR null)
 * and a raw r||s ES384 signature by a fresh 3-hour leaf, as the NSM produces.
 * Documents verify only against the dev root passed explicitly: never against AWS's.
 */
import { toHex } from '../bytes';
import { CborIndefinite, CborTag, encodeCbor, type CborMap, type CborValue } from '../cbor';
import { COSE_SIGN1_TAG, ES384_PROTECTED, sigStructure } from '../cose/sign1';
import { TeegateError } from '../errors';
import { MAX_OPTIONAL_FIELD_BYTES } from '../nitro/document';
import { buildCertificate, generateP384KeyPair, signP384Raw } from './certificate-builder';
import { DEV_LEAF_NAME_PREFIX, LEAF_LIFETIME_MS, type DevCa, type IssuingChain } from './dev-ca';
import { PCR_LENGTH } from './measure';

/** The NSM reports PCRs 0..15 in every document. */
export const DOCUMENT_PCR_COUNT = 16;
/** AWS leaves start a few seconds before the document they sign. */
const LEAF_BACKDATE_MS = 3_000;

export interface DevAttesterOptions {
  readonly ca: DevCa;
  /** Default: a random id shaped like AWS's, `i-0<16 hex>-enc<16 hex>`. */
  readonly moduleId?: string;
  /** Measured PCRs by index (0..15), 48 bytes each; unset ones read as zero. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** Payload map length encoding: 'definite' (AWS until 2024, default) or 'indefinite' (AWS from 2025). */
  readonly encoding?: 'definite' | 'indefinite';
  /** Wrap the COSE_Sign1 in tag 18 (default false: the NSM sends it untagged). */
  readonly tagged?: boolean;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
  /** Debug mode: PCR0, PCR1 and PCR2 are reported as all zero, as for `nitro-cli run-enclave --debug-mode`. */
  readonly debug?: boolean;
  /** Reuse a leaf for documents up to this many ms after it was issued (default 0: a fresh leaf per document, as AWS). */
  readonly leafReuseMs?: number;
}

export interface AttestationRequest {
  readonly publicKey?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
}

interface Leaf {
  readonly issuedAt: number;
  readonly der: Uint8Array;
  readonly privateKey: CryptoKey;
  readonly chain: IssuingChain;
}

function invalid(message: string): never {
  throw new TeegateError('NSM_REQUEST_INVALID', message);
}

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return toHex(b);
}

function optionalField(value: unknown, field: string): Uint8Array | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof Uint8Array)) invalid(`${field} must be bytes`);
  if (value.length > MAX_OPTIONAL_FIELD_BYTES) invalid(`${field} is ${value.length} bytes, the NSM accepts at most ${MAX_OPTIONAL_FIELD_BYTES}`);
  return value.slice();
}

function checkPcrs(pcrs: unknown, debug: boolean): Map<number, Uint8Array> {
  if (!(pcrs instanceof Map)) invalid('pcrs must be a Map from index to 48-byte value');
  const out = new Map<number, Uint8Array>();
  for (let i = 0; i < DOCUMENT_PCR_COUNT; i++) out.set(i, new Uint8Array(PCR_LENGTH));
  for (const [index, value] of pcrs as Map<unknown, unknown>) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= DOCUMENT_PCR_COUNT) {
      invalid(`PCR index ${String(index)} is outside 0..${DOCUMENT_PCR_COUNT - 1}`);
    }
    if (!(value instanceof Uint8Array) || value.length !== PCR_LENGTH) invalid(`PCR${index} must be ${PCR_LENGTH} bytes`);
    out.set(index, value.slice());
  }
  if (debug) for (const i of [0, 1, 2]) out.set(i, new Uint8Array(PCR_LENGTH));
  return out;
}

export class DevAttester {
  private leaf: Promise<Leaf> | undefined;

  private constructor(
    private readonly ca: DevCa,
    readonly moduleId: string,
    private readonly pcrValues: ReadonlyMap<number, Uint8Array>,
    private readonly encoding: 'definite' | 'indefinite',
    private readonly tagged: boolean,
    private readonly now: () => number,
    readonly debug: boolean,
    private readonly leafReuseMs: number,
  ) {}

  static async create(options: DevAttesterOptions): Promise<DevAttester> {
    if (typeof options !== 'object' || options === null) invalid('options must be an object');
    const moduleId = options.moduleId ?? `i-0${randomHex(8)}-enc${randomHex(8)}`;
    if (typeof moduleId !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(moduleId)) {
      invalid('moduleId must be 1..128 characters of A-Z a-z 0-9 . _ -');
    }
    const encoding = options.encoding ?? 'definite';
    if (encoding !== 'definite' && encoding !== 'indefinite') invalid(`encoding must be 'definite' or 'indefinite'`);
    const leafReuseMs = options.leafReuseMs ?? 0;
    if (!Number.isFinite(leafReuseMs) || leafReuseMs < 0 || leafReuseMs > LEAF_LIFETIME_MS / 2) {
      invalid(`leafReuseMs must be in 0..${LEAF_LIFETIME_MS / 2}`);
    }
    const debug = options.debug ?? false;
    return new DevAttester(
      options.ca,
      moduleId,
      checkPcrs(options.pcrs, debug),
      encoding,
      options.tagged ?? false,
      options.now ?? Date.now,
      debug,
      leafReuseMs,
    );
  }

  /** The PCRs every document reports (0..15, 48 bytes each), after debug zeroing. */
  pcrs(): Map<number, Uint8Array> {
    return new Map([...this.pcrValues].map(([i, v]) => [i, v.slice()]));
  }

  /** One attestation document (COSE_Sign1 bytes), like the NSM's Attestation request. */
  async attest(request: AttestationRequest = {}): Promise<Uint8Array> {
    if (typeof request !== 'object' || request === null) invalid('request must be an object');
    const publicKey = optionalField(request.publicKey, 'public_key');
    const userData = optionalField(request.userData, 'user_data');
    const nonce = optionalField(request.nonce, 'nonce');
    const timestamp = Math.floor(this.now());
    if (!Number.isSafeInteger(timestamp) || timestamp <= 0) invalid('the clock returned an invalid time');

    const leaf = await this.leafFor(timestamp);
    const payloadMap: CborMap = new Map<string, CborValue>([
      ['module_id', this.moduleId],
      ['digest', 'SHA384'],
      ['timestamp', timestamp],
      ['pcrs', new Map(this.pcrValues)],
      ['certificate', leaf.der],
      ['cabundle', [...leaf.chain.cabundle]],
      ['public_key', publicKey],
      ['user_data', userData],
      ['nonce', nonce],
    ]);
    const payload = encodeCbor(this.encoding === 'indefinite' ? new CborIndefinite(payloadMap) : payloadMap);
    const signature = await signP384Raw(
      leaf.privateKey,
      sigStructure({ protectedHeader: ES384_PROTECTED, payload, signature: new Uint8Array(0), tagged: this.tagged }),
    );
    const sign1: CborValue[] = [ES384_PROTECTED, new Map(), payload, signature];
    return encodeCbor(this.tagged ? new CborTag(COSE_SIGN1_TAG, sign1) : sign1);
  }

  private leafFor(timestamp: number): Promise<Leaf> {
    const cached = this.leaf;
    const next = (async () => {
      const current = cached ? await cached.catch(() => undefined) : undefined;
      if (current && timestamp >= current.issuedAt && timestamp - current.issuedAt <= this.leafReuseMs) return current;
      return this.issueLeaf(timestamp);
    })();
    this.leaf = next;
    return next;
  }

  private async issueLeaf(timestamp: number): Promise<Leaf> {
    const chain = await this.ca.issuingChain(timestamp);
    const keys = await generateP384KeyPair(false);
    // Serial laid out as AWS's: 8 bytes of enclave id, 4 zero bytes, 4 bytes of issue time in seconds.
    const serial = new Uint8Array(16);
    globalThis.crypto.getRandomValues(serial.subarray(0, 8));
    serial[0] = serial[0]! | 0x01;
    new DataView(serial.buffer).setUint32(12, Math.floor(timestamp / 1000) >>> 0);
    const der = await buildCertificate({
      serialNumber: serial,
      issuer: chain.issuerName,
      subject: [...DEV_LEAF_NAME_PREFIX, { type: 'CN', value: `${this.moduleId}.dev.teegate` }],
      notBefore: timestamp - LEAF_BACKDATE_MS,
      notAfter: timestamp + LEAF_LIFETIME_MS,
      subjectPublicKey: keys.publicKey,
      issuerPrivateKey: chain.issuerPrivateKey,
      // As AWS's leaves: cA FALSE (empty SEQUENCE), keyUsage digitalSignature + nonRepudiation, not critical.
      basicConstraints: { ca: false },
      keyUsage: ['digitalSignature', 'nonRepudiation'],
      keyUsageCritical: false,
    });
    return { issuedAt: timestamp, der, privateKey: keys.privateKey, chain };
  }
}
