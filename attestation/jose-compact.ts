/**
 * The compact serializations of JWS (RFC 7515 section 7.1) and JWE (RFC 7516 section 7.1), read
 * strictly before jose sees them: exactly three or five parts, each canonical base64url, and a
 * protected header that is a small JSON object with only the members the caller expects. jose
 * itself decodes base64url leniently (padding, the standard alphabet and stray characters pass),
 * honours `b64: false` and parses a header of any size, so one receipt would have many encodings
 * and a sealed request could make the enclave parse megabytes before anything is authenticated.
 */
import { fromBase64Url, fromUtf8, isCanonicalBase64Url } from './bytes';

/** Why a compact serialization was refused (the caller turns it into its own error code). */
export class CompactFormError extends Error {
  override readonly name = 'CompactFormError';
}

/** The parts of `text` when it has exactly `count` parts of canonical base64url; else CompactFormError. */
export function compactParts(text: string, count: 3 | 5): string[] {
  const parts = text.split('.', count + 1);
  if (parts.length !== count) throw new CompactFormError(`not a compact ${count === 3 ? 'JWS' : 'JWE'}: ${count} parts separated by dots expected`);
  for (const part of parts) {
    if (!isCanonicalBase64Url(part)) throw new CompactFormError('a part is not unpadded base64url (RFC 7515 section 2)');
  }
  return parts;
}

/**
 * The protected header (the first part, as compactParts gave it): at most `maxChars` of base64url,
 * a JSON object whose members are all in `allowed`; else CompactFormError.
 */
export function protectedHeader(part: string, maxChars: number, allowed: readonly string[]): Record<string, unknown> {
  if (part.length > maxChars) throw new CompactFormError(`protected header longer than ${maxChars} characters`);
  let header: unknown;
  try {
    header = JSON.parse(fromUtf8(fromBase64Url(part)));
  } catch {
    throw new CompactFormError('protected header is not base64url of UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CompactFormError('protected header is not a JSON object');
  const unknown = Object.keys(header).filter((name) => !allowed.includes(name));
  if (unknown.length > 0) throw new CompactFormError(`protected header may have only ${allowed.join(', ')}; it has ${unknown.slice(0, 4).map((n) => JSON.stringify(n.slice(0, 32))).join(', ')}`);
  return header as Record<string, unknown>;
}
