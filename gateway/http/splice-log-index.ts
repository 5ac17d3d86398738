/**
 * Adds `"log_index": N` to the top-level `parameters` object of a plain inference response without
 * re-serialising the (possibly large) outputs.
 *
 * Why the byte search is safe: inside a JSON string every `"` is escaped as `\"`, so the bytes
 * `"parameters":` (a quote directly after `s`, then a colon) can only be an object key. The
 * enclave writes the response with JSON.stringify and puts `parameters` last; the last such key is
 * the top-level one exactly when its object is followed by nothing but the one closing brace of
 * the response. Anything else (whitespace before the colon, nested position, no parameters) falls
 * back to one JSON.parse / JSON.stringify.
 *
 * The byte search reads the body as JSON without parsing all of it: a body that does not start
 * with `{` goes to the parse, but one that does and is malformed further in (which no attested
 * enclave writes) may come back spliced, as malformed as it came.
 */
const KEY = Buffer.from('"parameters":');

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Index just after the JSON object that starts at `open` (a `{`), or -1. */
function endOfObject(body: Buffer, open: number): number {
  let depth = 0;
  for (let i = open; i < body.length; i++) {
    const b = body[i];
    if (b === 0x22) {
      // Skip the string: find the closing quote not escaped by an odd number of backslashes.
      for (i++; i < body.length; i++) {
        const c = body[i];
        if (c === 0x5c) i++;
        else if (c === 0x22) break;
      }
    } else if (b === 0x7b || b === 0x5b) depth++;
    else if (b === 0x7d || b === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function fastSplice(body: Buffer, index: number): Buffer | undefined {
  let first = 0;
  while (isSpace(body[first])) first++;
  if (body[first] !== 0x7b) return undefined;
  const at = body.lastIndexOf(KEY);
  if (at < 0) return undefined;
  let open = at + KEY.length;
  while (isSpace(body[open])) open++;
  if (body[open] !== 0x7b) return undefined;
  const end = endOfObject(body, open);
  if (end < 0) return undefined;
  let rest = end;
  while (isSpace(body[rest])) rest++;
  if (body[rest] !== 0x7d) return undefined;
  for (rest++; rest < body.length; rest++) if (!isSpace(body[rest])) return undefined;
  let next = open + 1;
  while (isSpace(body[next])) next++;
  const empty = body[next] === 0x7d;
  const insert = Buffer.from(`"log_index":${index}${empty ? '' : ','}`);
  return Buffer.concat([body.subarray(0, open + 1), insert, body.subarray(open + 1)]);
}

function slowSplice(body: Buffer, index: number): Buffer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const response = value as Record<string, unknown>;
  const params = response.parameters;
  if (params === undefined) response.parameters = { log_index: index };
  else if (typeof params === 'object' && params !== null && !Array.isArray(params)) (params as Record<string, unknown>).log_index = index;
  else return undefined;
  return Buffer.from(JSON.stringify(response));
}

/** The response with `parameters.log_index` set, or undefined when the body is not a JSON object (see above for one that is malformed inside). */
export function spliceLogIndex(body: Buffer, index: number): Buffer | undefined {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError('log index must be a non-negative integer');
  return fastSplice(body, index) ?? slowSplice(body, index);
}
