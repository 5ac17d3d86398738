/**
 * verifyReceipt on receipts an enclave's own key signed but whose form is wrong: every
 * RECEIPT_INVALID path (not a JWS, wrong header, payload not JSON, each claim out of its schema, a
 * salt of the wrong size), with the step verifyReceiptReport names for it. The signature and
 * mismatch paths are covered where real enclaves sign (test/integration/enclave.test.ts).
 */
import { CompactSign } from 'jose';
import { randomUUID } from 'node:crypto';
import { toHex, randomBytes } from '../../attestation/bytes';
import type { EnclaveManifest } from '../../attestation/manifest';
import { RECEIPT_TYP, unverifiedClaims, verifyReceipt, verifyReceiptReport, type ReceiptEvidence } from '../../attestation/receipt';
import { generateEnclaveKeys, type EnclaveKeys } from '../../enclave/keys';
import { receiptDigest } from '../../enclave/enclave-service';
import { refusalOf } from '../support/error-code';
import { enclaveManifest } from '../support/manifest';

const ATT = 'd'.repeat(96);
const MODEL = { name: 'affine', version: '1', sha256: 'a'.repeat(64) };
const SALT = randomBytes(32);
const OUTPUTS = [{ name: 'y', datatype: 'FP32' as const, shape: [1], data: [3] }];

let keys: EnclaveKeys;
let manifest: EnclaveManifest;
let claims: Record<string, unknown>;

beforeAll(async () => {
  keys = await generateEnclaveKeys();
  manifest = enclaveManifest(keys, [MODEL]);
  claims = { iss: manifest.boot_id, iat: 1_764_000_000, jti: randomUUID(), seq: 0, model: MODEL, input: 'b'.repeat(64), output: receiptDigest(SALT, OUTPUTS), att: ATT, sealed: false };
});

/** A compact JWS of `payload` signed with the enclave's receipt key, with `header` over the usual one. */
async function signed(payload: string | Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader({ alg: 'ES256', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP, ...header }).sign(keys.receipt.privateKey);
}

const evidence = (receipt: string, extra: Partial<ReceiptEvidence> = {}): ReceiptEvidence => ({ receipt, attestation: { documentSha384: ATT }, manifest, ...extra });

it('accepts the well-formed receipt the cases below alter, output digest included', async () => {
  await expect(verifyReceipt(evidence(await signed(claims), { outputs: OUTPUTS, salt: toHex(SALT) }))).resolves.toEqual(claims);
});

it('unverifiedClaims reads a receipt only in the form verifyReceipt accepts: three parts of canonical base64url', async () => {
  const receipt = await signed(claims);
  expect(unverifiedClaims(receipt)).toEqual(claims);
  for (const other of [`${receipt}==`, `${receipt}.AA`, receipt.replace('.', '.\n'), `${receipt.slice(0, -1)}!`]) expect(unverifiedClaims(other)).toBeUndefined();
});

