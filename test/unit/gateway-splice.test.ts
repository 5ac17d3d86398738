import fc from 'fast-check';
import { spliceLogIndex } from '../../gateway/http/splice-log-index';

const splice = (value: unknown, index = 7) => JSON.parse(spliceLogIndex(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), index)!.toString()) as Record<string, unknown>;

describe('parameters.log_index splice', () => {
  it('adds log_index to the top-level parameters of an enclave response without touching the rest', () => {
    const response = { model_name: 'm', model_version: '1', id: '42', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [1.5, 2], parameters: { a: 1 } }], parameters: { receipt: 'h.p.s', salt: 'ab' } };
    const text = JSON.stringify(response);
    const out = spliceLogIndex(Buffer.from(text), 12)!.toString();
    expect(out).toBe(text.replace('"parameters":{"receipt"', '"parameters":{"log_index":12,"receipt"'));
    expect(JSON.parse(out)).toEqual({ ...response, parameters: { log_index: 12, ...response.parameters } });
  });

  it('handles empty, absent, nested-last and whitespace-formatted parameters', () => {
    expect(splice({ id: 'a', parameters: {} })).toEqual({ id: 'a', parameters: { log_index: 7 } });
    expect(splice({ id: 'a' })).toEqual({ id: 'a', parameters: { log_index: 7 } });
    expect(splice({ parameters: { x: 1 }, outputs: [{ name: 'y', parameters: { p: 1 } }] })).toEqual({ parameters: { log_index: 7, x: 1 }, outputs: [{ name: 'y', parameters: { p: 1 } }] });
    expect(splice('{ "id" : "a" , "parameters" : { "r" : "x" } }\n')).toEqual({ id: 'a', parameters: { log_index: 7, r: 'x' } });
    for (const space of ['\n', '\r\n', '\t', ' \n ']) {
      expect(splice(`{"id":"a","parameters":{${space}}}`)).toEqual({ id: 'a', parameters: { log_index: 7 } });
      expect(splice(`{"id":"a","parameters":${space}{${space}"r":1${space}}${space}}${space}`)).toEqual({ id: 'a', parameters: { log_index: 7, r: 1 } });
    }
    expect(splice({ outputs: [{ name: 'y', datatype: 'BYTES', shape: [1], data: ['"parameters":{}}'] }], parameters: { r: '}"' } })).toEqual({
      outputs: [{ name: 'y', datatype: 'BYTES', shape: [1], data: ['"parameters":{}}'] }],
      parameters: { log_index: 7, r: '}"' },
    });
  });

  it('leaves non-objects alone', () => {
    expect(spliceLogIndex(Buffer.from('not json'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('[1,2]'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"parameters":5}'), 1)).toBeUndefined();
    expect(() => spliceLogIndex(Buffer.from('{}'), -1)).toThrow(RangeError);
  });

  it('leaves a top-level parameters that is an array or a string alone (nothing is spliced into it)', () => {
    expect(spliceLogIndex(Buffer.from('{"outputs":[],"parameters":[1]}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"outputs":[],"parameters":[]}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"outputs":[],"parameters":"{}"}'), 1)).toBeUndefined();
  });

  it('leaves a body cut off or followed by other bytes alone, though it holds "parameters":{...}', () => {
    expect(spliceLogIndex(Buffer.from('{"parameters":{"a":[1]}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"parameters":{"a":1}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"parameters":{} x'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('{"parameters":{}}}'), 1)).toBeUndefined();
  });

  it('leaves a body that does not start as an object alone, though it ends in "parameters":{...}}', () => {
    expect(spliceLogIndex(Buffer.from('xx"parameters":{}}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from('"parameters":{"a":1}}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from(' [{"parameters":{}}'), 1)).toBeUndefined();
    expect(spliceLogIndex(Buffer.from(' \n{"parameters":{}}'), 1)?.toString()).toBe(' \n{"parameters":{"log_index":1}}');
  });

  it('sets the top-level parameters, not the parameters of a nested last member, whatever its strings and arrays hold', () => {
    // A string holding escaped quotes around a brace, and an array, inside a nested parameters:
    // a scan that lost track of either would take the nested object for the top-level one.
    const nested = [
      { outputs: { name: 'y', parameters: { s: '"{"' } } },
      { outputs: { name: 'y', parameters: { a: [1] } } },
      { outputs: { name: 'y', parameters: { a: [[]], s: '\\' } } },
    ];
    for (const value of nested) expect(splice(value)).toEqual({ ...value, parameters: { log_index: 7 } });
  });

  it('accepts only a non-negative safe integer as the index', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) expect(() => spliceLogIndex(Buffer.from('{}'), bad)).toThrow(RangeError);
    expect(splice({ parameters: {} }, 0)).toEqual({ parameters: { log_index: 0 } });
  });

  it('agrees with parse-and-set for any JSON object (property)', () => {
    const key = fc.string({ maxLength: 12 });
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 3 })), fc.option(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 })), { nil: undefined }), fc.nat(), (rest, params, index) => {
        const { parameters: _drop, ...others } = rest as Record<string, unknown>;
        void _drop;
        const value = params === undefined ? others : { ...others, parameters: params };
        const expected = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
        expected.parameters = { ...((expected.parameters as object | undefined) ?? {}), log_index: index };
        const out = JSON.parse(spliceLogIndex(Buffer.from(JSON.stringify(value)), index)!.toString()) as Record<string, unknown>;
        expect(out).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
