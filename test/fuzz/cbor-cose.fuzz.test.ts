/**
 * Property tests (fast-check, fixed seeds, bounded runs and time): arbitrary bytes, CBOR-shaped bytes
 * and randomly mutated real AWS Nitro documents go into decodeCbor, parseCoseSign1 and
 * verifyAttestationReport. Nothing but a TeegateError may escape the first two;
 * verifyAttestationReport never throws; no call hangs; and a mutated document is never accepted
 * unless its bytes came out unchanged.
 */
import fc from 'fast-check';
import { decodeCbor, encodeCbor, CborIndefinite, type CborMap } from '../../attestation/cbor';
import { parseCoseSign1 } from '../../attestation/cose/sign1';
import { ERROR_REGISTRY, isTeegateError } from '../../attestation/errors';
import { verifyAttestationReport, type AttestationReport } from '../../attestation/nitro/verify';
import { buildCoseSign1, documentLayout, isDebugVector, validNitroVectors } from '../support/nitro-vectors';

const SEED = 20261124;
/**
 * Per call: synchronous parsers must answer within this, async verification within VERIFY_BOUND_MS.
 * Bounds against blow-ups, not speed assertions: far above a GC pause or a stall of this shared VM.
 */
const PARSE_BOUND_MS = 1000;
const VERIFY_BOUND_MS = 2000;

/** Runs `fn`; returns 'ok' or the TeegateError code; anything else thrown fails the property. */
function onlyTeegateErrors(fn: () => unknown): string {
  const t0 = performance.now();
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (!isTeegateError(err)) throw new Error(`escaped a non-TeegateError: ${String(err)}`);
    return err.code;
  } finally {
    const ms = performance.now() - t0;
    if (ms > PARSE_BOUND_MS) throw new Error(`took ${ms.toFixed(1)} ms`);
  }
}

async function boundedReport(bytes: Uint8Array, at: number, allowDebug: boolean): Promise<AttestationReport> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`verifyAttestationReport took over ${VERIFY_BOUND_MS} ms`)), VERIFY_BOUND_MS);
  });
  try {
    // Any throw (including a TeegateError) fails the property: the report form never throws.
    return await Promise.race([verifyAttestationReport(bytes, { at, policy: { allowDebug } }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkRejected(report: AttestationReport): void {
  if (report.valid) throw new Error('a mutated document was accepted');
  const code = report.error?.code;
  if (code === undefined || !Object.prototype.hasOwnProperty.call(ERROR_REGISTRY, code) || code === 'INTERNAL') {
    throw new Error(`rejected with ${String(code)}`);
  }
  if (report.steps.length !== 6 || report.steps.filter((s) => s.status === 'failed').length !== 1) throw new Error('bad step report');
}

/** Bytes that look like CBOR: interesting initial bytes (heads, breaks, tags, indefinite markers) mixed with any byte. */
const cborish = fc
  .array(
    fc.oneof(
      fc.constantFrom(0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x3b, 0x40, 0x41, 0x58, 0x5b, 0x5f, 0x60, 0x61, 0x7f, 0x80, 0x81, 0x84, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xd2, 0xd8, 0xf4, 0xf6, 0xf7, 0xf9, 0xfb, 0xff),
      fc.integer({ min: 0, max: 255 }),
    ),
    { maxLength: 64 },
  )
  .map((a) => new Uint8Array(a));

type Edit = { kind: 'flip'; pos: number; bit: number } | { kind: 'set'; pos: number; value: number } | { kind: 'insert'; pos: number; value: number } | { kind: 'delete'; pos: number } | { kind: 'truncate'; pos: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), pos: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }),
);

function applyEdits(doc: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let b = doc.slice();
  for (const e of edits) {
    const pos = b.length === 0 ? 0 : e.pos % b.length;
    if (e.kind === 'flip') b[pos] = b[pos]! ^ (1 << e.bit);
    else if (e.kind === 'set') b[pos] = e.value;
    else if (e.kind === 'insert') b = Uint8Array.from([...b.subarray(0, pos), e.value, ...b.subarray(pos)]);
    else if (e.kind === 'delete') b = Uint8Array.from([...b.subarray(0, pos), ...b.subarray(pos + 1)]);
    else b = b.slice(0, pos);
  }
  return b;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

const docs = validNitroVectors();
const mutatedDoc = fc.record({ which: fc.integer({ min: 0, max: docs.length - 1 }), edits: fc.array(edit, { minLength: 1, maxLength: 4 }) });

describe('decodeCbor', () => {
  it('throws nothing but TeegateError on arbitrary bytes, within the time bound', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => void onlyTeegateErrors(() => decodeCbor(b))), { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 2000 });
  });

  it('throws nothing but TeegateError on CBOR-shaped bytes, with and without tags allowed', () => {
    fc.assert(
      fc.property(cborish, (b) => {
        onlyTeegateErrors(() => decodeCbor(b));
        onlyTeegateErrors(() => decodeCbor(b, { allowedTags: [18], maxDepth: 4, maxItems: 64 }));
      }),
      { seed: SEED, numRuns: 4000, interruptAfterTimeLimit: 2000 },
    );
  });
});