describe('refuses with RECEIPT_INVALID, at the step that read it', () => {
  const form: [string, () => Promise<string> | string, string, string][] = [
    ['a receipt over 8 KiB', () => 'e'.repeat(8 * 1024 + 1), 'signature', 'receipt must be a compact JWS of at most 8 KiB'],
    ['three parts that are not a JWS', () => 'abc.def.ghi', 'signature', 'receipt is not a compact JWS'],
    ['an unsecured JWS (alg none)', () => `${Buffer.from(JSON.stringify({ alg: 'none', typ: RECEIPT_TYP })).toString('base64url')}.${Buffer.from(JSON.stringify({})).toString('base64url')}.`, 'signature', 'receipt header must have alg ES256'],
    ['a JWT of another type', () => signed({}, { typ: 'JWT' }), 'signature', `typ ${RECEIPT_TYP}`],
    ['a protected header over 512 characters', () => signed(claims, { kid: 'k'.repeat(600) }), 'signature', 'protected header longer than 512 characters'],
    ['a header member besides alg, kid and typ', () => signed(claims, { cty: 'json' }), 'signature', 'protected header may have only alg, kid, typ; it has "cty"'],
    ['a payload that is not JSON', () => signed('seq=0'), 'claims', 'receipt payload is not JSON'],
    ['a payload that is a JSON array', () => signed('[]'), 'claims', 'claims must be a JSON object'],
  ];
  it.each(form)('%s', async (_what, make, step, message) => {
    const e = evidence(await make());
    expect(await refusalOf(() => verifyReceipt(e))).toEqual({ code: 'RECEIPT_INVALID', message: expect.stringContaining(message) });
    const report = await verifyReceiptReport(e);
    expect(report.valid).toBe(false);
    expect(report.steps.find((s) => s.status === 'failed')).toMatchObject({ step, code: 'RECEIPT_INVALID' });
  });

  const claim: [string, (c: Record<string, unknown>) => void, string][] = [
    ['an unknown claim', (c) => (c.exp = 1), 'unknown claim "exp"'],
    ['a model that is not an object', (c) => (c.model = 'affine@1'), 'model must be an object'],
    ['a model without a version', (c) => (c.model = { name: 'affine', sha256: MODEL.sha256 }), 'model must have name, version and a hex sha256'],
    ['a model digest that is not hex', (c) => (c.model = { ...MODEL, sha256: 'z'.repeat(64) }), 'model must have name, version and a hex sha256'],
    ['a model with another member', (c) => (c.model = { ...MODEL, extra: { x: 1 } }), 'unknown model member "extra"'],
    ['a model with an empty name', (c) => (c.model = { ...MODEL, name: '' }), 'model must have name, version and a hex sha256'],
    ['a model with an empty version', (c) => (c.model = { ...MODEL, version: '' }), 'model must have name, version and a hex sha256'],
    ['an input digest in upper case', (c) => (c.input = 'B'.repeat(64)), 'input and output must be hex SHA-256 digests'],
    ['no output digest', (c) => delete c.output, 'output must be a non-empty string'],
    ['att a SHA-256', (c) => (c.att = 'd'.repeat(64)), 'att must be a hex SHA-384 digest'],
    ['sealed as a string', (c) => (c.sealed = 'false'), 'sealed must be a boolean'],
    ['a nonce that is not hex', (c) => (c.nonce = 'not-hex'), 'nonce must be hex'],
    ['an empty iss', (c) => (c.iss = ''), 'iss must be a non-empty string'],
    ['a jti of 129 characters', (c) => (c.jti = 'j'.repeat(129)), 'jti must be a non-empty string'],
    ['a negative iat', (c) => (c.iat = -1), 'iat must be a non-negative integer'],
    ['a fractional seq', (c) => (c.seq = 1.5), 'seq must be a non-negative integer'],
    ['a seq beyond 2^53', (c) => (c.seq = 2 ** 53), 'seq must be a non-negative integer'],
  ];
  it.each(claim)('a claim out of the schema: %s', async (_what, edit, message) => {
    const c = structuredClone(claims);
    edit(c);
    const e = evidence(await signed(c));
    expect(await refusalOf(() => verifyReceipt(e))).toEqual({ code: 'RECEIPT_INVALID', message });
    expect((await verifyReceiptReport(e)).steps.find((s) => s.status === 'failed')).toMatchObject({ step: 'claims', code: 'RECEIPT_INVALID' });
  });

  it('a salt that is not hex fails the input step, so rewritten outputs never pass for want of a salt', async () => {
    const rewritten = OUTPUTS.map((o) => ({ ...o, data: o.data.map(() => 1234) }));
    for (const salt of ['zz', toHex(SALT).slice(1), 'g'.repeat(64)]) {
      const e = evidence(await signed(claims), { outputs: rewritten, salt });
      expect(await refusalOf(() => verifyReceipt(e))).toEqual({ code: 'RECEIPT_INVALID', message: 'salt must be 32 bytes of hex' });
      const report = await verifyReceiptReport(e);
      expect(report.valid).toBe(false);
      expect(report.steps.filter((s) => s.status === 'failed')).toEqual([expect.objectContaining({ step: 'input', code: 'RECEIPT_INVALID' })]);
    }
  });

  it('a salt that is not 32 bytes', async () => {
    const e = evidence(await signed(claims), { outputs: OUTPUTS, salt: SALT.subarray(0, 31) });
    expect(await refusalOf(() => verifyReceipt(e))).toEqual({ code: 'RECEIPT_INVALID', message: 'salt must be 32 bytes' });
    expect((await verifyReceiptReport(e)).steps.find((s) => s.status === 'failed')).toMatchObject({ step: 'output', code: 'RECEIPT_INVALID' });
  });
});

describe('the model asked for', () => {
  it('passes when the receipt names the model (and the version, if one was asked)', async () => {
    const receipt = await signed(claims);
    for (const model of [{ name: 'affine' }, { name: 'affine', version: '1' }]) {
      await expect(verifyReceipt(evidence(receipt, { model }))).resolves.toEqual(claims);
    }
  });

  it('fails the model step with RECEIPT_MISMATCH when the receipt names another model or version of the manifest', async () => {
    const twin = { name: 'twin', version: '1', sha256: MODEL.sha256 };
    const v2 = { ...MODEL, version: '2' };
    const withBoth = { ...manifest, models: [MODEL, twin, v2] };
    for (const [ran, asked, message] of [
      [twin, { name: 'affine' }, 'receipt is for model twin@1, the request was for affine'],
      [v2, { name: 'affine', version: '1' }, 'receipt is for model affine@2, the request was for affine@1'],
    ] as const) {
      const e = { ...evidence(await signed({ ...claims, model: ran })), manifest: withBoth, model: asked };
      expect(await refusalOf(() => verifyReceipt(e))).toEqual({ code: 'RECEIPT_MISMATCH', message });
      expect((await verifyReceiptReport(e)).steps.find((s) => s.status === 'failed')).toMatchObject({ step: 'model', code: 'RECEIPT_MISMATCH' });
    }
  });
});
