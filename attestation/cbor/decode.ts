/**
 * Strict CBOR decoder for untrusted input (RFC 8949).
 * - definite and indefinite lengths (arrays, maps, byte and text strings);
 * - tags only where the caller allows them (`allowedTags`), everything else CBOR_UNSUPPORTED;
 * - no floats, no undefined, no other simple values (these formats never use them);
 * - map keys must be text or integers and unique (CBOR_DUPLICATE_KEY);
 * - limits on nesting depth, item count and string length; declared lengths are checked against the
 *   remaining input before anything is allocated (no length bombs);
 * - text strings must be valid UTF-8; trailing bytes after the top-level item are rejected.
 * Every byte here is attacker-controlled.
 */
import { concatByteList } from '../bytes';
import { TeegateError } from '../errors';
import { CborTag, type CborKey, type CborMap, type CborValue } from './types';

export interface CborDecodeOptions {
  /** Maximum nesting of arrays, maps and tags (default 16). */
  maxDepth?: number;
  /** Maximum number of data items in the whole input (default 100,000). */
  maxItems?: number;
  /** Maximum length of one byte or text string (default 1 MiB). */
  maxStringLength?: number;
  /** Maximum input size (default 1 MiB). */
  maxInputLength?: number;
  /** Tags accepted (default none). */
  allowedTags?: readonly number[];
  /** Accept bytes after the first item (default false). */
  allowTrailing?: boolean;
}

const DEFAULTS = {
  maxDepth: 16,
  maxItems: 100_000,
  maxStringLength: 1 << 20,
  maxInputLength: 1 << 20,
};

const BREAK = Symbol('break');
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function malformed(message: string): never {
  throw new TeegateError('CBOR_MALFORMED', message);
}

class Reader {
  pos = 0;
  items = 0;
  private readonly view: DataView;
  private readonly maxDepth: number;
  private readonly maxItems: number;
  private readonly maxString: number;
  private readonly tags: ReadonlySet<number>;

  constructor(
    readonly bytes: Uint8Array,
    options: CborDecodeOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // The decoder recurses: cap the depth a caller may ask for far below any stack limit.
    this.maxDepth = Math.min(options.maxDepth ?? DEFAULTS.maxDepth, 256);
    this.maxItems = options.maxItems ?? DEFAULTS.maxItems;
    this.maxString = options.maxStringLength ?? DEFAULTS.maxStringLength;
    this.tags = new Set(options.allowedTags ?? []);
  }

  private need(n: number): void {
    if (n > this.bytes.length - this.pos) malformed(`truncated: need ${n} bytes at offset ${this.pos}`);
  }

