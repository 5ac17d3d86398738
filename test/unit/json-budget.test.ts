/**
 * The enclave's pre-scan of untrusted JSON (enclave/json-budget.ts): depth and container counts at
 * and just past each limit, brackets inside strings (with escaped quotes) never counted, and the
 * scan agreeing with JSON.parse on what nests how deep.
 */
import fc from 'fast-check';
import { checkJsonBudget, INFER_REQUEST_BUDGET, type JsonBudget } from '../../enclave/json-budget';
import { isTeegateError } from '../../attestation/errors';

const small: JsonBudget = { maxDepth: 3, maxObjects: 2, maxArrays: 3 };
/** 'accepted', or the refusal's code and message. */
function refusal(text: string, budget = small): 'accepted' | { code: string; message: string } {
  try {
    checkJsonBudget(text, budget);
    return 'accepted';
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    return { code: err.code, message: err.message };
  }
}

it('accepts text at each limit and refuses one past it with REQUEST_INVALID naming the limit', () => {
  expect(refusal('[[[1]]]')).toBe('accepted');
  expect(refusal('[[[[1]]]]')).toEqual({ code: 'REQUEST_INVALID', message: 'request body nests deeper than 3 levels' });
  expect(refusal('[{},{}]')).toBe('accepted');
  expect(refusal('[{},{},{}]')).toEqual({ code: 'REQUEST_INVALID', message: 'request body holds more than 2 objects' });
  expect(refusal('[[],[]]')).toBe('accepted');
  expect(refusal('[[],[],[]]')).toEqual({ code: 'REQUEST_INVALID', message: 'request body holds more than 3 arrays' });
  // Depth comes back down: siblings do not add up.
  expect(refusal('{"a":[[1]],"b":[[2]]}', { ...small, maxArrays: 10 })).toBe('accepted');
});

it('lets an inference request hold 2^21 arrays, and refuses one more', () => {
  const arrays = (n: number): string => `[${'[],'.repeat(n - 2)}[]]`;
  expect(refusal(arrays(2 ** 21), INFER_REQUEST_BUDGET)).toBe('accepted');
  expect(refusal(arrays(2 ** 21 + 1), INFER_REQUEST_BUDGET)).toEqual({ code: 'REQUEST_INVALID', message: `request body holds more than ${2 ** 21} arrays` });
});

it('never counts brackets inside strings, escaped quotes included', () => {
  expect(refusal(JSON.stringify({ s: '[[[[{{{{"\\"[[[[', t: '\\\\' }))).toBe('accepted');
  expect(refusal(`{"s":"\\\\"}`)).toBe('accepted'); // an escaped backslash ends the string at the next quote
  expect(refusal(`{"s":"\\\\",${'"x":[[[[1]]]]'}}`)).toEqual({ code: 'REQUEST_INVALID', message: 'request body nests deeper than 3 levels' });
});

it('measures the depth JSON.parse builds, for any JSON value', () => {
  const depthOf = (v: unknown): number => (typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
      const text = JSON.stringify(value);
      const depth = depthOf(JSON.parse(text));
      expect(() => checkJsonBudget(text, { maxDepth: depth, maxObjects: 1e6, maxArrays: 1e6 })).not.toThrow();
      if (depth > 0) expect(() => checkJsonBudget(text, { maxDepth: depth - 1, maxObjects: 1e6, maxArrays: 1e6 })).toThrow(/nests deeper/);
    }),
    { numRuns: 300 },
  );
});

it('lets through what an inference request legitimately holds: 64 tensors, rank 8, a million nested rows', () => {
  const rank8 = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1, 1, 1, 1, 1, 1, 2], data: [[[[[[[[1, 2]]]]]]]] }], parameters: { nonce: 'ab' } });
  expect(refusal(rank8, INFER_REQUEST_BUDGET)).toBe('accepted');
  const many = JSON.stringify({ inputs: Array.from({ length: 64 }, (_, i) => ({ name: `t${i}`, datatype: 'FP32', shape: [1], data: [1], parameters: { a: 1 } })), outputs: Array.from({ length: 64 }, (_, i) => ({ name: `o${i}` })) });
  expect(refusal(many, INFER_REQUEST_BUDGET)).toBe('accepted');
  const rows = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1048576,4],"data":[${Array(1_048_576).fill('[0,0,0,0]').join(',')}]}]}`;
  expect(refusal(rows, INFER_REQUEST_BUDGET)).toBe('accepted');
});
