/**
 * Measurement policy (PCRs, debug mode, maximum age), time and binding checks, and the step report,
 * on the real AWS Nitro documents in shared/vectors/nitro (each verified at its own time + 1 s).
 */
import { errorCodeOrKindAsync as codeOf } from '../support/error-code';
import { fromHex, toHex, utf8 } from '../../attestation/bytes';
import { type ErrorCode } from '../../attestation/errors';
import { compilePolicy, type MeasurementPolicy } from '../../attestation/nitro/policy';
import { VERIFICATION_STEPS } from '../../attestation/nitro/report';
import { verifyAttestation, verifyAttestationReport, type VerifyOptions } from '../../attestation/nitro/verify';
import { isDebugVector, parsedNitroVector, type ParsedNitroVector } from '../support/nitro-vectors';


const anchorage = parsedNitroVector('anchorage'); // nonce + user_data, no public_key
const base2024 = parsedNitroVector('base_nitro-validator_2024'); // public_key only
const debugDoc = parsedNitroVector('sui_debug'); // PCR0..2 all zero
const at = (v: ParsedNitroVector, deltaMs = 1000): number => v.timestamp_ms + deltaMs;
const verify = (v: ParsedNitroVector, options: VerifyOptions = {}) => verifyAttestation(v.bytes, { at: at(v), ...options });
const pcr = (v: ParsedNitroVector, i: number): string => v.pcrs_nonzero[String(i)] ?? '00'.repeat(48);
const flipHex = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

describe('compilePolicy', () => {
  it.each<[string, MeasurementPolicy]>([
    ['10 hex digits', { pcrs: { 0: 'ab'.repeat(5) } }],
    ['95 hex digits', { pcrs: { 0: 'a'.repeat(95) } }],
    ['97 hex digits', { pcrs: { 0: 'a'.repeat(97) } }],
    ['empty value', { pcrs: { 0: '' } }],
    ['96 characters, not hex', { pcrs: { 0: 'zz'.repeat(48) } }],
    ['96 hex digits with a 0x prefix', { pcrs: { 0: '0x' + 'a'.repeat(94) } }],
    ['a number value', { pcrs: { 0: 42 as unknown as string } }],
    ['index 32', { pcrs: { 32: 'a'.repeat(96) } }],
    ['index -1', { pcrs: { '-1': 'a'.repeat(96) } as Record<number, string> }],
    ['index 1.5', { pcrs: { '1.5': 'a'.repeat(96) } as Record<number, string> }],
    ['index "x"', { pcrs: { x: 'a'.repeat(96) } as Record<number, string> }],
    ['negative maxAgeMs', { maxAgeMs: -1 }],
    ['NaN maxAgeMs', { maxAgeMs: Number.NaN }],
    ['infinite maxAgeMs', { maxAgeMs: Number.POSITIVE_INFINITY }],
    ['allowDebug "yes"', { allowDebug: 'yes' as unknown as boolean }],
  ])('%s → POLICY_INVALID', (_name, policy) => {
    expect(() => compilePolicy(policy)).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }));
  });

  it('accepts 32-, 48- and 64-byte values at indexes 0..31 and decodes them', () => {
    const c = compilePolicy({ pcrs: { 0: 'AA'.repeat(32), 15: 'bb'.repeat(48), 31: 'cc'.repeat(64) }, maxAgeMs: 0 });
    expect([...c.pcrs.keys()]).toEqual([0, 15, 31]);
    expect(toHex(c.pcrs.get(0)!)).toBe('aa'.repeat(32));
    expect(c).toMatchObject({ allowDebug: false, maxAgeMs: 0 });
    expect(compilePolicy()).toEqual({ pcrs: new Map(), allowDebug: false });
  });

  it('an invalid policy fails verification before any evidence is read, in the parse step', async () => {
    const report = await verifyAttestationReport(anchorage.bytes, { at: at(anchorage), policy: { pcrs: { 40: 'a'.repeat(96) } } });
    expect(report.error?.code).toBe('POLICY_INVALID');
    expect(report.steps.map((s) => s.status)).toEqual(['failed', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
  });
});