describe('parseCoseSign1', () => {
  it('throws nothing but TeegateError on arbitrary and COSE-prefixed bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        onlyTeegateErrors(() => parseCoseSign1(b));
        onlyTeegateErrors(() => parseCoseSign1(Uint8Array.from([0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, ...b])));
        onlyTeegateErrors(() => parseCoseSign1(Uint8Array.from([0xd2, 0x84, ...b])));
      }),
      { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 2000 },
    );
  });

  it('throws nothing but TeegateError on mutated real documents', () => {
    fc.assert(
      fc.property(mutatedDoc, ({ which, edits }) => void onlyTeegateErrors(() => parseCoseSign1(applyEdits(docs[which]!.bytes, edits)))),
      { seed: SEED, numRuns: 2000, interruptAfterTimeLimit: 2000 },
    );
  });
});

describe('verifyAttestationReport', () => {
  it('never throws on arbitrary bytes and rejects them', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (b) => checkRejected(await boundedReport(b, Date.UTC(2024, 10, 30), true))),
      { seed: SEED, numRuns: 500, interruptAfterTimeLimit: 1500 },
    );
  });

  it('never throws, never hangs, and never accepts a mutated real document unless its bytes are unchanged', async () => {
    let runs = 0;
    let unchanged = 0;
    await fc.assert(
      fc.asyncProperty(mutatedDoc, async ({ which, edits }) => {
        const v = docs[which]!;
        const bytes = applyEdits(v.bytes, edits);
        const report = await boundedReport(bytes, v.timestamp_ms + 1000, isDebugVector(v));
        runs++;
        if (sameBytes(bytes, v.bytes)) {
          // e.g. a 'set' that wrote the byte already there: the original must still verify.
          if (!report.valid) throw new Error('unchanged document rejected');
          unchanged++;
          return;
        }
        checkRejected(report);
      }),
      { seed: SEED, numRuns: 3000, interruptAfterTimeLimit: 6000 },
    );
    expect(runs).toBeGreaterThan(500);
    expect(unchanged).toBeLessThan(runs);
  });

  // Edits inside the payload or inside one certificate, re-wrapped so every length is right again:
  // these reach the document schema, the X.509 parser and path validation instead of stopping at CBOR.
  const layouts = docs.map((v) => documentLayout(v.bytes));
  const part = fc.record({ which: fc.integer({ min: 0, max: docs.length - 1 }), target: fc.integer({ min: -1, max: 4 }), edits: fc.array(edit, { minLength: 1, maxLength: 3 }) });

  it('rejects re-wrapped edits of the payload and of each certificate with a registered code', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(part, async ({ which, target, edits }) => {
        const v = docs[which]!;
        const layout = layouts[which]!;
        let payload: Uint8Array;
        if (target < 0) {
          payload = applyEdits(layout.payload, edits);
        } else {
          const map = decodeCbor(layout.payload) as CborMap;
          const bundle = map.get('cabundle') as Uint8Array[];
          if (target === 4) map.set('certificate', applyEdits(map.get('certificate') as Uint8Array, edits));
          else map.set('cabundle', bundle.map((c, i) => (i === target ? applyEdits(c, edits) : c)));
          payload = encodeCbor(layout.payload[0] === 0xbf ? new CborIndefinite(map) : map);
        }
        const bytes = buildCoseSign1(layout.protectedHeader, payload, layout.signature);
        const report = await boundedReport(bytes, v.timestamp_ms + 1000, isDebugVector(v));
        runs++;
        if (sameBytes(bytes, v.bytes)) {
          if (!report.valid) throw new Error('unchanged document rejected');
          return;
        }
        checkRejected(report);
      }),
      { seed: SEED, numRuns: 2000, interruptAfterTimeLimit: 5000 },
    );
    expect(runs).toBeGreaterThan(300);
  });
});
