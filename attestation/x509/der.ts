/**
 * Strict DER reader (X.690) for certificates: definite, minimal lengths; low tag numbers only;
 * every length checked against its parent. Attacker-controlled input: every read is bounded.
 */
import { TeegateError } from '../errors';

export interface DerNode {
  /** The identifier octet (class, constructed bit, tag number < 31). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset one past the last content byte. */
  readonly end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function malformed(message: string): never {
  throw new TeegateError('CERT_MALFORMED', message);
}

/** Reads one TLV at `offset`, which must end at or before `limit`. */
export function readTlv(bytes: Uint8Array, offset: number, limit: number = bytes.length): DerNode {
  if (offset + 2 > limit) malformed(`truncated DER at offset ${offset}`);
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) malformed(`high tag number at offset ${offset}`);
  let pos = offset + 1;
  const first = bytes[pos++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) malformed(`indefinite length at offset ${offset} (BER, not DER)`);
    if (n > 3) malformed(`length of ${n} octets at offset ${offset}`);
    if (pos + n > limit) malformed(`truncated length at offset ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[pos++]!;
    if (len < 0x80 || (n > 1 && bytes[pos - n] === 0)) malformed(`non-minimal length at offset ${offset}`);
  }
  const end = pos + len;
  if (end > limit) malformed(`length ${len} at offset ${offset} runs past its container`);
  return { tag, start: offset, contentStart: pos, end };
}

/** Reads one TLV and checks its tag. */
export function expectTlv(bytes: Uint8Array, offset: number, limit: number, tag: number, what: string): DerNode {
  const node = readTlv(bytes, offset, limit);
  if (node.tag !== tag) malformed(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

/** The children of a constructed node. */
export function children(bytes: Uint8Array, node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) malformed(`tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  for (let pos = node.contentStart; pos < node.end; ) {
    const child = readTlv(bytes, pos, node.end);
    out.push(child);
    pos = child.end;
    if (out.length > 1024) malformed('too many DER elements');
  }
  return out;
}

export function content(bytes: Uint8Array, node: DerNode): Uint8Array {
  return bytes.subarray(node.contentStart, node.end);
}

export function raw(bytes: Uint8Array, node: DerNode): Uint8Array {
  return bytes.subarray(node.start, node.end);
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's content. */
export function oidToString(c: Uint8Array): string {
  if (c.length === 0 || c.length > 64) malformed('bad OID length');
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (v === 0 && b === 0x80) malformed('non-minimal OID arc');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) malformed('OID arc too large');
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    } else if (i === c.length - 1) malformed('truncated OID');
  }
  return parts.join('.');
}

/** A non-negative INTEGER's magnitude without the sign octet (for ECDSA r and s). */
export function unsignedInteger(bytes: Uint8Array, node: DerNode): Uint8Array {
  if (node.tag !== TAG.INTEGER) malformed('expected INTEGER');
  const c = content(bytes, node);
  if (c.length === 0) malformed('empty INTEGER');
  if (c[0]! & 0x80) malformed('negative INTEGER');
  if (c.length > 1 && c[0] === 0 && (c[1]! & 0x80) === 0) malformed('non-minimal INTEGER');
  return c[0] === 0 && c.length > 1 ? c.subarray(1) : c;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) to milliseconds, as RFC 5280 §4.1.2.5 requires. */
export function timeToMillis(bytes: Uint8Array, node: DerNode): number {
  const s = String.fromCharCode(...content(bytes, node));
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    return malformed(`bad certificate time ${JSON.stringify(s)}`);
  }
  const [mo, d, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m![i]));
  const ms = Date.UTC(year, mo! - 1, d!, h!, mi!, se!);
  const check = new Date(ms);
  if (check.getUTCMonth() !== mo! - 1 || check.getUTCDate() !== d! || h! > 23 || mi! > 59 || se! > 59) {
    malformed(`invalid certificate time ${JSON.stringify(s)}`);
  }
  return ms;
}
