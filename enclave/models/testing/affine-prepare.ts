/**
 * A worker-side pre-processing (WorkerPrepare in ../model-session.ts) for the tiny affine model,
 * for tests: four input bytes become its float32 [1, 4] input. Anything but four bytes is refused
 * with a typed error; a first byte of 255 throws a plain Error, as a bug in pre-processing would.
 */
import { TeegateError } from '../../../attestation/errors';
import type { PlainTensor } from '../model-session';

export function affineFeeds(input: Uint8Array, inputNames: readonly string[]): Record<string, PlainTensor> {
  if (input.length !== 4) throw new TeegateError('REQUEST_INVALID', `expected 4 bytes, got ${input.length}`);
  if (input[0] === 255) throw new Error('a bug in the pre-processing');
  return { [inputNames[0]!]: { type: 'float32', data: Float32Array.from(input), dims: [1, 4] } };
}