describe('PCR policy', () => {
  it('a subset of non-zero PCRs matches', async () => {
    const a = await verify(anchorage, { policy: { pcrs: { 0: pcr(anchorage, 0), 4: pcr(anchorage, 4) } } });
    expect(toHex(a.pcrs.get(0)!)).toBe(pcr(anchorage, 0));
  });

  it('all 16 PCRs of the document match, zero ones included, in upper case too', async () => {
    const all = Object.fromEntries(Array.from({ length: anchorage.pcr_count }, (_, i) => [i, pcr(anchorage, i).toUpperCase()]));
    await expect(verify(anchorage, { policy: { pcrs: all } })).resolves.toBeDefined();
  });

  it.each<[string, Record<number, string>]>([
    ['PCR0 one bit off', { 0: flipHex(pcr(anchorage, 0)) }],
    ['PCR4 one bit off, PCR0 right', { 0: pcr(anchorage, 0), 4: flipHex(pcr(anchorage, 4)) }],
    ['PCR8 (zero) expected non-zero', { 8: 'ff'.repeat(48) }],
    ['PCR0 expected zero', { 0: '00'.repeat(48) }],
    ['PCR20, which the document lacks', { 20: 'ab'.repeat(48) }],
    ['PCR0 as a 32-byte prefix of its value', { 0: pcr(anchorage, 0).slice(0, 64) }],
    ['PCR0 of another enclave', { 0: pcr(base2024, 0) }],
  ])('%s → PCR_MISMATCH', async (_name, pcrs) => {
    expect(await codeOf(verify(anchorage, { policy: { pcrs } }))).toBe('PCR_MISMATCH');
  });
});

describe('debug mode', () => {
  it('MANIFEST marks exactly the sui document as debug', () => {
    expect([anchorage, base2024, debugDoc].map(isDebugVector)).toEqual([false, false, true]);
  });

  it('is rejected by default and accepted only with allowDebug', async () => {
    expect(await codeOf(verify(debugDoc))).toBe('DEBUG_MODE');
    expect(await codeOf(verify(debugDoc, { policy: { allowDebug: false } }))).toBe('DEBUG_MODE');
    const a = await verify(debugDoc, { policy: { allowDebug: true } });
    expect(a.debug).toBe(true);
    expect((await verify(anchorage)).debug).toBe(false);
  });

  it('allowDebug does not switch off the PCR check', async () => {
    const pcrs = { 3: pcr(debugDoc, 3) };
    await expect(verify(debugDoc, { policy: { allowDebug: true, pcrs } })).resolves.toBeDefined();
    expect(await codeOf(verify(debugDoc, { policy: { allowDebug: true, pcrs: { 3: flipHex(pcr(debugDoc, 3)) } } }))).toBe('PCR_MISMATCH');
  });
});

describe('time: maximum age and documents from the future', () => {
  it('maxAgeMs bounds the age against the verification time (inclusive)', async () => {
    await expect(verify(anchorage, { policy: { maxAgeMs: 1000 } })).resolves.toBeDefined();
    expect(await codeOf(verify(anchorage, { policy: { maxAgeMs: 999 } }))).toBe('DOCUMENT_TOO_OLD');
    expect(await codeOf(verify(anchorage, { at: at(anchorage, 60_000), policy: { maxAgeMs: 30_000 } }))).toBe('DOCUMENT_TOO_OLD');
    expect(await codeOf(verify(anchorage, { at: at(anchorage, 0), policy: { maxAgeMs: 0 } }))).toBe('no error');
  });

  it('a timestamp ahead of the verification time by more than the skew → DOCUMENT_FROM_FUTURE', async () => {
    // The debug document's leaf is valid from 2 h 22 min before its timestamp, so 10 minutes before
    // the timestamp every certificate is valid and only the 5-minute default skew is exceeded.
    const ts = debugDoc.timestamp_ms;
    const opts = { policy: { allowDebug: true } };
    expect(await codeOf(verify(debugDoc, { ...opts, at: ts - 10 * 60_000 }))).toBe('DOCUMENT_FROM_FUTURE');
    expect(await codeOf(verify(debugDoc, { ...opts, at: ts - 4 * 60_000 }))).toBe('no error');
    expect(await codeOf(verify(debugDoc, { ...opts, at: ts - 10 * 60_000, clockSkewMs: 11 * 60_000 }))).toBe('no error');
    // With no skew allowed, one millisecond ahead is already too far.
    expect(await codeOf(verify(anchorage, { at: anchorage.timestamp_ms - 1, clockSkewMs: 0 }))).toBe('DOCUMENT_FROM_FUTURE');
    expect(await codeOf(verify(anchorage, { at: anchorage.timestamp_ms, clockSkewMs: 0 }))).toBe('no error');
  });

  it('an invalid verification time → POLICY_INVALID', async () => {
    expect(await codeOf(verify(anchorage, { at: Number.NaN }))).toBe('POLICY_INVALID');
    expect(await codeOf(verify(anchorage, { at: new Date('not a date') }))).toBe('POLICY_INVALID');
  });
});

