/**
 * The OCR model's PNG decoder (enclave/models/png.ts) on hostile files whose every chunk has a
 * valid CRC, so that the structural check named in each case is the one that refuses the file.
 * All refusals share one code (INPUT_IMAGE_INVALID): the message tells which check fired.
 */
import { deflateSync } from 'node:zlib';
import { isTeegateError } from '../../attestation/errors';
import { decodePng, PNG_MAX_DECODED_BYTES } from '../../enclave/models/png';
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

  it('decodes an image of exactly the decoded size limit (4096 x 4096 gray)', () => {
    const side = Math.sqrt(PNG_MAX_DECODED_BYTES);
    const rows = new Uint8Array(side * (side + 1)); // filter 0 and zero samples on every row
    const image = decodePng(png(pngChunk('IHDR', ihdrData(side, side)), pngChunk('IDAT', deflateSync(rows)), IEND));
    expect({ width: image.width, height: image.height, bytes: image.pixels.length }).toEqual({ width: side, height: side, bytes: PNG_MAX_DECODED_BYTES });
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
    ['an ancillary-looking chunk type with a digit', () => png(IHDR, pngChunk('t3Xt', Buffer.from('a\0b', 'latin1')), IDAT, IEND), 'PNG: bad chunk type'],
    ['a CRC that does not match the chunk', () => { const file = png(IHDR, IDAT, IEND); const crcAt = PNG_SIGNATURE.length + IHDR.length + IDAT.length - 4; file[crcAt]! ^= 0x01; return file; }, 'PNG: CRC mismatch in IDAT chunk'],
    ['a palette in a gray+alpha image', () => png(pngChunk('IHDR', ihdrData(1, 1, { 9: 4 })), pngChunk('PLTE', Buffer.from([0, 0, 0])), pngChunk('IDAT', deflateSync(Buffer.from([0, 7, 255]))), IEND), 'PNG: PLTE in a grayscale image'],
    ['a second palette in an RGB image', () => {
      const plte = pngChunk('PLTE', Buffer.from([0, 0, 0]));
      return png(pngChunk('IHDR', ihdrData(1, 1, { 9: 2 })), plte, plte, pngChunk('IDAT', deflateSync(Buffer.from([0, 1, 2, 3]))), IEND);
    }, 'PNG: PLTE repeated or after IDAT'],
    // Inflation stops one byte past what the header promises: a DEFLATE bomb is never expanded.
    ['image data that inflates to 1 MiB for a 2x1 image', () => png(IHDR, pngChunk('IDAT', deflateSync(new Uint8Array(1 << 20))), IEND), 'PNG: corrupt or oversized compressed data'],
    ['image data one byte short of the image', () => png(IHDR, pngChunk('IDAT', deflateSync(Buffer.from([0, 0]))), IEND), 'PNG: image data is 2 bytes, expected 3'],
    ['a wrong first signature byte', () => { const file = png(IHDR, IDAT, IEND); file[0] = 0x88; return file; }, 'PNG: not a PNG file (bad signature)'],
    ['a signature with CR LF turned into LF (a text-mode transfer)', () => Buffer.concat([PNG_SIGNATURE.subarray(0, 4), Buffer.from([0x0a, 0x1a, 0x0a]), IHDR, IDAT, IEND]), 'PNG: not a PNG file (bad signature)'],
    ['a last chunk declaring one byte more than the file holds', () => { const file = png(IHDR, IDAT, IEND); file.writeUInt32BE(1, file.length - 12); return file; }, 'PNG: truncated chunk'],
    ['a file cut one byte into IEND\'s CRC', () => png(IHDR, IDAT, IEND).subarray(0, -1), 'PNG: truncated file (no IEND chunk)'],
    ['a width of 0', () => png(pngChunk('IHDR', ihdrData(0, 1)), pngChunk('IDAT', deflateSync(Buffer.from([0]))), IEND), 'PNG: bad image size'],
    ['a height of 0', () => png(pngChunk('IHDR', ihdrData(2, 0)), pngChunk('IDAT', deflateSync(new Uint8Array(0))), IEND), 'PNG: bad image size'],
    ['a width of 2^31', () => png(pngChunk('IHDR', ihdrData(2 ** 31, 1)), IDAT, IEND), 'PNG: bad image size'],
    ['a height of 2^31', () => png(pngChunk('IHDR', ihdrData(1, 2 ** 31)), IDAT, IEND), 'PNG: bad image size'],
    ['one sample more than the decoded size limit', () => png(pngChunk('IHDR', ihdrData(PNG_MAX_DECODED_BYTES + 1, 1)), IDAT, IEND), `PNG: image ${PNG_MAX_DECODED_BYTES + 1}x1 is too large`],
    ['no IDAT chunk, only ancillary ones', () => png(IHDR, pngChunk('tEXt', Buffer.from('a\0b', 'latin1')), IEND), 'PNG: no image data'],
  ];
  it.each(cases)('refuses %s: INPUT_IMAGE_INVALID', (_label, file, message) => {
    expect(refusal(file())).toEqual({ code: 'INPUT_IMAGE_INVALID', message });
  });
});
