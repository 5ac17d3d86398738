/**
 * The SDK's log step against the real transparency log (gateway/log: file storage, Ed25519
 * checkpoints, RFC 9162 proofs) served by its own router at /v1/log on loopback, with real
 * receipts from a real enclave: pending before integration, passed after, failed for a wrong
 * pinned key or a receipt that is not the entry at its claimed index, skipped without a key.
 * Then end to end: a gateway logging into that log, and `infer()` whose log step passes.
 */
import { connect } from '../../attestation/client';
import { GatewayHttp } from '../../attestation/client/http';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { checkLogInclusion, parseInclusionProof } from '../../attestation/client/log-inclusion';
import { generateNoteKey } from '../../attestation/log/signed-note';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { openFileLog, serveLog, tempDir, type ServedLog } from './log-fixtures';
import { FileLogStorage } from '../../gateway/log/storage/file-storage';
import { TransparencyLog } from '../../gateway/log/transparency-log';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway } from '../../gateway/server';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig } from '../support/gateway-harness';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(60_000);

let enclave: RunningEnclave;
let log: TransparencyLog;
let served: ServedLog;
let http: GatewayHttp;

async function receipt(): Promise<string> {
  const res = await fetch(`${enclave.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
  return res.headers.get('teegate-receipt')!;
}

beforeAll(async () => {
  enclave = await startEnclave({ models: tinyModelConfigs() });
  log = await openFileLog(tempDir('teegate-client-log-'), 'client-test.local/log');
  served = await serveLog(log);
  http = new GatewayHttp(served.url);
});

afterAll(async () => {
  await served?.close();
  await log?.close();
  await enclave?.close();
});

describe('log step of the verification report', () => {
  it('is pending while the log has no checkpoint, then pending until the entry is integrated, then passed', async () => {
    const jws = await receipt();
    const { index } = await log.appendReceipt(jws);
    const key = (await (await fetch(`${http.baseUrl}/v1/log/key`)).text()).trim();
    expect(key).toBe(log.verifierKey);

    expect(await checkLogInclusion(http, jws, index, { logKey: key })).toMatchObject({ step: 'log', status: 'pending', code: 'LOG_NOT_FOUND' });

    const other = await receipt();
    await log.flush();
    const later = await log.appendReceipt(other);
    expect(await checkLogInclusion(http, other, later.index, { logKey: key })).toMatchObject({ status: 'pending' });

    const passed = await checkLogInclusion(http, jws, index, { logKey: key });
    expect(passed).toMatchObject({ status: 'passed' });
    expect(passed.reason).toContain('signed by client-test.local/log');

    // With waitMs the client polls until the entry is integrated.
    setTimeout(() => void log.flush(), 300);
    expect(await checkLogInclusion(http, other, later.index, { logKey: key, waitMs: 5000, pollMs: 50 })).toMatchObject({ status: 'passed' });
  });

  it('fails with LOG_SIGNATURE_INVALID when the checkpoint is not signed by the pinned key', async () => {
    const jws = await receipt();
    const { index } = await log.appendReceipt(jws);
    await log.flush();
    const impostor = (await generateNoteKey('client-test.local/log')).verifierKey;
    expect(await checkLogInclusion(http, jws, index, { logKey: impostor })).toMatchObject({ status: 'failed', code: 'LOG_SIGNATURE_INVALID' });
  });

  it('fails with LOG_PROOF_INVALID when the receipt is not the entry at the index the gateway claimed', async () => {
    const jws = await receipt();
    const { index } = await log.appendReceipt(jws);
    await log.flush();
    const notLogged = await receipt();
    expect(await checkLogInclusion(http, notLogged, index, { logKey: log.verifierKey })).toMatchObject({ status: 'failed', code: 'LOG_PROOF_INVALID' });
  });

  it('is skipped without a pinned key or a log index', async () => {
    const jws = await receipt();
    expect(await checkLogInclusion(http, jws, 0, {})).toMatchObject({ status: 'skipped' });
    expect(await checkLogInclusion(http, jws, undefined, { logKey: log.verifierKey })).toMatchObject({ status: 'skipped' });
  });

  it('is pending, not failed, when the log cannot be reached', async () => {
    const gone = new GatewayHttp('http://127.0.0.1:9');
    expect(await checkLogInclusion(gone, await receipt(), 0, { logKey: log.verifierKey })).toMatchObject({ status: 'pending', code: 'CLIENT_FETCH_FAILED' });
  });

  it('parses proofs strictly (attacker-controlled)', () => {
    expect(parseInclusionProof({ proof: [Buffer.alloc(32, 1).toString('base64')] })).toEqual([new Uint8Array(32).fill(1)]);
    for (const bad of [{}, { proof: 'x' }, { proof: ['AAAA'] }, { proof: Array(129).fill(Buffer.alloc(32).toString('base64')) }, [1]]) {
      expect(() => parseInclusionProof(bad)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(LOG_PROOF_INVALID|CLIENT_RESPONSE_INVALID)$/) }));
    }
  });
});

describe('infer() with a gateway that logs every receipt', () => {
  it('verifies the receipt\'s inclusion under a checkpoint signed by the pinned key', async () => {
    const ca = await createDevCa();
    const served = await startTestEnclave(ca, tinyModelConfigs());
    const live = await TransparencyLog.open({
      storage: await FileLogStorage.open(tempDir('teegate-client-log-')),
      origin: 'gateway.test/log',
      integrateIntervalMs: 20,
      publishIntervalMs: 50,
    });
    live.start();
    const logServer = await serveLog(live);
    const gateway = await startGateway(
      testGatewayConfig({ enclaves: [served.url], attestation: { rootCertificates: [ca.rootPem], policy: policyFor(served.pcrs) }, auth: { disabled: true } }),
      { sink: live, logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
    );
    try {
      const logUrl = logServer.url;
      const client = await connect(gateway.url, { policy: policyFor(served.pcrs), rootCertificates: [ca.rootPem], logKey: live.verifierKey, logUrl });
      const r = await client.infer('affine', affineRequest().inputs, { logWaitMs: 10_000 });
      expect(r.report.valid).toBe(true);
      expect(r.logIndex).toBeGreaterThan(0); // entry 0 is the enclave's boot attestation
      expect(r.report.steps.find((s) => s.step === 'log')).toMatchObject({ status: 'passed' });

      const wrongKey = await connect(gateway.url, { policy: policyFor(served.pcrs), rootCertificates: [ca.rootPem], logKey: (await generateNoteKey('gateway.test/log')).verifierKey, logUrl });
      const bad = await wrongKey.infer('affine', affineRequest().inputs, { sealed: false, logWaitMs: 10_000 });
      expect(bad.report.valid).toBe(false);
      expect(bad.report.steps.find((s) => s.step === 'log')).toMatchObject({ status: 'failed', code: 'LOG_SIGNATURE_INVALID' });

      // Routes of mounted routers are labelled with their mount point, and a tile route by its pattern.
      expect((await fetch(`${gateway.url}/v1/log/checkpoint`)).status).toBe(200);
      expect((await fetch(`${gateway.url}/v1/log/tile/0/000`)).status).toBeLessThan(500);
      const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
      expect(metrics).toContain('route="/v1/log/checkpoint",method="GET"');
      expect(metrics).toContain('route="/v1/log/tile/*path",method="GET"');
    } finally {
      await gateway.close();
      await logServer.close();
      await live.close();
      await served.close();
    }
  });
});
