/**
 * Certificate path validation for Nitro attestation documents, as AWS specifies: the chain runs from
 * the leaf (`certificate`) through the `cabundle` (root first) to a pinned root, matched by the
 * SHA-256 fingerprint of its DER. Checked here: names chain, every signature (ECDSA P-384/SHA-384),
 * basicConstraints CA and pathLen and keyUsage keyCertSign on CAs, leaf not a CA and with
 * digitalSignature. Validity periods are a separate step (`checkValidity`).
 */
import { bytesEqual, sha256, toHex } from '../bytes';
import { TeegateError } from '../errors';
import { verifyP384 } from '../crypto/ecdsa-p384';
import { KEY_USAGE, type Certificate } from './certificate';
import { CertificateCache } from './certificate-cache';

/** Roots whose fingerprint matched a trusted one (a handful per process). */
const TRUSTED_ROOTS = new CertificateCache(16);

/** SHA-256 fingerprints of root DERs already hashed, found by their tail and confirmed byte for byte. */
const FINGERPRINTS = new Map<string, { der: Uint8Array; fingerprint: string }>();

/** Hex SHA-256 of a certificate's DER, the form roots are pinned in (memoised). */
export async function fingerprintOf(der: Uint8Array): Promise<string> {
  const id = toHex(der.subarray(Math.max(0, der.length - 104)));
  const hit = FINGERPRINTS.get(id);
  if (hit && bytesEqual(hit.der, der)) return hit.fingerprint;
  const fingerprint = toHex(await sha256(der));
  if (FINGERPRINTS.size >= 64) FINGERPRINTS.clear();
  FINGERPRINTS.set(id, { der: der.slice(), fingerprint });
  return fingerprint;
}

export interface CertificatePath {
  /** Root first, leaf last. */
  readonly chain: readonly Certificate[];
  readonly leaf: Certificate;
  readonly leafKey: CryptoKey;
  /** SHA-256 fingerprint (hex) of the root that anchored the chain. */
  readonly rootFingerprint: string;
}

function constraints(message: string): never {
  throw new TeegateError('CERT_CONSTRAINTS_INVALID', message);
}

export async function validatePath(
  leafDer: Uint8Array,
  cabundle: readonly Uint8Array[],
  trustedRootFingerprints: ReadonlySet<string>,
  cache: CertificateCache,
): Promise<CertificatePath> {
  if (cabundle.length === 0) throw new TeegateError('CHAIN_BROKEN', 'cabundle is empty');
  const rootFingerprint = await fingerprintOf(cabundle[0]!);
  if (!trustedRootFingerprints.has(rootFingerprint)) {
    throw new TeegateError('CHAIN_UNTRUSTED_ROOT', `cabundle root (SHA-256 ${rootFingerprint}) is not a trusted root`);
  }
  // The pinned root is configuration, not evidence: parsed and imported once per process.
  const chain = [TRUSTED_ROOTS.parse(cabundle[0]!), ...[...cabundle.slice(1), leafDer].map((der) => cache.parse(der))];
  const leaf = chain[chain.length - 1]!;

  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const isLeaf = i === chain.length - 1;
    if (i > 0 && !bytesEqual(cert.issuerDer, chain[i - 1]!.subjectDer)) {
      throw new TeegateError('CHAIN_BROKEN', `issuer of "${cert.subject}" is not "${chain[i - 1]!.subject}"`);
    }
    if (isLeaf) {
      if (cert.basicConstraints?.ca) constraints(`leaf "${cert.subject}" is a CA`);
      if (cert.keyUsage === undefined || (cert.keyUsage & KEY_USAGE.digitalSignature) === 0) {
        constraints(`leaf "${cert.subject}" lacks keyUsage digitalSignature`);
      }
      continue;
    }
    if (!cert.basicConstraints?.ca) constraints(`"${cert.subject}" signs certificates but is not a CA`);
    if (cert.keyUsage === undefined || (cert.keyUsage & KEY_USAGE.keyCertSign) === 0) {
      constraints(`CA "${cert.subject}" lacks keyUsage keyCertSign`);
    }
    // RFC 5280 §4.2.1.9: pathLen bounds the CA certificates that may follow (the leaf does not count).
    const casBelow = chain.length - 2 - i;
    const pathLen = cert.basicConstraints.pathLen;
    if (pathLen !== undefined && casBelow > pathLen) {
      constraints(`"${cert.subject}" allows ${pathLen} CAs below it, the chain has ${casBelow}`);
    }
  }

  // Signatures: every certificate below the root, by its issuer; all checks run concurrently.
  const checks: Promise<void>[] = [];
  for (let i = 1; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i - 1]!;
    if (cache.wasVerified(cert, issuer)) continue;
    checks.push(
      (i === 1 ? TRUSTED_ROOTS : cache).key(issuer).then(async (key) => {
        if (!(await verifyP384(key, cert.signature, cert.tbs))) {
          throw new TeegateError('CERT_SIGNATURE_INVALID', `signature on "${cert.subject}" does not verify with "${issuer.subject}"`);
        }
        cache.markVerified(cert, issuer);
      }),
    );
  }
  const leafKey = cache.key(leaf);
  await Promise.all(checks);
  return { chain, leaf, leafKey: await leafKey, rootFingerprint };
}

/** Every certificate of the path must be valid at `at` (milliseconds). */
export function checkValidity(chain: readonly Certificate[], at: number): void {
  for (const cert of chain) {
    if (at < cert.notBefore) {
      throw new TeegateError('CERT_NOT_YET_VALID', `"${cert.subject}" is valid from ${new Date(cert.notBefore).toISOString()}, verification time is ${new Date(at).toISOString()}`);
    }
    if (at > cert.notAfter) {
      throw new TeegateError('CERT_EXPIRED', `"${cert.subject}" expired at ${new Date(cert.notAfter).toISOString()}, verification time is ${new Date(at).toISOString()}`);
    }
  }
}
