/**
 * A cache of parsed certificates, their imported keys and the issuer signatures already verified.
 * Entries are found by the certificate's signature and confirmed by comparing the whole DER, so a
 * different certificate never hits. Validity periods and constraints are not cached: the path
 * validator checks them on every use, so a cached chain never hides an expired certificate.
 */
import { bytesEqual, toHex } from '../bytes';
import { importP384PublicKey } from '../crypto/ecdsa-p384';
import { parseCertificate, type Certificate } from './certificate';

interface Entry {
  readonly cert: Certificate;
  key?: Promise<CryptoKey>;
  /** Hex signatures of issuers whose signature over this certificate verified. */
  readonly verifiedBy: Set<string>;
}

export class CertificateCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = 1024) {}

  private entry(der: Uint8Array): Entry {
    // The last 96 bytes hold the signature; together with the full-DER check below this is exact.
    const id = toHex(der.subarray(Math.max(0, der.length - 104)));
    const hit = this.entries.get(id);
    if (hit && bytesEqual(hit.cert.der, der)) return hit;
    const entry: Entry = { cert: parseCertificate(der.slice()), verifiedBy: new Set() };
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(id, entry);
    return entry;
  }

  parse(der: Uint8Array): Certificate {
    return this.entry(der).cert;
  }

  key(cert: Certificate): Promise<CryptoKey> {
    const e = this.entry(cert.der);
    if (!e.key) {
      e.key = importP384PublicKey(cert.publicKeyPoint);
      e.key.catch(() => (e.key = undefined));
    }
    return e.key;
  }

  wasVerified(cert: Certificate, issuer: Certificate): boolean {
    return this.entry(cert.der).verifiedBy.has(toHex(issuer.signature));
  }

  markVerified(cert: Certificate, issuer: Certificate): void {
    this.entry(cert.der).verifiedBy.add(toHex(issuer.signature));
  }
}

/** A cache for one verification: parses and imports once, remembers nothing afterwards. */
export function oneShotCache(): CertificateCache {
  return new CertificateCache(16);
}
