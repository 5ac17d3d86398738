/**
 * A small strict PNG decoder (RFC 2083 / PNG 3rd edition) for the OCR model's input: 8-bit
 * grayscale, gray+alpha, RGB or RGBA, non-interlaced. The file is attacker-controlled: every chunk
 * CRC is checked, the image size is bounded before inflating, and inflation may not produce more
 * bytes than the header promises. Everything else (palette, 1/2/4/16-bit, Adam7) is rejected with
 * INPUT_IMAGE_INVALID rather than guessed at.
 */
import { crc32, inflateSync } from 'node:zlib';
import { TeegateError } from '../../attestation/errors';

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** Row-major samples, `channels` bytes per pixel, no padding. */
  pixels: Uint8Array;
}

/** Largest decoded image accepted, in samples (bytes). */
export const PNG_MAX_DECODED_BYTES = 16 * 1024 * 1024;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 4: 2, 2: 3, 6: 4 };

function bad(message: string, cause?: unknown): TeegateError {
  return new TeegateError('INPUT_IMAGE_INVALID', `PNG: ${message}`, cause === undefined ? undefined : { cause });
}

interface Header {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

function parseHeader(data: Uint8Array): Header {
  if (data.length !== 13) throw bad('IHDR must be 13 bytes');
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const width = view.getUint32(0);
  const height = view.getUint32(4);
  const [bitDepth, colorType, compression, filter, interlace] = data.subarray(8);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) throw bad('bad image size');
  const channels = CHANNELS[colorType!];
  if (channels === undefined) throw bad(`colour type ${colorType} is not supported (gray, gray+alpha, RGB, RGBA)`);
  if (bitDepth !== 8) throw bad(`bit depth ${bitDepth} is not supported (8 only)`);
  if (compression !== 0 || filter !== 0) throw bad('unknown compression or filter method');
  if (interlace !== 0) throw bad('interlaced images are not supported');
  if (width * height * channels > PNG_MAX_DECODED_BYTES) throw bad(`image ${width}x${height} is too large`);
  return { width, height, channels };
}

/** Reads the chunks: IHDR first, consecutive IDATs, IEND last with nothing after it. */
function readChunks(file: Uint8Array): { header: Header; idat: Uint8Array } {
  if (file.length < 8 || SIGNATURE.some((b, i) => file[i] !== b)) throw bad('not a PNG file (bad signature)');
  const view = new DataView(file.buffer, file.byteOffset, file.length);
  let offset = 8;
  let header: Header | undefined;
  const idat: Uint8Array[] = [];
  let idatDone = false;
  let palette = false;
  for (;;) {
    if (offset + 12 > file.length) throw bad('truncated file (no IEND chunk)');
    const length = view.getUint32(offset);
    if (length > file.length - offset - 12) throw bad('truncated chunk');
    const typeAndData = file.subarray(offset + 4, offset + 8 + length);
    const type = String.fromCharCode(...typeAndData.subarray(0, 4));
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad('bad chunk type');
    if (crc32(typeAndData) !== view.getUint32(offset + 8 + length)) throw bad(`CRC mismatch in ${type} chunk`);
    const data = typeAndData.subarray(4);
    offset += 12 + length;
    if (header === undefined && type !== 'IHDR') throw bad('first chunk is not IHDR');
    if (type === 'IHDR') {
      if (header !== undefined) throw bad('repeated IHDR');
      header = parseHeader(data);
    } else if (type === 'IDAT') {
      if (idatDone) throw bad('IDAT chunks are not consecutive');
      idat.push(data);
    } else if (type === 'IEND') {
      if (length !== 0) throw bad('IEND must be empty');
      if (offset !== file.length) throw bad('data after IEND');
      break;
    } else if (type === 'PLTE') {
      // A suggested palette is allowed for RGB and RGBA only, once, before the image data.
      if (header!.channels < 3) throw bad('PLTE in a grayscale image'); // header: IHDR came first (checked above)
      if (palette || idat.length > 0) throw bad('PLTE repeated or after IDAT');
      palette = true;
    } else {
      if (idat.length > 0) idatDone = true;
      // Ancillary chunks (lower-case first letter) are safe to ignore.
      if (type[0] === type[0]!.toUpperCase()) throw bad(`unknown critical chunk ${type}`);
    }
  }
  if (header === undefined || idat.length === 0) throw bad('no image data');
  return { header, idat: Buffer.concat(idat) };
}

/**
 * Undoes the per-row filters (PNG spec section 9) into a new buffer. One loop per filter type, so
 * the inner loops carry no branches: this runs on every inference's input.
 */
function unfilter(raw: Uint8Array, { width, height, channels }: Header): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    // The row above, or a row of zeros for the first one (prev < 0 reads as 0 below).
    const prev = row - stride;
    const first = y === 0;
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let x = 0; x < channels; x++) out[row + x] = raw[src + x]!;
        for (let x = channels; x < stride; x++) out[row + x] = (raw[src + x]! + out[row + x - channels]!) & 0xff;
        break;
      case 2:
        if (first) out.set(raw.subarray(src, src + stride), row);
        else for (let x = 0; x < stride; x++) out[row + x] = (raw[src + x]! + out[prev + x]!) & 0xff;
        break;
      case 3:
        for (let x = 0; x < channels; x++) out[row + x] = (raw[src + x]! + (first ? 0 : out[prev + x]! >> 1)) & 0xff;
        if (first) for (let x = channels; x < stride; x++) out[row + x] = (raw[src + x]! + (out[row + x - channels]! >> 1)) & 0xff;
        else for (let x = channels; x < stride; x++) out[row + x] = (raw[src + x]! + ((out[row + x - channels]! + out[prev + x]!) >> 1)) & 0xff;
        break;
      case 4:
        // With no row above, Paeth is the left byte (filter 1); at the left edge, the byte above.
        if (first) {
          for (let x = 0; x < channels; x++) out[row + x] = raw[src + x]!;
          for (let x = channels; x < stride; x++) out[row + x] = (raw[src + x]! + out[row + x - channels]!) & 0xff;
          break;
        }
        for (let x = 0; x < channels; x++) out[row + x] = (raw[src + x]! + out[prev + x]!) & 0xff;
        for (let x = channels; x < stride; x++) {
          const a = out[row + x - channels]!;
          const b = out[prev + x]!;
          const c = out[prev + x - channels]!;
          const pa = Math.abs(b - c); // |p - a| with p = a + b - c
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + b - c - c);
          const predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          out[row + x] = (raw[src + x]! + predictor) & 0xff;
        }
        break;
      default:
        throw bad(`unknown filter type ${filter} in row ${y}`);
    }
  }
  return out;
}

/** Decodes a PNG file; throws INPUT_IMAGE_INVALID for anything malformed or unsupported. */
export function decodePng(file: Uint8Array): DecodedImage {
  const { header, idat } = readChunks(file);
  const expected = header.height * (header.width * header.channels + 1);
  let raw: Buffer;
  let consumed: number;
  try {
    // `info` also returns the engine, whose bytesWritten is the compressed bytes it read: zlib
    // stops at the end of the first stream and would ignore anything after it.
    const inflated = inflateSync(idat, { maxOutputLength: expected + 1, info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    raw = inflated.buffer;
    consumed = inflated.engine.bytesWritten;
  } catch (err) {
    throw bad('corrupt or oversized compressed data', err);
  }
  if (consumed !== idat.length) throw bad(`${idat.length - consumed} bytes after the compressed image data`);
  if (raw.length !== expected) throw bad(`image data is ${raw.length} bytes, expected ${expected}`);
  return { ...header, pixels: unfilter(raw, header) };
}
