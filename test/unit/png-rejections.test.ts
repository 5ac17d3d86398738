/**
 * The OCR model's PNG decoder (enclave/models/png.ts) on hostile files whose every chunk has a
 * valid CRC, so that the structural check named in each case is the one that refuses the file.
 * All refusals share one code (INPUT_IMAGE_INVALID): the message tells which check fired.
 */
import { deflateSync } from 'node:zlib';
import { isTeegateError } from '../../attestation/errors';
import { decodePng } from '../../enclave/models/png';
import { PNG_SIGNATURE, pngChunk } from '../support/png';

/** IHDR data of a `width` x `height` 8-bit gray image, with any byte overridden. */
function ihdrData(width = 2, height = 1, over: Partial<Record<8 | 9 | 10 | 11 | 12, number>> = {}): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bit depth
  data[9] = 0; // gray
  for (const [at, value] of Object.entries(over)) data[Number(at)] = value;
  return data;
}

const IHDR = pngChunk('IHDR', ihdrData());
/** The one row of the 2x1 gray image: filter 0, then two samples. */
const IDAT = pngChunk('IDAT', deflateSync(Buffer.from([0, 0, 255])));
const IEND = pngChunk('IEND', new Uint8Array(0));
const png = (...chunks: Buffer[]): Buffer => Buffer.concat([PNG_SIGNATURE, ...chunks]);

/** The refusal of decodePng(file) as { code, message }. */
function refusal(file: Uint8Array): { code: string; message: string } {
  try {
    decodePng(file);
  } catch (err) {
    if (isTeegateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('the file was accepted');
}

describe('PNG decoder: structural refusals (valid CRCs)', () => {
  it('decodes the well-formed file the cases below change one thing of', () => {
    expect(decodePng(png(IHDR, IDAT, IEND))).toEqual({ width: 2, height: 1, channels: 1, pixels: Uint8Array.from([0, 255]) });
    // Ancillary chunks (lower-case first letter) are skipped anywhere between IHDR and IEND.
    const text = pngChunk('tEXt', Buffer.from('Comment\0hello', 'latin1'));
    expect(decodePng(png(IHDR, text, IDAT, text, IEND)).pixels).toEqual(Uint8Array.from([0, 255]));
  });

  const cases: [string, () => Uint8Array, string][] = [
    ['an IHDR of 12 bytes', () => png(pngChunk('IHDR', ihdrData().subarray(0, 12)), IDAT, IEND), 'PNG: IHDR must be 13 bytes'],
    ['an IHDR of 14 bytes', () => png(pngChunk('IHDR', Buffer.concat([ihdrData(), Buffer.of(0)])), IDAT, IEND), 'PNG: IHDR must be 13 bytes'],
    ['an unknown compression method', () => png(pngChunk('IHDR', ihdrData(2, 1, { 10: 1 })), IDAT, IEND), 'PNG: unknown compression or filter method'],
    ['an unknown filter method', () => png(pngChunk('IHDR', ihdrData(2, 1, { 11: 1 })), IDAT, IEND), 'PNG: unknown compression or filter method'],
    ['image data before IHDR', () => png(IDAT, IHDR, IEND), 'PNG: first chunk is not IHDR'],
    ['an ancillary chunk before IHDR', () => png(pngChunk('tEXt', Buffer.from('a\0b', 'latin1')), IHDR, IDAT, IEND), 'PNG: first chunk is not IHDR'],
    ['IEND alone', () => png(IEND), 'PNG: first chunk is not IHDR'],
    ['a second IHDR', () => png(IHDR, pngChunk('IHDR', ihdrData(1, 1)), IDAT, IEND), 'PNG: repeated IHDR'],
    ['a second IHDR after the image data', () => png(IHDR, IDAT, IHDR, IEND), 'PNG: repeated IHDR'],
    ['IDAT chunks split by an ancillary chunk', () => png(IHDR, IDAT, pngChunk('tIME', Buffer.alloc(7)), IDAT, IEND), 'PNG: IDAT chunks are not consecutive'],
    ['an unknown critical chunk', () => png(IHDR, pngChunk('XYZW', Buffer.alloc(4)), IDAT, IEND), 'PNG: unknown critical chunk XYZW'],
    ['an unknown critical chunk after the image data', () => png(IHDR, IDAT, pngChunk('Abcd', new Uint8Array(0)), IEND), 'PNG: unknown critical chunk Abcd'],
    ['no IDAT chunk', () => png(IHDR, IEND), 'PNG: no image data'],
    ['no IDAT chunk, only ancillary ones', () => png(IHDR, pngChunk('tEXt', Buffer.from('a\0b', 'latin1')), IEND), 'PNG: no image data'],
  ];
  it.each(cases)('refuses %s: INPUT_IMAGE_INVALID', (_label, file, message) => {
    expect(refusal(file())).toEqual({ code: 'INPUT_IMAGE_INVALID', message });
  });
});
