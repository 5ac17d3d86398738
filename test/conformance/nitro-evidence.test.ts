/**
 * Conformance on real AWS Nitro attestation documents (shared/vectors/nitro; each MANIFEST entry names
 * the public repository, path and commit it was taken from). Every expectation here is read from
 * MANIFEST.json, which was produced independently of this verifier.
 */
import { errorCodeOrKindAsync as codeOf } from '../support/error-code';
import { fromHex, toHex } from '../../attestation/bytes';
import { attestationToJSON, verifyAttestation, verifyAttestationReport } from '../../attestation/nitro/verify';
import { flipBit, isDebugVector, loadNitroVectors, nitroVector, parsedNitroVector, validNitroVectors, type ParsedNitroVector } from '../support/nitro-vectors';


const positives = validNitroVectors().map((v) => [v.file, v] as const);
const optionsFor = (v: ParsedNitroVector) => ({ at: v.timestamp_ms + 1000, policy: { allowDebug: isDebugVector(v) } });

describe('the vector set', () => {
  it('has the positives and negatives MANIFEST lists, each decoded to its recorded length and SHA-256', () => {
    const all = loadNitroVectors();
    expect(all.length).toBe(6);
    expect(validNitroVectors().length).toBe(4);
    expect(all.filter((v) => v.expected === 'reject').map((v) => v.file).sort()).toEqual([
      'NEG_base_nitro-validator_2026-01-03_corrupt_public_key_label.base64',
      'eternis_invalid_attestation.base64',
    ]);
    expect(new Set(all.map((v) => v.fileEncoding))).toEqual(new Set(['hex', 'base64']));
  });
});

describe.each(positives)('%s', (_file, v) => {
  it("verifies at its own time with at: 'document' (no age limit applies) and is expired today", async () => {
    const report = await verifyAttestationReport(v.bytes, { at: 'document', policy: { allowDebug: isDebugVector(v), maxAgeMs: 0 } });
    expect(report.valid).toBe(true);
    expect(report.attestation?.timestamp).toBe(v.timestamp_ms);
    expect(report.steps.find((s) => s.step === 'time')?.reason).toContain(new Date(v.timestamp_ms).toISOString());
    expect(report.steps.find((s) => s.step === 'policy')?.reason).not.toContain('age within');
    expect(await codeOf(verifyAttestation(v.bytes, { policy: { allowDebug: isDebugVector(v) } }))).toBe('CERT_EXPIRED');
  });

  it('verifies at its timestamp + 1 s with exactly the fields MANIFEST records', async () => {
    const a = await verifyAttestation(v.bytes, optionsFor(v));
    expect(a.moduleId).toBe(v.module_id);
    expect(a.timestamp).toBe(v.timestamp_ms);
    expect(new Date(a.timestamp).toISOString()).toBe(new Date(v.timestamp_iso!).toISOString());
    expect(a.nonce ? toHex(a.nonce) : null).toBe(v.nonce ?? null);
    expect(a.userData ? toHex(a.userData) : null).toBe(v.user_data ?? null);
    expect(a.publicKey ? toHex(a.publicKey) : null).toBe(v.public_key ?? null);
    expect(a.pcrs.size).toBe(v.pcr_count);
    const nonZero = Object.fromEntries([...a.pcrs].filter(([, b]) => b.some((x) => x !== 0)).map(([i, b]) => [String(i), toHex(b)]));
    expect(nonZero).toEqual(v.pcrs_nonzero);
    expect(a.debug).toBe(isDebugVector(v));
    expect(a.chain).toHaveLength(5);
    expect([a.certificate.notBefore, a.certificate.notAfter].map(Date.parse)).toEqual(v.leaf_cert_validity.map(Date.parse));
    expect(a.documentSha384).toMatch(/^[0-9a-f]{96}$/);
    expect(attestationToJSON(a)).toMatchObject({ moduleId: v.module_id, timestamp: v.timestamp_ms, pcrs: expect.objectContaining(v.pcrs_nonzero) });
  });

  it('verifies at both ends of its chain validity window, and fails one second outside it', async () => {
    const [from, to] = v.chain_validity_window.map(Date.parse) as [number, number];
    const policy = { allowDebug: isDebugVector(v) };
    expect(await codeOf(verifyAttestation(v.bytes, { at: Math.max(from, v.timestamp_ms), policy }))).toBe('no error');
    expect(await codeOf(verifyAttestation(v.bytes, { at: to, policy }))).toBe('no error');
    expect(await codeOf(verifyAttestation(v.bytes, { at: to + 1000, policy }))).toBe('CERT_EXPIRED');
    expect(await codeOf(verifyAttestation(v.bytes, { at: from - 1000, policy, clockSkewMs: 365 * 86_400_000 }))).toBe('CERT_NOT_YET_VALID');
  });

  it('fails with CERT_EXPIRED today', async () => {
    const policy = { allowDebug: isDebugVector(v) };
    expect(await codeOf(verifyAttestation(v.bytes, { at: Date.now(), policy }))).toBe('CERT_EXPIRED');
    // Omitting `at` means now.
    expect(await codeOf(verifyAttestation(v.bytes, { policy }))).toBe('CERT_EXPIRED');
  });

  it('passes with its MANIFEST PCR0 (or PCR3 where PCR0 is zero) as policy, fails with one bit changed', async () => {
    const index = v.pcrs_nonzero['0'] !== undefined ? '0' : '3';
    const expected = v.pcrs_nonzero[index]!;
    const options = optionsFor(v);
    await expect(verifyAttestation(v.bytes, { ...options, policy: { ...options.policy, pcrs: { [index]: expected } } })).resolves.toBeDefined();
    const bytes = flipBit(fromHex(expected), 47, 0);
    const r = await verifyAttestationReport(v.bytes, { ...options, policy: { ...options.policy, pcrs: { [index]: toHex(bytes) } } });
    expect(r.error?.code).toBe('PCR_MISMATCH');
  });
});

describe('documents that must be rejected', () => {
  it('the debug-mode document → DEBUG_MODE by default', async () => {
    const v = parsedNitroVector('sui_debug');
    expect(isDebugVector(v)).toBe(true);
    expect(await codeOf(verifyAttestation(v.bytes, { at: v.timestamp_ms + 1000 }))).toBe('DEBUG_MODE');
  });

  it('eternis (chain good, COSE signature bad) → SIGNATURE_INVALID at its own time', async () => {
    const v = parsedNitroVector('eternis');
    expect(v.cose_sig_ok).toBe(false);
    expect(v.chain_sig_and_validity_at_timestamp_ok).toBe(true);
    const r = await verifyAttestationReport(v.bytes, { at: v.timestamp_ms + 1000, policy: { allowDebug: true } });
    expect(r.error?.code).toBe('SIGNATURE_INVALID');
    expect(r.steps.map((s) => s.status)).toEqual(['passed', 'passed', 'failed', 'skipped', 'skipped', 'skipped']);
  });

  it('NEG_ (map key length 10 with 7 bytes of text) → CBOR_MALFORMED', async () => {
    const v = nitroVector('NEG_');
    expect(v.parse_error).toContain('UnicodeDecodeError');
    const r = await verifyAttestationReport(v.bytes, { at: Date.parse('2026-01-03T20:41:08Z') });
    expect(r.error?.code).toBe('CBOR_MALFORMED');
    expect(r.steps[0]).toMatchObject({ step: 'parse', status: 'failed', code: 'CBOR_MALFORMED' });
  });
});
