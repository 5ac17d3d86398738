/**
 * The dev CA: a certificate hierarchy of the same shape as the AWS Nitro Enclaves PKI, for the dev
 * attester. Root (CA, no pathLen) → regional (pathLen 2) → zonal (pathLen 1) → instance (pathLen 0,
 * keyUsage keyCertSign only) → per-document leaves (issued by the attester). All keys P-384, all
 * signatures ECDSA with SHA-384. The root lives long and can be exported and imported so a dev
 * root persists across restarts; the intermediates live days, like AWS's, and are re-issued (new
 * keys, new certificates) when a leaf issued at the requested time would outlive them.
 * The dev root is never trusted by default: verifiers must be handed `rootPem` explicitly.
 */
import { bufferSource, fromBase64, sha256, toBase64, toHex, webcrypto } from '../bytes';
import { TeegateError, isTeegateError } from '../errors';
import { verifyP384 } from '../crypto/ecdsa-p384';
import { parseCertificate, type Certificate } from '../x509/certificate';
import { derToPem } from '../x509/pem';
import {
  buildCertificate,
  generateP384KeyPair,
  keyIdentifier,
  randomSerial,
  type KeyUsageName,
  type NameAttribute,
} from './certificate-builder';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** AWS leaf certificates live 3 hours; an issuing chain must outlive a leaf issued now. */
export const LEAF_LIFETIME_MS = 3 * HOUR;
/** Certificates are back-dated by this much so a verifier's clock a little behind still accepts them. */
const BACKDATE_MS = HOUR;
const DEFAULT_ROOT_VALIDITY_DAYS = 3650;

interface LevelSpec {
  readonly label: 'regional' | 'zonal' | 'instance';
  readonly pathLen: number;
  readonly lifetimeMs: number;
  readonly keyUsage: readonly KeyUsageName[];
  readonly name: (id: string) => NameAttribute[];
}

const CA_USAGE: readonly KeyUsageName[] = ['digitalSignature', 'keyCertSign', 'cRLSign'];
const ORG: readonly NameAttribute[] = [
  { type: 'O', value: 'teegate' },
  { type: 'OU', value: 'dev (not AWS)' },
];

/** Lifetimes and name layouts follow the AWS chain (regional ~20 days, zonal ~6 days, instance 1 day). */
const LEVELS: readonly LevelSpec[] = [
  {
    label: 'regional',
    pathLen: 2,
    lifetimeMs: 20 * DAY,
    keyUsage: CA_USAGE,
    name: (id) => [{ type: 'C', value: 'ZZ' }, ...ORG, { type: 'CN', value: `${id}.dev.teegate.nitro-enclaves` }],
  },
  {
    label: 'zonal',
    pathLen: 1,
    lifetimeMs: 6 * DAY,
    keyUsage: CA_USAGE,
    name: (id) => [
      { type: 'CN', value: `${id}.zonal.dev.teegate.nitro-enclaves` },
      ...[...ORG].reverse(),
      { type: 'C', value: 'ZZ' },
      { type: 'ST', value: 'Dev' },
      { type: 'L', value: 'Localhost' },
    ],
  },
  {
    label: 'instance',
    pathLen: 0,
    lifetimeMs: DAY,
    keyUsage: ['keyCertSign'],
    name: (id) => [
      { type: 'C', value: 'ZZ' },
      { type: 'ST', value: 'Dev' },
      { type: 'L', value: 'Localhost' },
      ...ORG,
      { type: 'CN', value: `i-0${id.slice(0, 16)}.dev.teegate.nitro-enclaves` },
    ],
  },
];

/** The subject attributes every dev leaf carries besides its CN (the instance CA's layout, as AWS). */
export const DEV_LEAF_NAME_PREFIX: readonly NameAttribute[] = [
  { type: 'C', value: 'ZZ' },
  { type: 'ST', value: 'Dev' },
  { type: 'L', value: 'Localhost' },
  ...ORG,
];

