/**
 * A linear pre-scan of untrusted JSON text before JSON.parse: nesting depth and the number of
 * objects and arrays. JSON.parse itself has no limits, and a 16 MiB body of `[{},{},...]` becomes
 * eight million objects (about 500 MB, seconds of the main thread) before any schema check runs,
 * while the same size of numbers costs a fraction of that. The scan reads every character once
 * and allocates nothing; it does not validate the JSON (JSON.parse does that next).
 */
import { fromUtf8 } from '../attestation/bytes';
import { TeegateError } from '../attestation/errors';

export interface JsonBudget {
  /** Deepest nesting of objects and arrays. */
  readonly maxDepth: number;
  /** Objects in the whole text. */
  readonly maxObjects: number;
  /** Arrays in the whole text (nested tensor data has one per row). */
  readonly maxArrays: number;
}

/**
 * An inference request: tensors are at most rank 8 (TENSOR_LIMITS) inside a few levels of request;
 * at most 64 tensors, each an object with its parameters; nested data of up to 2^21 rows.
 */
export const INFER_REQUEST_BUDGET: JsonBudget = { maxDepth: 32, maxObjects: 4096, maxArrays: 2 ** 21 };

/**
 * A sealed request's plaintext: the inference request one level down, beside the response key and
 * the optional `model` (the plaintext itself, the key and the model: three objects more).
 */
export const SEALED_REQUEST_BUDGET: JsonBudget = { ...INFER_REQUEST_BUDGET, maxDepth: INFER_REQUEST_BUDGET.maxDepth + 1, maxObjects: INFER_REQUEST_BUDGET.maxObjects + 3 };

/**
 * Untrusted bytes as JSON: strict UTF-8 (invalid sequences are refused, never replaced), then the
 * budget (REQUEST_INVALID naming `what`), then JSON.parse. `notJson` throws the caller's error for
 * bytes that are not UTF-8 JSON.
 */
export function parseJsonWithin(bytes: Uint8Array, budget: JsonBudget, what: string, notJson: () => never): unknown {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    return notJson();
  }
  checkJsonBudget(text, budget, what);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return notJson();
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Throws REQUEST_INVALID naming the limit when `text` nests deeper or holds more containers than `budget`. */
export function checkJsonBudget(text: string, budget: JsonBudget, what = 'request body'): void {
  let depth = 0;
  let objects = 0;
  let arrays = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > budget.maxDepth) throw over(what, `nests deeper than ${budget.maxDepth} levels`);
      if (c === OPEN_OBJECT ? ++objects > budget.maxObjects : ++arrays > budget.maxArrays) {
        throw over(what, c === OPEN_OBJECT ? `holds more than ${budget.maxObjects} objects` : `holds more than ${budget.maxArrays} arrays`);
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
}

/**
 * The index of the quote that closes the string opened at `open` (the text's length if none):
 * indexOf skips a string's body at memchr speed, which matters for a base64 image of many KB.
 */
function stringEnd(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

function over(what: string, message: string): TeegateError {
  return new TeegateError('REQUEST_INVALID', `${what} ${message}`);
}