  /** Reads the argument of an initial byte; returns -1 for the indefinite marker (info 31). */
  private argument(info: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1);
        return this.bytes[this.pos++]!;
      case 25: {
        this.need(2);
        const v = this.view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return -1;
      default:
        return malformed(`reserved additional information ${info} at offset ${this.pos - 1}`);
    }
  }

  private length(info: number, what: string): number {
    const n = this.argument(info);
    if (typeof n === 'bigint') throw new TeegateError('CBOR_LIMIT_EXCEEDED', `${what} length too large`);
    return n;
  }

  private countItem(): void {
    if (++this.items > this.maxItems) {
      throw new TeegateError('CBOR_LIMIT_EXCEEDED', `more than ${this.maxItems} data items`);
    }
  }

  private stringBytes(len: number, what: string): Uint8Array {
    // Callers pass a definite length; a negative one (indefinite) read here would never advance.
    if (!Number.isSafeInteger(len) || len < 0) malformed(`${what} has no definite length here`);
    if (len > this.maxString) {
      throw new TeegateError('CBOR_LIMIT_EXCEEDED', `${what} of ${len} bytes exceeds the limit of ${this.maxString}`);
    }
    this.need(len);
    const out = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** A definite or indefinite (chunked) byte/text string; chunks must be definite, same major type. */
  private string(major: 2 | 3, info: number): Uint8Array {
    const what = major === 2 ? 'byte string' : 'text string';
    const len = this.length(info, what);
    if (len >= 0) return this.stringBytes(len, what);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      this.need(1);
      const ib = this.bytes[this.pos++]!;
      if (ib === 0xff) break;
      if (ib >> 5 !== major) malformed(`chunk of another type inside an indefinite ${what}`);
      const clen = this.length(ib & 31, what);
      if (clen < 0) malformed(`nested indefinite ${what} chunk`);
      const chunk = this.stringBytes(clen, what);
      // RFC 8949 §3.2.3: a UTF-8 character cannot be spread between text chunks.
      if (major === 3) this.text(chunk);
      total += chunk.length;
      if (total > this.maxString) {
        throw new TeegateError('CBOR_LIMIT_EXCEEDED', `${what} exceeds the limit of ${this.maxString} bytes`);
      }
      chunks.push(chunk);
    }
    return concatByteList(chunks);
  }

  private text(bytes: Uint8Array): string {
    try {
      return utf8.decode(bytes);
    } catch {
      return malformed('text string is not valid UTF-8');
    }
  }

  item(depth: number): CborValue | typeof BREAK {
    this.need(1);
    const ib = this.bytes[this.pos++]!;
    if (ib === 0xff) return BREAK;
    this.countItem();
    const major = ib >> 5;
    const info = ib & 31;
    switch (major) {
      case 0: {
        if (info === 31) malformed('indefinite length on an integer');
        return this.argument(info);
      }
      case 1: {
        if (info === 31) malformed('indefinite length on an integer');
        const n = this.argument(info);
        if (typeof n === 'bigint') return -1n - n;
        return n < Number.MAX_SAFE_INTEGER ? -1 - n : -1n - BigInt(n);
      }
      case 2:
        return this.string(2, info).slice();
      case 3:
        return this.text(this.string(3, info));
      case 4:
        return this.array(info, depth + 1);
      case 5:
        return this.map(info, depth + 1);
      case 6: {
        if (info === 31) malformed('indefinite length on a tag');
        const tag = this.argument(info);
        if (typeof tag !== 'number' || !this.tags.has(tag)) {
          throw new TeegateError('CBOR_UNSUPPORTED', `tag ${String(tag)} is not allowed here`);
        }
        this.enter(depth + 1);
        const inner = this.item(depth + 1);
        if (inner === BREAK) malformed('break code as a tag content');
        return new CborTag(tag, inner);
      }
      default: {
        // major 7: simple values and floats
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) throw new TeegateError('CBOR_UNSUPPORTED', 'undefined is not allowed');
        if (info >= 25 && info <= 27) throw new TeegateError('CBOR_UNSUPPORTED', 'floating-point values are not allowed');
        if (info === 31) malformed(`unexpected break code at offset ${this.pos - 1}`);
        if (info >= 28) malformed(`reserved simple value encoding at offset ${this.pos - 1}`);
        throw new TeegateError('CBOR_UNSUPPORTED', `simple value ${info === 24 ? this.bytes[this.pos] : info} is not allowed`);
      }
    }
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) {
      throw new TeegateError('CBOR_LIMIT_EXCEEDED', `nesting deeper than ${this.maxDepth}`);
    }
  }

  private array(info: number, depth: number): CborValue[] {
    this.enter(depth);
    const len = this.length(info, 'array');
    const out: CborValue[] = [];
    if (len >= 0) {
      // Each element takes at least one byte: a length above the remaining input is a lie.
      if (len > this.bytes.length - this.pos) malformed(`array of ${len} items exceeds the remaining input`);
      for (let i = 0; i < len; i++) {
        const v = this.item(depth);
        if (v === BREAK) malformed('break code inside a definite-length array');
        out.push(v);
      }
      return out;
    }
    for (;;) {
      const v = this.item(depth);
      if (v === BREAK) return out;
      out.push(v);
    }
  }

  private map(info: number, depth: number): CborMap {
    this.enter(depth);
    const len = this.length(info, 'map');
    const out: CborMap = new Map();
    if (len >= 0 && len * 2 > this.bytes.length - this.pos) {
      malformed(`map of ${len} pairs exceeds the remaining input`);
    }
    for (let i = 0; len < 0 || i < len; i++) {
      const keyOffset = this.pos;
      const k = this.item(depth);
      if (k === BREAK) {
        if (len < 0) return out;
        malformed('break code inside a definite-length map');
      }
      if (typeof k !== 'string' && typeof k !== 'number') {
        throw new TeegateError('CBOR_UNSUPPORTED', `map key at offset ${keyOffset} is not a text string or an integer`);
      }
      if (out.has(k)) throw new TeegateError('CBOR_DUPLICATE_KEY', `duplicate map key ${JSON.stringify(k)}`);
      const v = this.item(depth);
      if (v === BREAK) malformed('break code in place of a map value');
      out.set(k as CborKey, v);
    }
    return out;
  }
}

/** Decodes exactly one CBOR item from `bytes` (plus nothing else unless `allowTrailing`). */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborValue {
  const maxInput = options.maxInputLength ?? DEFAULTS.maxInputLength;
  if (bytes.length > maxInput) {
    throw new TeegateError('CBOR_LIMIT_EXCEEDED', `input of ${bytes.length} bytes exceeds the limit of ${maxInput}`);
  }
  if (bytes.length === 0) malformed('empty input');
  const reader = new Reader(bytes, options);
  const value = reader.item(0);
  if (value === BREAK) malformed('break code at top level');
  if (!options.allowTrailing && reader.pos !== bytes.length) {
    throw new TeegateError('CBOR_TRAILING_BYTES', `${bytes.length - reader.pos} bytes after the CBOR item`);
  }
  return value;
}
