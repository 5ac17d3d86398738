/**
 * PaddleOCR text-recognition pre-processing (tools/infer/predict_rec.py, resize_norm_img):
 * resize the line image to height 48 keeping its aspect ratio (bilinear, as cv2.INTER_LINEAR),
 * scale to [-1, 1] with ((x / 255) - 0.5) / 0.5, channels in BGR order (PaddleOCR reads images
 * with OpenCV), NCHW, padded on the right with zeros. The tensor width is at least 320 (PaddleOCR's
 * default rec_image_shape 3,48,320), a multiple of 8, and at most 1280; wider lines are squeezed.
 * Transparent pixels are laid over white.
 */
import type { DecodedImage } from './png';

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

/** Sample (0..255) of channel `bgr` (0 B, 1 G, 2 R) at (x, y), alpha composited over white. */
function sample(image: DecodedImage, x: number, y: number, bgr: number): number {
  const { channels, pixels } = image;
  const at = (y * image.width + x) * channels;
  const colour = channels >= 3 ? pixels[at + 2 - bgr]! : pixels[at]!;
  if (channels === 1 || channels === 3) return colour;
  const alpha = pixels[at + channels - 1]! / 255;
  return colour * alpha + 255 * (1 - alpha);
}

export function preprocessLineImage(image: DecodedImage): OcrInput {
  const h = OCR_INPUT_HEIGHT;
  const resizedWidth = Math.max(1, Math.min(OCR_MAX_WIDTH, Math.ceil((h * image.width) / image.height)));
  const width = Math.min(OCR_MAX_WIDTH, Math.max(OCR_MIN_WIDTH, Math.ceil(resizedWidth / 8) * 8));
  const data = new Float32Array(3 * h * width);
  const scaleX = image.width / resizedWidth;
  const scaleY = image.height / h;
  for (let y = 0; y < h; y++) {
    // Half-pixel centres, clamped at the borders (OpenCV's INTER_LINEAR).
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), image.height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const fy = sy - y0;
    for (let x = 0; x < resizedWidth; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), image.width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const top = sample(image, x0, y0, c) * (1 - fx) + sample(image, x1, y0, c) * fx;
        const bottom = sample(image, x0, y1, c) * (1 - fx) + sample(image, x1, y1, c) * fx;
        const v = top * (1 - fy) + bottom * fy;
        data[(c * h + y) * width + x] = (v / 255 - 0.5) / 0.5;
      }
    }
  }
  return { data, width, resizedWidth };
}
