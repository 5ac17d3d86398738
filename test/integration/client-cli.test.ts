/**
 * `teegate infer` and `teegate verify-receipt` as a user runs them (the real bin/teegate in a child
 * process) against a real gateway and enclave on loopback serving the shipped OCR demo model:
 * human output listing each step, --json, exit codes 0 / 1 (REJECTED <CODE>) / 2, and the saved
 * evidence checked offline, untouched and tampered.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { makePolicyFile } from '../../attestation/policy-file';
import type { RunningEnclave } from '../../enclave/main';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { DEMO_MODEL, DEMO_TEXT } from '../support/demo';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys } from '../support/gateway-harness';
import { tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(120_000);

const BIN = join(__dirname, '../../bin/teegate');
let ca: DevCa;
let enclave: RunningEnclave;
let other: RunningEnclave;
let gateway: RunningGateway;
let dir: string;
let policyPath: string;
let env: NodeJS.ProcessEnv;

async function teegate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  ca = await createDevCa();
  enclave = await startTestEnclave(ca, [...defaultModelConfigs(), ...tinyModelConfigs()]);
  other = await startTestEnclave(ca, tinyModelConfigs());
  const k = testKeys();
  gateway = await startGateway(
    testGatewayConfig({ enclaves: [enclave.url], attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclave.pcrs) }, auth: { keys: k.config } }),
    { sink: new MemoryReceiptSink(), logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
  );
  dir = mkdtempSync(join(tmpdir(), 'teegate-cli-'));
  policyPath = join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify(makePolicyFile(policyFor(enclave.pcrs).pcrs, { rootCertificates: [ca.rootPem] })));
  env = { ...process.env, TEEGATE_API_KEY: k.keys.infer };
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
  await other?.close();
});

describe('teegate infer', () => {
  it('--demo: attests, sends the shipped PNG sealed to the OCR model, lists each verified step, exits 0', async () => {
    const save = join(dir, 'demo');
    const r = await teegate('infer', '--url', gateway.url, '--demo', '--policy', policyPath, '--save', save);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`attested enclave ${enclave.manifest.boot_id}`);
    for (const step of ['attestation', 'manifest', 'signature', 'model', 'input', 'output', 'nonce', 'mode']) expect(r.stdout).toMatch(new RegExp(`^  ok   ${step} `, 'm'));
    expect(r.stdout).toMatch(/^  skip log +log index \d+; no log key pinned/m);
    expect(r.stdout).toContain(`text BYTES [1]: "${DEMO_TEXT}"`);
    expect(r.stdout).toMatch(/^VERIFIED receipt \S+ seq \d+ from enclave /m);
    expect(readFileSync(join(save, 'receipt.jws'), 'utf8')).toMatch(/^ey/);
    // The offline check it prints runs as printed, under the same policy, for the model and mode asked for.
    const printed = /\(check offline: teegate (verify-receipt .*)\)$/m.exec(r.stdout);
    expect(printed?.[1]).toContain(`--policy ${policyPath} --model ppocr-v4-rec --sealed`);
    const offline = await teegate(...printed![1]!.split(' '));
    expect([offline.code, offline.stdout]).toEqual([0, expect.stringMatching(/^VALID /m)]);
  });

  it('--model --input --plain --json: a machine-readable result', async () => {
    const input = join(dir, 'affine.json');
    writeFileSync(input, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [[1, 2, 3, 4]] }] }));
    const r = await teegate('infer', '--url', gateway.url, '--model', 'affine', '--input', input, '--policy', policyPath, '--plain', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { valid: boolean; sealed: boolean; outputs: { name: string; data: number[] }[]; steps: { step: string; status: string }[]; claims: { sealed: boolean }; log_index: number };
    expect(out).toMatchObject({ valid: true, sealed: false, claims: { sealed: false } });
    expect(out.outputs[0]!.data).toEqual([3, 5, 7, 9]);
    expect(out.steps.map((s) => s.step)).toEqual(['attestation', 'manifest', 'signature', 'model', 'input', 'output', 'nonce', 'mode', 'log']);
    expect(out.log_index).toEqual(expect.any(Number));
  });

  it('exits 1 with REJECTED PCR_MISMATCH when the enclave does not meet the policy', async () => {
    const wrong = join(dir, 'wrong-policy.json');
    writeFileSync(wrong, JSON.stringify(makePolicyFile({ ...policyFor(enclave.pcrs).pcrs, 0: 'cd'.repeat(48) }, { rootCertificates: [ca.rootPem] })));
    const r = await teegate('infer', '--url', gateway.url, '--demo', '--policy', wrong);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^  FAIL attestation +PCR0 is /m);
    expect(r.stdout).toMatch(/^REJECTED PCR_MISMATCH: PCR0 is /m);
  });

  it('exits 2 for usage and I/O errors', async () => {
    expect((await teegate('infer', '--demo')).code).toBe(2);
    expect((await teegate('infer', '--url', gateway.url, '--model', 'affine')).code).toBe(2);
    expect((await teegate('infer', '--url', gateway.url, '--demo', '--policy', join(dir, 'missing.json'))).code).toBe(2);
    const down = await teegate('infer', '--url', 'http://127.0.0.1:9', '--demo', '--policy', policyPath);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('CLIENT_FETCH_FAILED');
    expect((await teegate('infer', '--help')).code).toBe(0);
    // Malformed tensors are refused before anything goes over the wire (the URL does not answer).
    writeFileSync(join(dir, 'no-datatype.json'), JSON.stringify({ inputs: [{ name: 'x', shape: [1], data: [1] }] }));
    const malformed = await teegate('infer', '--url', 'http://127.0.0.1:9', '--model', 'affine', '--input', join(dir, 'no-datatype.json'));
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^teegate infer: TENSOR_INVALID: input file .*no-datatype\.json: /m);
    // Files that are not regular files, or too large, are refused before reading: none hangs.
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const sparse = join(dir, 'huge.cbor');
    writeFileSync(sparse, '');
    truncateSync(sparse, 64 * 1024 * 1024 + 1);
    for (const [file, message] of [
      ['/dev/zero', 'document /dev/zero is not a regular file'],
      [dir, `document ${dir} is not a regular file`],
      [join(dir, 'fifo'), `document ${join(dir, 'fifo')} is not a regular file`],
      [sparse, `document ${sparse} is 67108865 bytes, more than 67108864`],
    ]) {
      const r = await teegate('verify-attestation', file!);
      expect([r.code, r.stderr]).toEqual([2, expect.stringContaining(message!)]);
    }
    // No policy: refused before anything goes over the wire, rather than trusting any image.
    const unpinned = await teegate('infer', '--url', gateway.url, '--demo');
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toMatch(/^teegate infer: --policy FILE is required: /m);
    const saved = env;
    env = { ...saved, TEEGATE_API_KEY: '' };
    const noKey = await teegate('infer', '--url', gateway.url, '--demo', '--policy', policyPath);
    env = saved;
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/AUTH_REQUIRED: .*\n  pass --api-key KEY or set TEEGATE_API_KEY/);
  });
});

describe('teegate verify-receipt', () => {
  const saved = (f: string) => join(dir, 'demo', f);
  const args = () => [saved('receipt.jws'), '--attestation', saved('attestation.b64'), '--manifest', saved('manifest.json'), '--policy', policyPath];

  it('verifies the saved evidence offline, with and without the tensors', async () => {
    const full = await teegate('verify-receipt', ...args(), '--request', saved('request.json'), '--response', saved('response.json'), '--sealed');
    expect(full.code).toBe(0);
    for (const step of ['attestation', 'manifest', 'signature', 'model', 'input', 'output', 'nonce', 'mode']) expect(full.stdout).toMatch(new RegExp(`^  ok   ${step} `, 'm'));
    expect(full.stdout).toMatch(/^VALID ppocr-v4-rec@1, sealed/m);

    const bare = await teegate('verify-receipt', ...args(), '--json');
    expect(bare.code).toBe(0); // the receipt is authentic; the tensors were not given, so not checked
    const out = JSON.parse(bare.stdout) as { valid: boolean; steps: { step: string; status: string }[] };
    expect(out.valid).toBe(true);
    expect(out.steps.find((s) => s.step === 'signature')?.status).toBe('passed');
    expect(out.steps.find((s) => s.step === 'input')?.status).toBe('skipped');
  });

  it('--model: passes for the model asked for, exits 1 with RECEIPT_MISMATCH for another, 2 for a malformed one', async () => {
    const asked = await teegate('verify-receipt', ...args(), '--model', DEMO_MODEL);
    expect(asked.code).toBe(0);
    expect(asked.stdout).toMatch(/^  ok   model +ppocr-v4-rec@1, sha256 [0-9a-f]{16}…, the model asked for$/m);
    const other = await teegate('verify-receipt', ...args(), '--model', `${DEMO_MODEL}@2`);
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/^REJECTED RECEIPT_MISMATCH: receipt is for model ppocr-v4-rec@1, the request was for ppocr-v4-rec@2$/m);
    expect((await teegate('verify-receipt', ...args(), '--model', 'two words')).code).toBe(2);
  });

  it('exits 1 with RECEIPT_MISMATCH for a tampered response', async () => {
    const response = JSON.parse(readFileSync(saved('response.json'), 'utf8')) as { outputs: { data: string[] }[] };
    response.outputs[0]!.data[0] = DEMO_TEXT.replace('verified', 'forged');
    writeFileSync(join(dir, 'tampered.json'), JSON.stringify(response));
    const r = await teegate('verify-receipt', ...args(), '--request', saved('request.json'), '--response', join(dir, 'tampered.json'));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^  FAIL output /m);
    expect(r.stdout).toMatch(/^REJECTED RECEIPT_MISMATCH: output digest/m);
  });

  it('exits 1 with RECEIPT_SIGNATURE_INVALID against another enclave\'s attestation', async () => {
    writeFileSync(join(dir, 'other.b64'), Buffer.from(other.bootDocument).toString('base64'));
    writeFileSync(join(dir, 'other-manifest.json'), JSON.stringify(other.manifest));
    // The other enclave serves other models, so its PCRs differ: its own policy admits its document.
    writeFileSync(join(dir, 'other-policy.json'), JSON.stringify(makePolicyFile(policyFor(other.pcrs).pcrs, { rootCertificates: [ca.rootPem] })));
    const r = await teegate('verify-receipt', saved('receipt.jws'), '--attestation', join(dir, 'other.b64'), '--manifest', join(dir, 'other-manifest.json'), '--policy', join(dir, 'other-policy.json'));
    expect(r.stdout).toMatch(/^  ok   attestation /m);
    expect(r.stdout).toMatch(/^  FAIL signature +receipt kid /m);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^REJECTED RECEIPT_SIGNATURE_INVALID: /m);
  });

  it('exits 1 with PCR_MISMATCH under a wrong policy, 2 for usage errors', async () => {
    const wrong = join(dir, 'wrong-policy.json');
    const r = await teegate('verify-receipt', saved('receipt.jws'), '--attestation', saved('attestation.b64'), '--manifest', saved('manifest.json'), '--policy', wrong);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^REJECTED PCR_MISMATCH: /m);
    expect((await teegate('verify-receipt', saved('receipt.jws'))).code).toBe(2);
    expect((await teegate('verify-receipt', saved('receipt.jws'), '--attestation', join(dir, 'nope'), '--manifest', saved('manifest.json'))).code).toBe(2);
  });
});
