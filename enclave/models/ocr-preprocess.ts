/**
 * PaddleOCR text-recognition pre-processing (tools/infer/predict_rec.py, resize_norm_img):
 * resize the line image to height 48 keeping its aspect ratio (bilinear, as cv2.INTER_LINEAR),
 * scale to [-1, 1] with ((x / 255) - 0.5) / 0.5, channels in BGR order (PaddleOCR reads images
 * with OpenCV), NCHW, padded on the right with zeros. The tensor width is at least 320 (PaddleOCR's
 * default rec_image_shape 3,48,320), a multiple of 8, and at most 1280; wider lines are squeezed.
 * Transparent pixels are laid over white.
 */
import type { PlainTensor } from './model-session';
import { decodePng, type DecodedImage } from './png';

export const OCR_INPUT_HEIGHT = 48;
export const OCR_MIN_WIDTH = 320;
export const OCR_MAX_WIDTH = 1280;

export interface OcrInput {
  /** NCHW float32, [1, 3, 48, width]. */
  data: Float32Array;
  width: number;
  /** Columns holding the resized image; the rest is padding. */
  resizedWidth: number;
}

/**
 * Row `y` of channel `bgr` (0 B, 1 G, 2 R) of an image with alpha, composited over white into
 * `out` (0..255, Float64 so the resize computes exactly what a per-sample formula would). Only the
 * two source rows an output row needs are composited: memory stays O(width) whatever the image.
 */
function compositeRow(image: DecodedImage, y: number, bgr: number, out: Float64Array): void {
  const { channels, pixels, width } = image;
  const offset = channels === 4 ? 2 - bgr : 0;
  for (let x = 0, at = y * width * channels; x < width; x++, at += channels) {
    const a = pixels[at + channels - 1]! / 255;
    out[x] = pixels[at + offset]! * a + 255 * (1 - a);
  }
}

export function preprocessLineImage(image: DecodedImage): OcrInput {
  const h = OCR_INPUT_HEIGHT;
  const resizedWidth = Math.max(1, Math.min(OCR_MAX_WIDTH, Math.ceil((h * image.width) / image.height)));
  const width = Math.min(OCR_MAX_WIDTH, Math.max(OCR_MIN_WIDTH, Math.ceil(resizedWidth / 8) * 8));
  const data = new Float32Array(3 * h * width);
  const scaleX = image.width / resizedWidth;
  const scaleY = image.height / h;
  // Half-pixel centres, clamped at the borders (OpenCV's INTER_LINEAR); the columns' source
  // positions and weights are the same for every row, so they are computed once.
  const x0s = new Int32Array(resizedWidth);
  const x1s = new Int32Array(resizedWidth);
  const fxs = new Float64Array(resizedWidth);
  for (let x = 0; x < resizedWidth; x++) {
    const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), image.width - 1);
    const x0 = Math.floor(sx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, image.width - 1);
    fxs[x] = sx - x0;
  }
  const gray = image.channels <= 2;
  // Without alpha, samples are read in place: channel c of pixel i is pixels[i * stride + offset].
  // With alpha, each source row an output row needs is composited once per channel into rowA (row
  // y0) or rowB (row y1); consecutive output rows mostly share their source rows.
  const alpha = image.channels === 2 || image.channels === 4;
  const stride = alpha ? 1 : image.channels;
  let rowA = alpha ? new Float64Array(image.width) : image.pixels;
  let rowB = alpha ? new Float64Array(image.width) : image.pixels;
  for (let c = 0; c < 3; c++) {
    if (gray && c > 0) {
      // B, G and R are the same plane: copy it.
      data.copyWithin(c * h * width, 0, h * width);
      continue;
    }
    const offset = alpha || image.channels === 1 ? 0 : 2 - c; // B is the third byte of RGB
    let heldA = -1;
    let heldB = -1;
    for (let y = 0; y < h; y++) {
      const at = (c * h + y) * width;
      const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), image.height - 1);
      const y0 = Math.floor(sy);
      const y1 = Math.min(y0 + 1, image.height - 1);
      const fy = sy - y0;
      if (alpha) {
        if (y0 === heldB) {
          [rowA, rowB] = [rowB, rowA];
          [heldA, heldB] = [heldB, heldA];
        } else if (y0 !== heldA) {
          compositeRow(image, y0, c, rowA as Float64Array);
          heldA = y0;
        }
        if (y1 !== heldB) {
          compositeRow(image, y1, c, rowB as Float64Array);
          heldB = y1;
        }
      }
      const row0 = alpha ? 0 : y0 * image.width;
      const row1 = alpha ? 0 : y1 * image.width;
      for (let x = 0; x < resizedWidth; x++) {
        const x0 = x0s[x]!;
        const x1 = x1s[x]!;
        const fx = fxs[x]!;
        const top = rowA[(row0 + x0) * stride + offset]! * (1 - fx) + rowA[(row0 + x1) * stride + offset]! * fx;
        const bottom = rowB[(row1 + x0) * stride + offset]! * (1 - fx) + rowB[(row1 + x1) * stride + offset]! * fx;
        const v = top * (1 - fy) + bottom * fy;
        data[at + x] = (v / 255 - 0.5) / 0.5;
      }
    }
  }
  return { data, width, resizedWidth };
}

/**
 * The OCR model's pre-processing as its worker thread runs it (WorkerPrepare in model-session.ts):
 * a PNG file (strictly decoded: INPUT_IMAGE_INVALID) → the model's one input, [1, 3, 48, width].
 */
export function ocrFeeds(png: Uint8Array, inputNames: readonly string[]): Record<string, PlainTensor> {
  const input = preprocessLineImage(decodePng(png));
  return { [inputNames[0]!]: { type: 'float32', data: input.data, dims: [1, 3, OCR_INPUT_HEIGHT, input.width] } };
}
