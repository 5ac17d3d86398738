/**
 * Client SDK pieces without a server: the verification report's rules (which steps must pass),
 * the attestation cache's expiry, and strict parsing of the gateway's inference answers
 * (attacker-controlled) into typed CLIENT_RESPONSE_INVALID errors.
 */
import { AttestationCache } from '../../attestation/client/attestation-cache';
import { AttestationRejectedError, type AttestedEnclave } from '../../attestation/client/enclave-attestation';
import { GatewayHttp, errorFromAnswer } from '../../attestation/client/http';
import { parseInferAnswer, receiptIssuer } from '../../attestation/client/infer';
import { REPORT_STEPS, finishReport, inferenceReport, rejectedAttestationReport, stoppedReport, type ReportStepOutcome } from '../../attestation/client/report';
import type { ReceiptReport } from '../../attestation/receipt';
import { toBase64Url, utf8 } from '../../attestation/bytes';

const passed = (step: ReportStepOutcome['step']): ReportStepOutcome => ({ step, status: 'passed', reason: 'ok' });

describe('verification report', () => {
  it('is valid when every required step passed, whatever input, output, nonce, mode and log say (unless failed)', () => {
    const steps = REPORT_STEPS.filter((s) => !['input', 'output', 'nonce', 'mode', 'log'].includes(s)).map(passed);
    const r = finishReport([...steps, { step: 'log', status: 'pending', reason: 'not yet integrated' }]);
    expect(r.valid).toBe(true);
    expect(r.steps.map((s) => s.step)).toEqual([...REPORT_STEPS]);
    expect(r.steps.find((s) => s.step === 'nonce')?.status).toBe('skipped');
  });

  it('is invalid with the first failure\'s code, or when a required step was skipped', () => {
    const failed = finishReport([...REPORT_STEPS.map(passed).filter((s) => s.step !== 'log'), { step: 'log', status: 'failed', reason: 'bad proof', code: 'LOG_PROOF_INVALID' }]);
    expect(failed).toMatchObject({ valid: false, error: { code: 'LOG_PROOF_INVALID', message: 'bad proof' } });
    const skipped = finishReport(REPORT_STEPS.filter((s) => s !== 'signature').map(passed));
    expect(skipped.valid).toBe(false);
    expect(skipped.steps.find((s) => s.step === 'signature')?.status).toBe('skipped');
  });

  it('a step with a failed outcome is failed, whichever outcome of it came first', () => {
    const r = finishReport([...REPORT_STEPS.map(passed), { step: 'model', status: 'failed', reason: 'salt is not hex', code: 'RECEIPT_INVALID' }]);
    expect(r).toMatchObject({ valid: false, error: { code: 'RECEIPT_INVALID', message: 'salt is not hex' } });
    expect(r.steps.find((s) => s.step === 'model')?.status).toBe('failed');
  });

  it('an inference report is never valid when its receipt report is not, even with no step marked failed', () => {
    const receipt = {
      valid: false,
      steps: [{ step: 'signature', status: 'passed', reason: 'ok' }, { step: 'claims', status: 'passed', reason: 'ok' }, { step: 'model', status: 'passed', reason: 'ok' }],
      error: { code: 'RECEIPT_INVALID', message: 'salt must be 32 bytes of hex' },
    } as const;
    const r = inferenceReport({ attestation: 'a', manifest: 'm', bootId: 'b' }, receipt as unknown as ReceiptReport, { step: 'log', status: 'skipped', reason: 'offline' });
    expect(r).toMatchObject({ valid: false, error: { code: 'RECEIPT_INVALID', message: 'salt must be 32 bytes of hex' } });
  });

  it('reports a rejected attestation or manifest with every later step skipped', () => {
    const steps = [{ step: 'parse', status: 'passed', reason: '' }, { step: 'chain', status: 'passed', reason: '' }, { step: 'policy', status: 'failed', reason: 'PCR0 differs', code: 'PCR_MISMATCH' }] as const;
    const r = rejectedAttestationReport(new AttestationRejectedError('PCR_MISMATCH', 'PCR0 differs', 'attestation', steps));
    expect(r).toMatchObject({ valid: false, error: { code: 'PCR_MISMATCH' } });
    expect(r.steps[0]).toMatchObject({ step: 'attestation', status: 'failed', code: 'PCR_MISMATCH' });
    expect(r.steps.slice(1).map((s) => s.status)).toEqual(Array(REPORT_STEPS.length - 1).fill('skipped'));
    const m = rejectedAttestationReport(new AttestationRejectedError('MANIFEST_BINDING_MISMATCH', 'user_data differs', 'manifest', []));
    expect(m.steps.slice(0, 2).map((s) => s.status)).toEqual(['passed', 'failed']);
    expect(m.error?.code).toBe('MANIFEST_BINDING_MISMATCH');
  });
});