interface CaLevel {
  readonly der: Uint8Array;
  readonly cert: Certificate;
  readonly privateKey: CryptoKey;
  readonly keyId: Uint8Array;
}

/** What a leaf issuer needs: the CA bundle and the instance CA's key, name and key identifier. */
export interface IssuingChain {
  /** DER certificates, root first, down to the issuer of leaves (the instance CA). */
  readonly cabundle: readonly Uint8Array[];
  readonly issuerPrivateKey: CryptoKey;
  /** DER of the instance CA's subject Name (the leaf's issuer Name). */
  readonly issuerName: Uint8Array;
  readonly issuerKeyId: Uint8Array;
  /** The earliest notAfter in the chain (milliseconds). */
  readonly notAfter: number;
}

export interface DevCaCertificateJson {
  /** Base64 DER. */
  readonly certificate: string;
  /** The P-384 private key as a JWK. */
  readonly privateKey: JsonWebKey;
}

export interface DevCaJson {
  readonly format: 'teegate-dev-ca';
  readonly version: 1;
  readonly root: DevCaCertificateJson;
  /** Regional, zonal, instance. */
  readonly intermediates: readonly DevCaCertificateJson[];
}

function caError(message: string, cause?: unknown): never {
  throw new TeegateError('DEV_CA_INVALID', message, cause === undefined ? undefined : { cause });
}

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return toHex(b);
}

async function publicKeyOf(cert: Certificate): Promise<CryptoKey> {
  return webcrypto().importKey('spki', bufferSource(cert.spki), { name: 'ECDSA', namedCurve: 'P-384' }, true, ['verify']);
}

export class DevCa {
  private intermediates: readonly CaLevel[];
  /** Serialises re-issuing: concurrent callers wait for one another. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Use `createDevCa` or `importDevCa`. */
  constructor(
    private readonly root: CaLevel,
    intermediates: readonly CaLevel[],
    /** PEM of the root certificate, the one thing a verifier must be handed to trust this CA. */
    readonly rootPem: string,
    /** Hex SHA-256 of the root DER (what `verifyAttestation` reports as `rootFingerprint`). */
    readonly rootFingerprint: string,
  ) {
    this.intermediates = intermediates;
  }

  get rootDer(): Uint8Array {
    return this.root.der.slice();
  }

  get rootNotAfter(): number {
    return this.root.cert.notAfter;
  }

  /** Current intermediates, regional first (DER). */
  get intermediateDers(): readonly Uint8Array[] {
    return this.intermediates.map((l) => l.der.slice());
  }

