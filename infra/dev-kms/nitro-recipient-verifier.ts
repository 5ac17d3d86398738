/**
 * The Recipient verifier the dev KMS uses: the project's Nitro verifier, pinned to the roots the
 * operator configured (the dev attester's root in development; never trusted implicitly).
 * Debug-mode documents pass the verifier: as in AWS KMS, whether all-zero PCRs are acceptable is
 * the key policy's decision (a condition on ImageSha384 / PCR<n> rejects them).
 */
import { TeegateError } from '../../attestation/errors';
import { verifyAttestation } from '../../attestation/nitro/verify';
import type { VerifyRecipientDocument } from './recipient';

export interface NitroRecipientVerifierOptions {
  /** Trusted roots, DER or PEM. */
  readonly rootCertificates: readonly (Uint8Array | string)[];
  /** Oldest acceptable document, against its own timestamp (default 5 minutes). */
  readonly maxAgeMs?: number;
  /** Clock (ms since the epoch), for tests. */
  readonly now?: () => number;
}

export const DEFAULT_RECIPIENT_MAX_AGE_MS = 5 * 60 * 1000;

export function nitroRecipientVerifier(options: NitroRecipientVerifierOptions): VerifyRecipientDocument {
  const now = options.now ?? Date.now;
  return async (document) => {
    const verified = await verifyAttestation(document, {
      at: now(),
      rootCertificates: options.rootCertificates,
      policy: { allowDebug: true, maxAgeMs: options.maxAgeMs ?? DEFAULT_RECIPIENT_MAX_AGE_MS },
    });
    if (verified.publicKey === undefined) {
      throw new TeegateError('PUBLIC_KEY_MISMATCH', 'the attestation document has no public_key to encrypt the response to');
    }
    return { pcrs: verified.pcrs, publicKey: verified.publicKey };
  };
}
