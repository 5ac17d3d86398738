/**
 * Small DER writer (X.690) for the certificates the dev attester issues: definite, minimal
 * lengths; minimal INTEGERs; times chosen as RFC 5280 §4.1.2.5 requires. Every function returns the
 * complete TLV. The reader that checks this output is `der.ts`.
 */
import { compareBytes, concatByteList, concatBytes } from '../bytes';
import { TeegateError } from '../errors';
import { TAG } from './der';

function invalid(message: string): never {
  throw new TeegateError('INTERNAL', `DER writer: ${message}`);
}

function lengthOctets(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  if (bytes.length > 3) invalid(`content of ${length} bytes is too long`);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One TLV with a low-number identifier octet (class, constructed bit and tag number < 31). */
export function derTlv(tag: number, content: Uint8Array): Uint8Array {
  if ((tag & 0x1f) === 0x1f || tag < 0 || tag > 0xff) invalid(`tag 0x${tag.toString(16)} is not a low tag number`);
  return concatBytes(Uint8Array.of(tag), lengthOctets(content.length), content);
}

export function derSequence(...items: Uint8Array[]): Uint8Array {
  return derTlv(TAG.SEQUENCE, concatByteList(items));
}

/** SET OF: DER orders the encoded elements (X.690 §11.6). */
export function derSet(...items: Uint8Array[]): Uint8Array {
  return derTlv(TAG.SET, concatByteList([...items].sort(compareBytes)));
}

/**
 * INTEGER from a non-negative value: a number, a bigint, or big-endian magnitude bytes. Leading
 * zero octets are dropped and one is added when the high bit would read as a sign.
 */
export function derInteger(value: number | bigint | Uint8Array): Uint8Array {
  let magnitude: Uint8Array;
  if (value instanceof Uint8Array) {
    magnitude = value;
  } else {
    let v = BigInt(value);
    if (v < 0n) invalid('negative INTEGER');
    const bytes: number[] = [];
    do {
      bytes.unshift(Number(v & 0xffn));
      v >>= 8n;
    } while (v > 0n);
    magnitude = Uint8Array.from(bytes);
  }
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(start);
  const content = trimmed[0]! & 0x80 ? concatBytes(Uint8Array.of(0), trimmed) : trimmed;
  return derTlv(TAG.INTEGER, content);
}

export function derBoolean(value: boolean): Uint8Array {
  return derTlv(TAG.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

export function derNull(): Uint8Array {
  return derTlv(TAG.NULL, new Uint8Array(0));
}

/** OBJECT IDENTIFIER from dotted-decimal text. */
export function derOid(dotted: string): Uint8Array {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) invalid(`bad OID ${JSON.stringify(dotted)}`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [first, second] = arcs as [bigint, bigint];
  if (first < 2n && second > 39n) invalid(`bad OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    groups.forEach((g, i) => out.push(i < groups.length - 1 ? g | 0x80 : g));
  }
  return derTlv(TAG.OID, Uint8Array.from(out));
}

export function derUtf8String(text: string): Uint8Array {
  return derTlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

/** PrintableString: A-Z a-z 0-9 space ' ( ) + , - . / : = ? only (X.680 §41.4). */
export function derPrintableString(text: string): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) invalid(`${JSON.stringify(text)} is not a PrintableString`);
  return derTlv(TAG.PRINTABLE_STRING, Uint8Array.from(text, (c) => c.charCodeAt(0)));
}

export function derOctetString(bytes: Uint8Array): Uint8Array {
  return derTlv(TAG.OCTET_STRING, bytes);
}

/** BIT STRING of whole octets, or of `unusedBits` (0..7) fewer bits in the last octet. */
export function derBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (unusedBits > 0 && bytes.length === 0)) {
    invalid('bad BIT STRING unused bit count');
  }
  if (unusedBits > 0 && (bytes[bytes.length - 1]! & ((1 << unusedBits) - 1)) !== 0) invalid('BIT STRING unused bits must be zero');
  return derTlv(TAG.BIT_STRING, concatBytes(Uint8Array.of(unusedBits), bytes));
}

/**
 * A NamedBitList BIT STRING (keyUsage): bit 0 is the high bit of the first octet; DER drops trailing
 * zero bits (X.690 §11.2.2).
 */
export function derNamedBits(bits: readonly number[]): Uint8Array {
  if (bits.length === 0) return derBitString(new Uint8Array(0));
  const highest = Math.max(...bits);
  if (bits.some((b) => !Number.isInteger(b) || b < 0 || b > 63)) invalid('bad named bit');
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return derBitString(bytes, 7 - (highest & 7));
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * Time for a certificate validity field, at whole seconds: UTCTime (YYMMDDHHMMSSZ) for 1950..2049,
 * GeneralizedTime (YYYYMMDDHHMMSSZ) otherwise (RFC 5280 §4.1.2.5).
 */
export function derTime(ms: number): Uint8Array {
  if (!Number.isFinite(ms)) invalid('time is not finite');
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) invalid(`year ${year} cannot be written`);
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  if (year >= 1950 && year <= 2049) return derTlv(TAG.UTC_TIME, ascii(`${two(year % 100)}${rest}`));
  return derTlv(TAG.GENERALIZED_TIME, ascii(`${String(year).padStart(4, '0')}${rest}`));
}

/** A context-specific tag [n]: constructed (EXPLICIT, or IMPLICIT over a constructed type) or primitive. */
export function derContext(tagNumber: number, content: Uint8Array, constructed = true): Uint8Array {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) invalid(`context tag [${tagNumber}]`);
  return derTlv(0x80 | (constructed ? 0x20 : 0) | tagNumber, content);
}