describe('a check that stopped early', () => {
  it('marks only what was checked as passed: nothing before a receipt that names no enclave', () => {
    const r = stoppedReport({ step: 'signature', status: 'failed', reason: 'no iss', code: 'RECEIPT_INVALID' });
    expect(r).toMatchObject({ valid: false, error: { code: 'RECEIPT_INVALID', message: 'no iss' } });
    expect(r.steps.map((s) => s.status)).toEqual(REPORT_STEPS.map((s) => (s === 'signature' ? 'failed' : 'skipped')));
    expect(r.steps.find((s) => s.step === 'attestation')?.reason).toBe('not checked: step signature failed');
  });

  it('keeps the verified attestation before a manifest that does not bind', () => {
    const r = stoppedReport({ step: 'manifest', status: 'failed', reason: 'user_data differs', code: 'MANIFEST_BINDING_MISMATCH' }, 'boot document (live enclave e0) verified');
    expect(r.steps.slice(0, 3).map((s) => [s.status, s.reason])).toEqual([
      ['passed', 'boot document (live enclave e0) verified'],
      ['failed', 'user_data differs'],
      ['skipped', 'not checked: step manifest failed'],
    ]);
    expect(r.error?.code).toBe('MANIFEST_BINDING_MISMATCH');
  });
});

describe('attestation cache', () => {
  const enclave = (bootId: string, verifiedAt: number) => ({ bootId, verifiedAt }) as unknown as AttestedEnclave;

  it('serves entries until they are older than the maximum age; keeps the last current one for display', () => {
    let now = 1_000;
    const cache = new AttestationCache(500, () => now);
    cache.put(enclave('a', 1_000), true);
    cache.put(enclave('b', 1_200), false);
    expect(cache.current()?.bootId).toBe('a');
    now = 1_500;
    expect(cache.get('a')?.bootId).toBe('a');
    now = 1_501;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.current()).toBeUndefined();
    expect(cache.last()?.bootId).toBe('a');
    expect(cache.get('b')?.bootId).toBe('b');
    cache.forget('b');
    expect(cache.get('b')).toBeUndefined();
    expect(() => new AttestationCache(-1)).toThrow(RangeError);
  });
});

describe('inference answers (attacker-controlled)', () => {
  const good = { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [[1, 2]] }], parameters: { receipt: 'a.b.c', salt: 'ab'.repeat(32), log_index: 7 } };

  it('reads outputs (flattened), receipt, salt and the log index (body first, then header)', () => {
    const a = parseInferAnswer(good, new Headers({ 'teegate-log-index': '9', 'teegate-enclave': 'enclave-1' }));
    expect(a).toMatchObject({ receipt: 'a.b.c', logIndex: 7, enclaveId: 'enclave-1' });
    expect(a.outputs[0]!.data).toEqual([1, 2]);
    const sealed = parseInferAnswer({ ...good, parameters: { receipt: 'a.b.c', salt: good.parameters.salt } }, new Headers({ 'teegate-log-index': '9' }));
    expect(sealed.logIndex).toBe(9);
  });

  it('rejects malformed answers with CLIENT_RESPONSE_INVALID', () => {
    const bad: unknown[] = [
      null,
      [],
      { ...good, parameters: { salt: good.parameters.salt } },
      { ...good, parameters: { receipt: 'a.b.c', salt: 'abc' } },
      { ...good, parameters: { ...good.parameters, log_index: -1 } },
      { ...good, outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [1] }] },
      { ...good, outputs: 'nope' },
    ];
    for (const value of bad) expect(() => parseInferAnswer(value, new Headers())).toThrow(expect.objectContaining({ code: 'CLIENT_RESPONSE_INVALID' }));
  });

  it('reads a receipt\'s claimed issuer without trusting it, and nothing from garbage', () => {
    const jws = (claims: unknown) => `e30.${toBase64Url(utf8(JSON.stringify(claims)))}.sig`;
    expect(receiptIssuer(jws({ iss: 'boot-1' }))).toBe('boot-1');
    for (const r of ['', 'a.b', 'a.!!.c', jws({ iss: 5 }), jws(null), jws({ iss: 'x'.repeat(200) })]) expect(receiptIssuer(r)).toBeUndefined();
  });

  it('keeps a gateway error\'s registered code and wraps anything else', () => {
    const answer = (status: number, text: string) => ({ status, headers: new Headers(), text });
    expect(errorFromAnswer('/p', answer(404, '{"code":"MODEL_NOT_FOUND","message":"no"}'))).toMatchObject({ code: 'MODEL_NOT_FOUND' });
    expect(errorFromAnswer('/p', answer(500, '{"code":"MADE_UP","message":"x"}'))).toMatchObject({ code: 'CLIENT_FETCH_FAILED' });
    expect(errorFromAnswer('/p', answer(502, '<html>bad gateway</html>'))).toMatchObject({ code: 'CLIENT_FETCH_FAILED' });
    expect(() => new GatewayHttp('not a url')).toThrow(expect.objectContaining({ code: 'REQUEST_INVALID' }));
  });
});
