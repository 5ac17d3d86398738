/**
 * Property tests (fast-check, fixed seed, bounded runs and time) of the enclave's PNG decoder and
 * the OCR pre-processing behind it, which every plain or sealed OCR request reaches with
 * attacker-chosen bytes: arbitrary bytes; the demo PNG with random edits; and the demo PNG with
 * its IHDR fields and its decompressed scanlines changed and everything re-encoded with valid CRCs
 * and zlib streams, so that the edits reach the header checks, inflation and the row filters
 * instead of stopping at a CRC. Nothing but INPUT_IMAGE_INVALID may escape; an accepted image has
 * exactly width × height × channels samples; its tensor has the model's shape and finite values
 * in [-1, 1]; no call takes long.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { isTeegateError } from '../../attestation/errors';
import { OCR_INPUT_HEIGHT, OCR_MAX_WIDTH, OCR_MIN_WIDTH, preprocessLineImage } from '../../enclave/models/ocr-preprocess';
import { decodePng } from '../../enclave/models/png';
import { PNG_SIGNATURE, pngChunk } from '../support/png';

const SEED = 20261124;
/** Per call, against blow-ups (exponential time on a small input), not a speed assertion: far above a GC pause or a stall of this shared VM (108 ms seen once at a 100 ms bound). */
const BOUND_MS = 1000;
const DEMO = new Uint8Array(readFileSync(join(__dirname, '../../enclave/models/demo/line.png')));

/** Decodes and pre-processes; 'ok' or the error code. Anything but INPUT_IMAGE_INVALID fails. */
function decodeAndPrepare(file: Uint8Array): string {
  const t0 = performance.now();
  try {
    const image = decodePng(file);
    if (image.pixels.length !== image.width * image.height * image.channels) throw new Error(`decoded ${image.pixels.length} samples for ${image.width}x${image.height}x${image.channels}`);
    const input = preprocessLineImage(image);
    const { width, data } = input;
    if (width < OCR_MIN_WIDTH || width > OCR_MAX_WIDTH || width % 8 !== 0 || data.length !== 3 * OCR_INPUT_HEIGHT * width) throw new Error(`tensor of width ${width} and ${data.length} values`);
    for (const v of data) if (!(v >= -1 && v <= 1)) throw new Error(`tensor value ${v}`);
    return 'ok';
  } catch (err) {
    if (!isTeegateError(err, 'INPUT_IMAGE_INVALID')) throw new Error(`escaped: ${String(err)}`);
    return err.code;
  } finally {
    const ms = performance.now() - t0;
    if (ms > BOUND_MS) throw new Error(`took ${ms.toFixed(1)} ms`);
  }
}

interface Chunk {
  type: string;
  data: Uint8Array;
}

