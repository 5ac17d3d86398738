/**
 * CTC greedy decoding as PaddleOCR's CTCLabelDecode does it: per time step take the most likely
 * class, collapse repeats, drop the blank (class 0), map class i to character i - 1 of the
 * dictionary (which ends with the space PaddleOCR appends, use_space_char). Spaces at either end
 * (the margins of the line image) are dropped. The confidence is the mean probability of the kept
 * characters (0 when nothing is kept).
 */
import { TeegateError } from '../../attestation/errors';
import { fromUtf8 } from '../../attestation/bytes';

/** One line's [1, steps, classes] scores reduced over classes: per step, the (first) most likely class and its probability. */
export interface StepWinners {
  readonly indices: BigInt64Array;
  readonly values: Float32Array;
}

export interface Recognition {
  text: string;
  confidence: number;
}

/** Characters of a PaddleOCR dictionary file (one per line) followed by the space character. */
export function parseOcrDictionary(bytes: Uint8Array): string[] {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch (err) {
    throw new TeegateError('MODEL_LOAD_FAILED', 'OCR dictionary is not UTF-8', { cause: err });
  }
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0 || lines.some((line) => line.length === 0)) {
    throw new TeegateError('MODEL_LOAD_FAILED', 'OCR dictionary has an empty line');
  }
  return [...lines, ' '];
}

/**
 * Decodes the model's softmax output reduced to each time step's best class and its probability
 * (the ArgMax and ReduceMax the OCR model appends to the graph: onnx-proto.ts withLastAxisBest).
 */
export function ctcGreedyDecode(best: StepWinners, charset: readonly string[]): Recognition {
  const { indices, values } = best;
  const classes = charset.length + 1; // the blank, then the dictionary
  const steps = indices.length;
  if (values.length !== steps) throw new TeegateError('INTERNAL', `CTC output has ${steps} steps but ${values.length} probabilities`);
  const chars: string[] = [];
  const probabilities: number[] = [];
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const k = Number(indices[t]!);
    if (!(k >= 0 && k < classes)) throw new TeegateError('INTERNAL', `CTC step ${t} names class ${k} of ${classes}`);
    if (k !== 0 && k !== previous) {
      chars.push(charset[k - 1]!);
      probabilities.push(values[t]!);
    }
    previous = k;
  }
  let start = 0;
  let end = chars.length;
  while (start < end && chars[start] === ' ') start++;
  while (end > start && chars[end - 1] === ' ') end--;
  const text = chars.slice(start, end).join('');
  const kept = end - start;
  let sum = 0;
  for (let i = start; i < end; i++) sum += probabilities[i]!;
  return { text, confidence: kept === 0 ? 0 : sum / kept };
}
