/** Byte helpers shared by every layer. Browser-safe: Uint8Array and WebCrypto only. */
import { TeegateError } from './errors';

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return out;
}

/** Strict hex: even length, [0-9a-fA-F] only. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TeegateError('INPUT_ENCODING_INVALID', 'invalid hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The value of each base64 character by its char code. */
const B64_VALUE = Uint8Array.from({ length: 128 }, (_, code) => Math.max(0, B64.indexOf(String.fromCharCode(code))));

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63]! : '=';
    out += i + 2 < bytes.length ? B64[n & 63]! : '=';
  }
  return out;
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Strict base64 (standard or URL alphabet, padding optional but canonical). Whitespace is
 * rejected unless `allowWhitespace` (MIME line breaks in files).
 */
export function fromBase64(text: string, options: { allowWhitespace?: boolean } = {}): Uint8Array {
  let s = options.allowWhitespace ? text.replace(/[\s]+/g, '') : text;
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new TeegateError('INPUT_ENCODING_INVALID', 'invalid base64 string');
  }
  const body = s.replace(/=+$/, '');
  if (body.length % 4 === 1 || (s.length !== body.length && s.length % 4 !== 0)) {
    throw new TeegateError('INPUT_ENCODING_INVALID', 'invalid base64 length');
  }
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  // Four characters make three bytes; the regular expression above has checked the alphabet.
  const whole = body.length - (body.length % 4);
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const n = (B64_VALUE[body.charCodeAt(i)]! << 18) | (B64_VALUE[body.charCodeAt(i + 1)]! << 12) | (B64_VALUE[body.charCodeAt(i + 2)]! << 6) | B64_VALUE[body.charCodeAt(i + 3)]!;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  let bits = 0;
  let acc = 0;
  for (let i = whole; i < body.length; i++) {
    acc = (acc << 6) | B64_VALUE[body.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new TeegateError('INPUT_ENCODING_INVALID', 'non-canonical base64 (trailing bits set)');
  }
  return out;
}

/**
 * Whether `text` is base64url as JOSE writes it (RFC 7515 section 2): the URL alphabet, no padding,
 * no whitespace, and no bits set past the last byte, so that bytes have exactly one encoding.
 */
export function isCanonicalBase64Url(text: string): boolean {
  const rest = text.length % 4;
  if (rest === 1 || !/^[A-Za-z0-9_-]*$/.test(text)) return false;
  if (rest === 0) return true;
  const code = text.charCodeAt(text.length - 1);
  const last = B64_VALUE[code === 45 ? 43 : code === 95 ? 47 : code]!; // - and _ are + and /
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

export function fromBase64Url(text: string): Uint8Array {
  if (/[+/=]/.test(text)) throw new TeegateError('INPUT_ENCODING_INVALID', 'invalid base64url string');
  return fromBase64(text);
}

const encoder = new TextEncoder();
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
// ignoreBOM: a leading byte order mark is kept as U+FEFF, not silently dropped, so text with one
// never passes for the canonical text without it (a log entry, a signed note).
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Strict UTF-8 decoding: invalid sequences throw instead of being replaced; a BOM is kept. */
export function fromUtf8(bytes: Uint8Array): string {
  return strictDecoder.decode(bytes);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** False for a string holding a lone UTF-16 surrogate, which no UTF-8 can carry (it would become U+FFFD). */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concatByteList(parts);
}

/**
 * concatBytes of a list. Use it for lists of any length: spreading a long list into a call
 * (`concatBytes(...parts)`) throws RangeError past about 100,000 elements.
 */
export function concatByteList(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Constant-time comparison (for equal lengths: the time does not depend on where bytes differ).
 * Lengths are public in every use here (nonces, digests).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Lexicographic order of byte strings (a shorter prefix first): negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Byte equality for public data (not secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * WebCrypto takes ArrayBuffer-backed views only: pass views through, copy anything backed by a
 * SharedArrayBuffer.
 */
export function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

function subtle(): SubtleCrypto {
  const c = globalThis.crypto;
  if (!c || !c.subtle) throw new TeegateError('INTERNAL', 'WebCrypto (crypto.subtle) is not available');
  return c.subtle;
}
export { subtle as webcrypto };

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', bufferSource(data)));
}
export async function sha384(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-384', bufferSource(data)));
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}