describe('binding: nonce, user_data, public_key', () => {
  const nonce = fromHex(anchorage.nonce!);
  const userData = fromHex(anchorage.user_data!);
  const publicKey = fromHex(base2024.public_key!);
  const changed = (b: Uint8Array): Uint8Array => b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x));

  it('matching values pass and are returned', async () => {
    const a = await verify(anchorage, { nonce, userData });
    expect([toHex(a.nonce!), toHex(a.userData!)]).toEqual([anchorage.nonce, anchorage.user_data]);
    const b = await verify(base2024, { publicKey });
    expect(toHex(b.publicKey!)).toBe(base2024.public_key);
  });

  it.each<[string, ParsedNitroVector, VerifyOptions, ErrorCode]>([
    ['nonce expected, document has none', base2024, { nonce: fromHex('00'.repeat(32)) }, 'NONCE_MISMATCH'],
    ['nonce differs in the last bit', anchorage, { nonce: changed(nonce) }, 'NONCE_MISMATCH'],
    ['nonce is a prefix', anchorage, { nonce: nonce.subarray(0, 16) }, 'NONCE_MISMATCH'],
    ['user_data expected, document has none', base2024, { userData: utf8('x') }, 'USER_DATA_MISMATCH'],
    ['user_data differs', anchorage, { userData: changed(userData) }, 'USER_DATA_MISMATCH'],
    ['public_key expected, document has none', anchorage, { publicKey }, 'PUBLIC_KEY_MISMATCH'],
    ['public_key differs', base2024, { publicKey: changed(publicKey) }, 'PUBLIC_KEY_MISMATCH'],
    ['right nonce, wrong user_data', anchorage, { nonce, userData: changed(userData) }, 'USER_DATA_MISMATCH'],
  ])('%s → %s', async (_name, v, options, code) => {
    expect(await codeOf(verify(v, options))).toBe(code);
  });

  it('an empty expected nonce does not match a document without one', async () => {
    expect(await codeOf(verify(base2024, { nonce: new Uint8Array(0) }))).toBe('NONCE_MISMATCH');
  });
});

describe('the step report', () => {
  const statuses = (r: { steps: readonly { status: string }[] }): string[] => r.steps.map((s) => s.status);

  it('lists every step passed, in order, for valid evidence', async () => {
    const r = await verifyAttestationReport(anchorage.bytes, { at: at(anchorage), nonce: fromHex(anchorage.nonce!) });
    expect(r.valid).toBe(true);
    expect(r.steps.map((s) => s.step)).toEqual([...VERIFICATION_STEPS]);
    expect(VERIFICATION_STEPS).toEqual(['parse', 'chain', 'signature', 'time', 'policy', 'binding']);
    expect(statuses(r)).toEqual(Array(6).fill('passed'));
    expect(r.steps[5]!.reason).toBe('nonce matched');
    expect(r.error).toBeUndefined();
    expect(r.attestation?.moduleId).toBe(anchorage.module_id);
  });

  it.each<[string, ParsedNitroVector, VerifyOptions, number, ErrorCode]>([
    ['PCR mismatch fails policy', anchorage, { policy: { pcrs: { 0: '00'.repeat(48) } } }, 4, 'PCR_MISMATCH'],
    ['debug fails policy', debugDoc, {}, 4, 'DEBUG_MODE'],
    ['age fails policy', anchorage, { policy: { maxAgeMs: 0 } }, 4, 'DOCUMENT_TOO_OLD'],
    ['nonce fails binding', anchorage, { nonce: new Uint8Array(32) }, 5, 'NONCE_MISMATCH'],
    ['expiry fails time', anchorage, { at: Date.parse(anchorage.chain_validity_window[1]) + 1 }, 3, 'CERT_EXPIRED'],
    ['future timestamp fails time', anchorage, { at: anchorage.timestamp_ms - 1, clockSkewMs: 0 }, 3, 'DOCUMENT_FROM_FUTURE'],
    ['untrusted root fails chain', anchorage, { rootCertificates: [new Uint8Array([1, 2, 3])] }, 1, 'CHAIN_UNTRUSTED_ROOT'],
  ])('%s: earlier steps passed, that step failed with its code, later ones skipped', async (_name, v, options, failedAt, code) => {
    const r = await verifyAttestationReport(v.bytes, { at: at(v), ...options });
    expect(r.valid).toBe(false);
    expect(r.error?.code).toBe(code);
    expect(r.steps.map((s) => s.step)).toEqual([...VERIFICATION_STEPS]);
    expect(statuses(r)).toEqual(VERIFICATION_STEPS.map((_, i) => (i < failedAt ? 'passed' : i === failedAt ? 'failed' : 'skipped')));
    expect(r.steps[failedAt]).toMatchObject({ status: 'failed', code });
    expect(r.steps.slice(failedAt + 1).every((s) => s.reason === `not checked: step ${VERIFICATION_STEPS[failedAt]} failed`)).toBe(true);
    expect(r.attestation).toBeUndefined();
  });
});