  /**
   * The chain that issues a leaf at `at` (ms): every intermediate valid from before `at` until
   * after `at` + the leaf lifetime. Intermediates that are not are re-issued, with their children.
   */
  issuingChain(at: number): Promise<IssuingChain> {
    const run = this.queue.then(() => this.ensureChain(at));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureChain(at: number): Promise<IssuingChain> {
    if (!Number.isFinite(at)) caError('issuing time is not a valid time');
    const root = this.root.cert;
    if (at - BACKDATE_MS < root.notBefore || at + LEAF_LIFETIME_MS > root.notAfter) {
      caError(
        `the dev root is valid ${new Date(root.notBefore).toISOString()} to ${new Date(root.notAfter).toISOString()}; ` +
          `it cannot issue a leaf at ${new Date(at).toISOString()}: create a new dev CA`,
      );
    }
    const fits = (l: CaLevel) => l.cert.notBefore <= at && at + LEAF_LIFETIME_MS <= l.cert.notAfter;
    const firstStale = this.intermediates.findIndex((l) => !fits(l));
    if (firstStale >= 0) {
      const kept = this.intermediates.slice(0, firstStale);
      let parent = kept[kept.length - 1] ?? this.root;
      const next = [...kept];
      for (const spec of LEVELS.slice(firstStale)) {
        parent = await issueIntermediate(spec, parent, at - BACKDATE_MS, root.notAfter);
        next.push(parent);
      }
      this.intermediates = next;
    }
    const chain = [this.root, ...this.intermediates];
    const issuer = chain[chain.length - 1]!;
    return {
      cabundle: chain.map((l) => l.der),
      issuerPrivateKey: issuer.privateKey,
      issuerName: issuer.cert.subjectDer,
      issuerKeyId: issuer.keyId,
      notAfter: Math.min(...chain.map((l) => l.cert.notAfter)),
    };
  }

  /** @internal for exportDevCa */
  levels(): readonly CaLevel[] {
    return [this.root, ...this.intermediates];
  }
}

async function issueIntermediate(spec: LevelSpec, parent: CaLevel, notBefore: number, rootNotAfter: number): Promise<CaLevel> {
  const keys = await generateP384KeyPair(true);
  const der = await buildCertificate({
    serialNumber: randomSerial(20),
    issuer: parent.cert.subjectDer,
    subject: spec.name(randomHex(8)),
    notBefore,
    notAfter: Math.min(notBefore + spec.lifetimeMs, rootNotAfter),
    subjectPublicKey: keys.publicKey,
    issuerPrivateKey: parent.privateKey,
    basicConstraints: { ca: true, pathLen: spec.pathLen },
    keyUsage: spec.keyUsage,
    subjectKeyIdentifier: true,
    authorityKeyIdentifier: parent.keyId,
  });
  return { der, cert: parseCertificate(der), privateKey: keys.privateKey, keyId: await keyIdentifier(keys.publicKey) };
}

export interface CreateDevCaOptions {
  /** Creation time in ms (default: now). The root is valid from a day before. */
  readonly now?: number;
  /** Root lifetime in days (default 3650). */
  readonly rootValidityDays?: number;
}

export async function createDevCa(options: CreateDevCaOptions = {}): Promise<DevCa> {
  const now = options.now ?? Date.now();
  const days = options.rootValidityDays ?? DEFAULT_ROOT_VALIDITY_DAYS;
  if (!Number.isFinite(now) || now <= 0) caError('now must be a positive time in milliseconds');
  if (!Number.isFinite(days) || days <= 0 || days > 36500) caError('rootValidityDays must be in (0, 36500]');
  const keys = await generateP384KeyPair(true);
  const notBefore = now - DAY;
  const name: NameAttribute[] = [{ type: 'C', value: 'ZZ' }, ...ORG, { type: 'CN', value: `teegate-dev-root-${randomHex(4)}.nitro-enclaves` }];
  const rootDer = await buildCertificate({
    serialNumber: randomSerial(16),
    issuer: name,
    subject: name,
    notBefore,
    notAfter: now + days * DAY,
    subjectPublicKey: keys.publicKey,
    issuerPrivateKey: keys.privateKey,
    basicConstraints: { ca: true },
    keyUsage: CA_USAGE,
    subjectKeyIdentifier: true,
  });
  const root: CaLevel = { der: rootDer, cert: parseCertificate(rootDer), privateKey: keys.privateKey, keyId: await keyIdentifier(keys.publicKey) };
  const intermediates: CaLevel[] = [];
  let parent = root;
  for (const spec of LEVELS) {
    parent = await issueIntermediate(spec, parent, now - BACKDATE_MS, root.cert.notAfter);
    intermediates.push(parent);
  }
  return new DevCa(root, intermediates, derToPem(rootDer), toHex(await sha256(rootDer)));
}

export async function exportDevCa(ca: DevCa): Promise<DevCaJson> {
  const entries = await Promise.all(
    ca.levels().map(async (l) => ({
      certificate: toBase64(l.der),
      privateKey: await webcrypto().exportKey('jwk', l.privateKey),
    })),
  );
  const [root, ...intermediates] = entries as [DevCaCertificateJson, ...DevCaCertificateJson[]];
  return { format: 'teegate-dev-ca', version: 1, root, intermediates };
}

async function importLevel(entry: unknown, what: string): Promise<CaLevel> {
  if (typeof entry !== 'object' || entry === null) caError(`${what} must be an object`);
  const { certificate, privateKey } = entry as Record<string, unknown>;
  if (typeof certificate !== 'string') caError(`${what}.certificate must be a base64 string`);
  const jwk = privateKey as JsonWebKey | undefined;
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-384' || typeof jwk.d !== 'string') {
    caError(`${what}.privateKey must be a P-384 EC private JWK`);
  }
  let der: Uint8Array;
  let cert: Certificate;
  try {
    der = fromBase64(certificate);
    cert = parseCertificate(der);
  } catch (err) {
    caError(`${what}.certificate is not a valid certificate: ${isTeegateError(err) ? err.message : String(err)}`, err);
  }
  let key: CryptoKey;
  let publicFromJwk: Uint8Array;
  try {
    const { kty, crv, x, y, d } = jwk;
    key = await webcrypto().importKey('jwk', { kty, crv, x, y, d, ext: true }, { name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign']);
    const pub = await webcrypto().importKey('jwk', { kty, crv, x, y, ext: true }, { name: 'ECDSA', namedCurve: 'P-384' }, true, ['verify']);
    publicFromJwk = new Uint8Array(await webcrypto().exportKey('spki', pub));
  } catch (err) {
    caError(`${what}.privateKey is not a usable P-384 key`, err);
  }
  const certKey = await publicKeyOf(cert);
  const certSpki = new Uint8Array(await webcrypto().exportKey('spki', certKey));
  if (toHex(certSpki) !== toHex(publicFromJwk)) caError(`${what}.privateKey does not match its certificate`);
  // A key that only claims x and y: prove it signs for that public key.
  const probe = new Uint8Array(await webcrypto().sign({ name: 'ECDSA', hash: 'SHA-384' }, key, bufferSource(der)));
  if (!(await verifyP384(certKey, probe, der))) caError(`${what}.privateKey does not match its certificate`);
  return { der, cert, privateKey: key, keyId: await keyIdentifier(certKey) };
}

/** Restores a dev CA exported by `exportDevCa`, checking every key against its certificate and the chain shape. */
export async function importDevCa(json: DevCaJson): Promise<DevCa> {
  const input = json as unknown;
  if (typeof input !== 'object' || input === null) caError('dev CA JSON must be an object');
  const { format, version, root, intermediates } = input as Record<string, unknown>;
  if (format !== 'teegate-dev-ca' || version !== 1) caError('not a teegate-dev-ca version 1 document');
  if (!Array.isArray(intermediates) || intermediates.length !== LEVELS.length) {
    caError(`intermediates must list ${LEVELS.length} certificates (regional, zonal, instance)`);
  }
  const rootLevel = await importLevel(root, 'root');
  const levels = [rootLevel];
  for (let i = 0; i < LEVELS.length; i++) levels.push(await importLevel(intermediates[i], `intermediates[${i}]`));

  const r = rootLevel.cert;
  if (!r.basicConstraints?.ca || r.basicConstraints.pathLen !== undefined || toHex(r.issuerDer) !== toHex(r.subjectDer)) {
    caError('root must be a self-issued CA certificate without pathLen');
  }
  for (let i = 0; i < levels.length; i++) {
    const cert = levels[i]!.cert;
    const issuer = levels[Math.max(0, i - 1)]!;
    if (i > 0) {
      const expected = LEVELS[i - 1]!.pathLen;
      if (!cert.basicConstraints?.ca || cert.basicConstraints.pathLen !== expected) {
        caError(`intermediates[${i - 1}] must be a CA with pathLen ${expected}`);
      }
      if (toHex(cert.issuerDer) !== toHex(issuer.cert.subjectDer)) caError(`intermediates[${i - 1}] is not issued by the certificate above it`);
    }
    if (!(await verifyP384(await publicKeyOf(issuer.cert), cert.signature, cert.tbs))) {
      caError(`${i === 0 ? 'root' : `intermediates[${i - 1}]`} signature does not verify`);
    }
  }
  return new DevCa(rootLevel, levels.slice(1), derToPem(rootLevel.der), toHex(await sha256(rootLevel.der)));
}
