/** CBOR encoder (preferred, shortest-form serialisation) for the formats teegate writes. */
import { TeegateError } from '../errors';
import { CborIndefinite, CborTag, type CborEncodable } from './types';

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    // Preferred serialisation: a bigint that fits in 32 bits takes the short forms below.
    if (typeof arg === 'bigint' && arg >= 0n && arg <= 0xffffffffn) arg = Number(arg);
    if (typeof arg === 'bigint' || arg > 0xffffffff) {
      const v = BigInt(arg);
      if (v < 0n || v > 0xffffffffffffffffn) throw new TeegateError('INTERNAL', 'CBOR integer out of range');
      this.byte(m | 27);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v);
      this.bytes(b);
    } else if (arg < 24) {
      this.byte(m | arg);
    } else if (arg <= 0xff) {
      this.byte(m | 24);
      this.byte(arg);
    } else if (arg <= 0xffff) {
      this.byte(m | 25);
      this.byte(arg >> 8);
      this.byte(arg & 0xff);
    } else {
      this.byte(m | 26);
      this.byte(arg >>> 24);
      this.byte((arg >> 16) & 0xff);
      this.byte((arg >> 8) & 0xff);
      this.byte(arg & 0xff);
    }
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const textEncoder = new TextEncoder();

function write(w: Writer, v: CborEncodable): void {
  if (v === null) return w.byte(0xf6);
  if (v === true) return w.byte(0xf5);
  if (v === false) return w.byte(0xf4);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TeegateError('INTERNAL', `cannot encode ${v} as a CBOR integer`);
    return v >= 0 ? w.head(0, v) : w.head(1, -1 - v);
  }
  if (typeof v === 'bigint') return v >= 0n ? w.head(0, v) : w.head(1, -1n - v);
  if (typeof v === 'string') {
    const b = textEncoder.encode(v);
    w.head(3, b.length);
    return w.bytes(b);
  }
  if (v instanceof Uint8Array) {
    w.head(2, v.length);
    return w.bytes(v);
  }
  if (v instanceof CborTag) {
    w.head(6, v.tag);
    return write(w, v.value as CborEncodable);
  }
  if (v instanceof CborIndefinite) {
    const inner = v.value;
    if (Array.isArray(inner)) {
      w.byte(0x9f);
      for (const x of inner) write(w, x as CborEncodable);
    } else {
      w.byte(0xbf);
      for (const [k, x] of inner) {
        write(w, k);
        write(w, x as CborEncodable);
      }
    }
    return w.byte(0xff);
  }
  if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v) write(w, x);
    return;
  }
  w.head(5, v.size);
  for (const [k, x] of v) {
    write(w, k);
    write(w, x);
  }
}

export function encodeCbor(value: CborEncodable): Uint8Array {
  const w = new Writer();
  write(w, value);
  return w.result();
}
