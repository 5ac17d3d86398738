/**
 * Server-Timing (attestation/headers.ts): what the enclave and the gateway write, and what the
 * gateway reads of the enclave's header (a number per metric, nothing else).
 */
import { formatServerTiming, parseServerTiming } from '../../attestation/headers';

describe('Server-Timing', () => {
  it('writes name;dur=ms to 0.001 ms and reads it back', () => {
    const value = formatServerTiming({ infer: 12.34567, log: 0.4 });
    expect(value).toBe('infer;dur=12.346, log;dur=0.400');
    expect(parseServerTiming(value)).toEqual({ infer: 12.346, log: 0.4 });
  });

  it('reads the form it writes and the same metric spaced otherwise alike', () => {
    for (const value of ['infer;dur=1.5', ' infer;dur=1.5', 'infer;dur=1.5 ', '  infer ; dur=1.5', 'infer;desc=x;dur=1.5', 'infer;dur=1.5;desc=x']) {
      expect([value, parseServerTiming(`a;dur=2,${value}`)]).toEqual([value, { a: 2, infer: 1.5 }]);
    }
    expect(parseServerTiming('infer;dur=1.5;dur=x')).toEqual({ infer: 1.5 });
  });

  it('reads dur among other parameters, as browsers send them', () => {
    expect(parseServerTiming('cache;desc="Cache Read";dur=23.2, db;dur=53, app;dur=47.2')).toEqual({ cache: 23.2, db: 53, app: 47.2 });
  });

  it('leaves out metrics without a usable duration or with a name that is not a token', () => {
    expect(parseServerTiming(undefined)).toEqual({});
    expect(parseServerTiming('')).toEqual({});
    expect(parseServerTiming('miss, a;dur=, b;dur=abc, c;dur=-1, d;dur=Infinity, ;dur=3, e f;dur=1, g;dur=1e3, h;dur=0x10, i;dur=1000.5')).toEqual({ i: 1000.5 });
    expect(parseServerTiming(`${'x'.repeat(65)};dur=1, x_-9;dur=2`)).toEqual({ 'x_-9': 2 });
    const proto = parseServerTiming('__proto__;dur=5');
    expect(Object.getPrototypeOf(proto)).toBeNull();
    expect(proto['__proto__']).toBe(5);
  });
});
