/**
 * Property tests (fast-check, fixed seed, bounded runs and time) of the strict parsers of untrusted
 * JSON: the enclave manifest, receipt claims, the measurement policy file, OIP tensors, model
 * configurations and the gateway configuration. Inputs: arbitrary JSON, and valid documents with
 * members replaced by arbitrary JSON, deleted, or added. Only the parser's own error code may
 * escape (never a TypeError from a null or an array where an object was expected); whatever is
 * accepted parses again to itself.
 */
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { isTeegateError } from '../../attestation/errors';
import { parseManifest, type EnclaveManifest } from '../../attestation/manifest';
import { makePolicyFile, parsePolicyFile } from '../../attestation/policy-file';
import { parseReceiptClaims } from '../../attestation/receipt';
import { parseInferTensors } from '../../attestation/tensors';
import { generateEnclaveKeys } from '../../enclave/keys';
import { defaultModelConfigs, parseModelConfigs } from '../../enclave/models/model-config';
import { parseGatewayConfig } from '../../gateway/config';
import { enclaveManifest } from '../support/manifest';

const SEED = 20261124;
/** Per call, against blow-ups (exponential time on a small input), not a speed assertion: far above a GC pause or a stall of this shared VM (108 ms seen once at a 100 ms bound). */
const BOUND_MS = 1000;
const RUNS = { seed: SEED, numRuns: 1500, interruptAfterTimeLimit: 4000 };

type Json = unknown;

interface Parser {
  readonly name: string;
  /** Codes the parser may refuse with. */
  readonly codes: (code: string) => boolean;
  readonly parse: (value: Json) => unknown;
  readonly valid: () => Json;
}

let manifest: EnclaveManifest;

beforeAll(async () => {
  manifest = enclaveManifest(await generateEnclaveKeys(), [{ name: 'ocr', version: '1', sha256: 'ab'.repeat(32) }]);
});

const PARSERS: readonly Parser[] = [
  { name: 'parseManifest', codes: (c) => c === 'MANIFEST_INVALID', parse: parseManifest, valid: () => manifest },
  {
    name: 'parseReceiptClaims',
    codes: (c) => c === 'RECEIPT_INVALID',
    parse: parseReceiptClaims,
    valid: () => ({ iss: randomUUID(), iat: 1_764_000_000, jti: randomUUID(), seq: 3, model: { name: 'ocr', version: '1', sha256: 'ab'.repeat(32) }, input: 'cd'.repeat(32), output: 'ef'.repeat(32), nonce: '0a0b', att: 'd'.repeat(96), sealed: true }),
  },
  { name: 'parsePolicyFile', codes: (c) => c === 'POLICY_INVALID', parse: (v) => parsePolicyFile(v).policy, valid: () => makePolicyFile({ 0: 'ab'.repeat(48), 2: 'cd'.repeat(48) }, { maxAgeSeconds: 60 }) },
  {
    name: 'parseInferTensors',
    codes: (c) => c.startsWith('TENSOR_'),
    parse: (v) => parseInferTensors(v, 'inputs'),
    valid: () => [
      { name: 'x', datatype: 'FP32', shape: [1, 2], data: [1.5, -2] },
      { name: 'flags', datatype: 'BOOL', shape: [2], data: [true, false] },
      { name: 'text', datatype: 'BYTES', shape: [1], data: ['héllo'] },
      { name: 'n', datatype: 'INT64', shape: [1], data: [9007199254740991] },
    ],
  },
  { name: 'parseModelConfigs', codes: (c) => c === 'MODEL_LOAD_FAILED', parse: parseModelConfigs, valid: () => JSON.parse(JSON.stringify(defaultModelConfigs())) as Json },
  {
    name: 'parseGatewayConfig',
    codes: (c) => c === 'CONFIG_INVALID',
    parse: (file) => parseGatewayConfig({ file }),
    valid: () => ({ enclaves: ['http://127.0.0.1:9001'], attestation: { policy: { pcrs: { 0: 'ab'.repeat(48) } } }, auth: { keys: [{ id: 'a', sha256: 'cd'.repeat(32), scopes: ['infer'] }] }, limits: { bodyBytes: 4096 } }),
  },
];

/** 'ok' or the TeegateError code; anything else thrown, or a slow call, fails the property. */
function outcome(parser: Parser, value: Json): { result: 'ok'; parsed: unknown } | { result: string } {
  const t0 = performance.now();
  try {
    return { result: 'ok', parsed: parser.parse(value) };
  } catch (err) {
    if (!isTeegateError(err)) throw new Error(`${parser.name} let a non-TeegateError escape: ${String(err)}`);
    if (!parser.codes(err.code)) throw new Error(`${parser.name} refused with ${err.code}: ${err.message}`);
    return { result: err.code };
  } finally {
    const ms = performance.now() - t0;
    if (ms > BOUND_MS) throw new Error(`${parser.name} took ${ms.toFixed(1)} ms`);
  }
}

/** A path into a JSON document: member names and array indexes, as the generator picks them. */
type Edit = { path: readonly number[]; kind: 'replace' | 'delete' | 'add'; value: Json; key: string };
const edits = fc.array(
  fc.record({
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
    kind: fc.constantFrom('replace' as const, 'delete' as const, 'add' as const),
    value: fc.jsonValue({ maxDepth: 3 }),
    key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'version', 'd', '0')),
  }),
  { minLength: 1, maxLength: 3 },
);

/** Applies an edit at the container the path leads to (each step picks a member by index, modulo). */
function applyEdit(doc: Json, edit: Edit): Json {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  let parent: Record<string, Json> | Json[] | undefined;
  let key: string | number | undefined;
  let at: Json = copy;
  for (const step of edit.path) {
    if (typeof at !== 'object' || at === null) break;
    const keys = Array.isArray(at) ? at.map((_, i) => i) : Object.keys(at);
    if (keys.length === 0) break;
    parent = at as Record<string, Json> | Json[];
    key = keys[step % keys.length]!;
    at = (parent as Record<string | number, Json>)[key];
  }
  if (parent === undefined || key === undefined) return edit.value;
  const target = parent as Record<string | number, Json>;
  if (edit.kind === 'replace') target[key] = edit.value;
  else if (edit.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete target[key];
  } else if (Array.isArray(parent)) parent.push(edit.value);
  else Object.defineProperty(parent, edit.key, { value: edit.value, enumerable: true, writable: true, configurable: true });
  return copy;
}

describe.each(PARSERS.map((p) => [p.name, p] as const))('%s on hostile JSON', (_name, parser) => {
  it('accepts its valid document (control)', () => {
    expect(outcome(parser, parser.valid()).result).toBe('ok');
  });

  it('refuses arbitrary JSON with its own code only', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        outcome(parser, value);
      }),
      RUNS,
    );
  });

  it('refuses edited documents with its own code only; an accepted edit parses again to the same result', () => {
    fc.assert(
      fc.property(edits, (list) => {
        const doc = list.reduce<Json>((d, e) => applyEdit(d, e), parser.valid());
        const first = outcome(parser, doc);
        // The gateway configuration and the policy file return another shape than they read.
        if (first.result !== 'ok' || parser.name === 'parseGatewayConfig' || parser.name === 'parsePolicyFile') return;
        const again = outcome(parser, JSON.parse(JSON.stringify((first as { parsed: unknown }).parsed)));
        expect(again).toEqual(first);
      }),
      RUNS,
    );
  });
});