function chunksOf(png: Uint8Array): Chunk[] {
  const view = new DataView(png.buffer, png.byteOffset, png.length);
  const out: Chunk[] = [];
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at);
    out.push({ type: String.fromCharCode(...png.subarray(at + 4, at + 8)), data: png.slice(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

/** A PNG file of these chunks, each with its correct CRC. */
function pngOf(chunks: readonly Chunk[]): Uint8Array {
  return Buffer.concat([PNG_SIGNATURE, ...chunks.map(({ type, data }) => pngChunk(type, data))]);
}

const DEMO_CHUNKS = chunksOf(DEMO);
const DEMO_IHDR = DEMO_CHUNKS.find((c) => c.type === 'IHDR')!.data;
const DEMO_RAW = new Uint8Array(inflateSync(Buffer.concat(DEMO_CHUNKS.filter((c) => c.type === 'IDAT').map((c) => c.data))));

type Edit = { pos: number; value: number } | { cut: number };
const edits = fc.array(fc.oneof(fc.record({ pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), fc.record({ cut: fc.nat() })), { minLength: 1, maxLength: 8 });

function applyEdits(bytes: Uint8Array, list: readonly Edit[]): Uint8Array {
  let b = bytes.slice();
  for (const e of list) {
    if (b.length === 0) break;
    if ('cut' in e) b = b.subarray(0, e.cut % b.length);
    else b[e.pos % b.length] = e.value;
  }
  return b;
}

describe('PNG decoder and OCR pre-processing on hostile bytes', () => {
  it('decodes the untouched demo file (control)', () => {
    expect(decodeAndPrepare(DEMO)).toBe('ok');
    expect(decodeAndPrepare(pngOf(DEMO_CHUNKS))).toBe('ok');
  });

  it('refuses arbitrary bytes, with or without the PNG signature, with INPUT_IMAGE_INVALID only', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 512 }), (signed, bytes) => {
        const file = signed ? Buffer.concat([PNG_SIGNATURE, bytes]) : bytes;
        expect(decodeAndPrepare(file)).toBe('INPUT_IMAGE_INVALID');
      }),
      { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 3000 },
    );
  });

  it('never lets a byte edit of the file through unless the file is unchanged', () => {
    fc.assert(
      fc.property(edits, (list) => {
        const file = applyEdits(DEMO, list);
        const result = decodeAndPrepare(file);
        if (Buffer.compare(file, DEMO) !== 0) expect(result).toBe('INPUT_IMAGE_INVALID'); // the chunk CRCs see every edit
      }),
      { seed: SEED, numRuns: 2000, interruptAfterTimeLimit: 4000 },
    );
  });

  it('handles any IHDR (size, depth, colour type, methods) with valid CRCs: decoded exactly or refused', () => {
    const ihdr = fc.record({
      width: fc.oneof(fc.constantFrom(0, 1, 509, 0x7fffffff, 0x80000000, 0xffffffff), fc.integer({ min: 1, max: 5000 })),
      height: fc.oneof(fc.constantFrom(0, 1, 55, 0x7fffffff, 0xffffffff), fc.integer({ min: 1, max: 5000 })),
      rest: fc.uint8Array({ minLength: 5, maxLength: 5 }),
      keep: fc.boolean(),
    });
    fc.assert(
      fc.property(ihdr, ({ width, height, rest, keep }) => {
        const data = DEMO_IHDR.slice();
        const view = new DataView(data.buffer);
        view.setUint32(0, width);
        view.setUint32(4, height);
        if (!keep) data.set(rest, 8);
        const file = pngOf(DEMO_CHUNKS.map((c) => (c.type === 'IHDR' ? { type: c.type, data } : c)));
        if (decodeAndPrepare(file) === 'ok') {
          // The scanlines are the demo's: only a header whose rows add up to exactly their length passes.
          const image = decodePng(file);
          expect(image.height * (image.width * image.channels + 1)).toBe(DEMO_RAW.length);
        }
      }),
      { seed: SEED, numRuns: 1500, interruptAfterTimeLimit: 5000 },
    );
  });

  it('handles any scanline bytes (filter types included) re-deflated with valid CRCs: decoded exactly or refused', () => {
    const byteSets = fc.array(fc.record({ pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 });
    const scanlines = fc.record({ list: byteSets, grow: fc.integer({ min: -3, max: 3 }) });
    let accepted = 0;
    fc.assert(
      fc.property(scanlines, ({ list, grow }) => {
        let raw = DEMO_RAW.slice();
        for (const e of list) raw[e.pos % raw.length] = e.value;
        if (grow < 0) raw = raw.subarray(0, raw.length + grow);
        if (grow > 0) raw = Buffer.concat([raw, new Uint8Array(grow)]);
        const idat = new Uint8Array(deflateSync(raw));
        const file = pngOf([...DEMO_CHUNKS.filter((c) => c.type === 'IHDR'), { type: 'IDAT', data: idat }, { type: 'IEND', data: new Uint8Array(0) }]);
        const result = decodeAndPrepare(file);
        if (grow !== 0) expect(result).toBe('INPUT_IMAGE_INVALID'); // the data must be exactly the header's size
        if (result === 'ok') accepted++;
      }),
      { seed: SEED, numRuns: 1500, interruptAfterTimeLimit: 6000 },
    );
    // Sample edits with the right length are a valid image (or an unknown filter type): some must pass.
    expect(accepted).toBeGreaterThan(0);
  });
});
