/**
 * Issue 7, client SDK end to end on loopback: a real gateway in front of two real enclaves (dev
 * NSM, one dev CA), and a third enclave the gateway does not know. The SDK attests (fresh nonce,
 * policy, manifest binding, boot document), infers sealed and plain, and verifies every answer.
 * Attacks go through the SDK's injectable fetch, which stands where a hostile network or gateway
 * would: replayed attestation, rewritten outputs, a receipt from another enclave, a changed nonce.
 */
import { receiptIssuer } from '../../attestation/client/infer';
import { connect, type ConnectOptions, type FetchLike } from '../../attestation/client';
import { AttestationRejectedError } from '../../attestation/client/enclave-attestation';
import { rejectedAttestationReport } from '../../attestation/client/report';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { makePolicyFile, parsePolicyFile } from '../../attestation/policy-file';
import type { RunningEnclave } from '../../enclave/main';
import type { ModelConfig } from '../../enclave/models/model-config';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs } from '../support/gateway-harness';
import { affineRequest } from '../support/tiny-models';

jest.setTimeout(60_000);

let ca: DevCa;
let models: ModelConfig[];
let enclaves: RunningEnclave[];
let outsider: RunningEnclave;
let gateway: RunningGateway;
let apiKey: string;

const X = affineRequest().inputs;
const Y = [3, 5, 7, 9]; // y = 2x + 1

function options(extra: Record<string, unknown> = {}) {
  return { policy: { pcrs: policyFor(enclaves[0]!.pcrs).pcrs }, rootCertificates: [ca.rootPem], apiKey, ...extra };
}

/** A fetch that lets a test rewrite requests and answers, as a hostile network could. */
function intercept(rewrite: { request?: (url: string, init: RequestInit) => [string, RequestInit]; answer?: (url: string, text: string, res: Response) => string | Promise<string> }): FetchLike {
  return async (input, init = {}) => {
    const [url, changed] = rewrite.request ? rewrite.request(input, init) : [input, init];
    const res = await fetch(url, changed);
    if (!rewrite.answer) return res;
    const text = await rewrite.answer(url, await res.text(), res);
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    return new Response(text, { status: res.status, headers });
  };
}

beforeAll(async () => {
  ca = await createDevCa();
  // `twin`: the affine model under another name, so a gateway could run it for an `affine` request.
  models = [...testModelConfigs(), { ...testModelConfigs()[0]!, name: 'twin' }];
  enclaves = [await startTestEnclave(ca, models), await startTestEnclave(ca, models)];
  outsider = await startTestEnclave(ca, models);
  const k = testKeys();
  apiKey = k.keys.infer;
  gateway = await startGateway(
    testGatewayConfig({
      enclaves: enclaves.map((e) => e.url),
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclaves[0]!.pcrs) },
      auth: { keys: k.config },
      pool: { healthIntervalMs: 200, healthTimeoutMs: 2000, selection: 'round-robin' },
      // Every connect() attests (GET /v1/attestation, limited per client address): this suite
      // connects about 30 times in a second or two, which the default (10/s, burst 20) refuses.
      limits: { anonymousRateLimit: { requestsPerSecond: 1000, burst: 1000 } },
    }),
    { sink: new MemoryReceiptSink(), logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
  );
});

afterAll(async () => {
  await gateway?.close();
  for (const e of [...(enclaves ?? []), outsider]) await e?.close();
});

describe('connect', () => {
  it('attests one of the gateway\'s enclaves with a fresh nonce and binds its manifest and boot document', async () => {
    const client = await connect(gateway.url, options());
    const a = client.attestation;
    expect(enclaves.map((e) => e.manifest.boot_id)).toContain(a.bootId);
    const served = enclaves.find((e) => e.manifest.boot_id === a.bootId)!;
    expect(a.manifest).toEqual(served.manifest);
    expect(a.nonce).toMatch(/^[0-9a-f]{64}$/);
    expect(a.steps.map((s) => [s.step, s.status])).toEqual(['parse', 'chain', 'signature', 'time', 'policy', 'binding'].map((s) => [s, 'passed']));
    expect(a.bootDocument).toEqual(served.bootDocument);
    expect(a.fresh.documentSha384).not.toBe(a.boot.documentSha384);
    expect(a.enclaveId).toMatch(/^enclave-[01]$/);
  });

  it('accepts a policy file loaded with parsePolicyFile (PCRs and the dev root from the file)', async () => {
    const loaded = parsePolicyFile(makePolicyFile(policyFor(enclaves[0]!.pcrs).pcrs, { rootCertificates: [ca.rootPem], maxAgeSeconds: 300 }));
    const client = await connect(gateway.url, { policy: loaded, apiKey });
    expect((await client.infer('affine', X)).report.valid).toBe(true);
  });

  it('rejects an enclave whose PCR differs from the policy: PCR_MISMATCH in the report', async () => {
    const wrong = { ...policyFor(enclaves[0]!.pcrs).pcrs, 0: 'ab'.repeat(48) };
    const err = await connect(gateway.url, options({ policy: { pcrs: wrong } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationRejectedError);
    expect((err as AttestationRejectedError).code).toBe('PCR_MISMATCH');
    const report = rejectedAttestationReport(err as AttestationRejectedError);
    expect(report.valid).toBe(false);
    expect(report.steps[0]).toMatchObject({ step: 'attestation', status: 'failed', code: 'PCR_MISMATCH' });
    expect(report.steps.slice(1).every((s) => s.status === 'skipped')).toBe(true);
  });

  it('rejects a replayed attestation (the answer to an earlier nonce): NONCE_MISMATCH', async () => {
    let first: string | undefined;
    const replay = intercept({ answer: (url, text) => (url.includes('/v1/attestation') ? (first ??= text) : text) });
    await connect(gateway.url, options({ fetch: replay }));
    const err = await connect(gateway.url, options({ fetch: replay })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NONCE_MISMATCH', stage: 'attestation' });
  });

  it('rejects a manifest swapped for another enclave\'s: MANIFEST_BINDING_MISMATCH', async () => {
    const swap = intercept({
      answer: (url, text) => (url.includes('/v1/attestation') ? JSON.stringify({ ...(JSON.parse(text) as object), manifest: outsider.manifest }) : text),
    });
    await expect(connect(gateway.url, options({ fetch: swap }))).rejects.toMatchObject({ code: 'MANIFEST_BINDING_MISMATCH', stage: 'manifest' });
  });

  it('refuses to connect without a policy that pins a PCR, before any request: POLICY_INVALID', async () => {
    const calls: string[] = [];
    const counting: FetchLike = (input, init) => (calls.push(input), fetch(input, init));
    const { policy: _pinned, ...unpinned } = options({ fetch: counting });
    for (const given of [unpinned, { ...unpinned, policy: { pcrs: {} } }, { ...unpinned, policy: { allowDebug: false } }]) {
      await expect(connect(gateway.url, given as ConnectOptions)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringContaining('pins at least one PCR') });
    }
    expect(calls).toEqual([]);
  });

  it('is untrusted without the dev root: CHAIN_UNTRUSTED_ROOT', async () => {
    await expect(connect(gateway.url, { policy: policyFor(enclaves[0]!.pcrs), apiKey })).rejects.toMatchObject({ code: 'CHAIN_UNTRUSTED_ROOT' });
  });

  it('answers transport problems with typed errors', async () => {
    await expect(connect('http://127.0.0.1:9', options())).rejects.toMatchObject({ code: 'CLIENT_FETCH_FAILED' });
    const garbage = intercept({ answer: (url, text) => (url.includes('/v1/attestation') ? '<html>' : text) });
    await expect(connect(gateway.url, options({ fetch: garbage }))).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID' });
    await expect(connect('ftp://example', options())).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });
});

describe('infer', () => {
  it('sends a sealed request (default) and verifies every step against the caller\'s own tensors', async () => {
    const seen: string[] = [];
    const client = await connect(gateway.url, options({ fetch: intercept({ request: (url, init) => (seen.push(String(init.body ?? '')), [url, init]) }) }));
    const result = await client.infer('affine', X);
    expect(result.outputs.find((o) => o.name === 'y')?.data).toEqual(Y);
    expect(result.sealed).toBe(true);
    expect(result.report.valid).toBe(true);
    expect(result.report.steps.map((s) => [s.step, s.status])).toEqual([
      ['attestation', 'passed'],
      ['manifest', 'passed'],
      ['signature', 'passed'],
      ['model', 'passed'],
      ['input', 'passed'],
      ['output', 'passed'],
      ['nonce', 'passed'],
      ['mode', 'passed'],
      ['log', 'skipped'],
    ]);
    expect(result.claims).toMatchObject({ iss: client.attestation.bootId, sealed: true, nonce: result.nonce });
    expect(result.logIndex).toEqual(expect.any(Number));
    // The gateway saw only the JWE: neither the tensors nor the nonce went over the wire in the clear.
    const posted = seen.filter((b) => b.length > 0).join('\n');
    expect(posted).not.toContain(result.nonce);
    expect(posted).not.toContain('"inputs"');
  });

  it('keeps the caller\'s request id (any length, repeated) apart from the sealed request\'s one-time id', async () => {
    const client = await connect(gateway.url, options());
    for (const sealed of [true, true, false]) {
      const r = await client.infer('affine', X, { id: 'req-1', sealed });
      expect([r.sealed, r.report.valid, r.outputs.find((o) => o.name === 'y')?.data]).toEqual([sealed, true, Y]);
    }
  });

  it('routes sealed requests to the enclave that holds the seal key (teegate-seal-kid)', async () => {
    const client = await connect(gateway.url, options());
    const issuers = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await client.infer('affine', X);
      expect(r.report.valid).toBe(true);
      issuers.add(r.claims!.iss);
    }
    expect([...issuers]).toEqual([client.attestation.bootId]);
  });

  it('verifies plain answers from either enclave against the attestation of the one that signed (iss)', async () => {
    const client = await connect(gateway.url, options());
    const issuers = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await client.infer('affine', X, { sealed: false });
      expect(r.report.valid).toBe(true);
      expect(r.report.steps.find((s) => s.step === 'mode')?.reason).toBe('plain request');
      issuers.add(r.bootId);
      expect(r.claims!.iss).toBe(r.bootId);
    }
    expect([...issuers].sort()).toEqual(enclaves.map((e) => e.manifest.boot_id).sort());
  });

  it('a gateway that sends a request to another model of the manifest: the enclave refuses a sealed one, the receipt exposes a plain one', async () => {
    // The model is in the path, which the gateway sees even for sealed requests. `twin` takes the
    // same tensors and gives the same outputs, so only the model named inside the sealed request,
    // or the receipt's model claim, tells.
    const swap = intercept({ request: (url, init) => [url.replace('/v2/models/affine/', '/v2/models/twin/'), init] });
    const client = await connect(gateway.url, options({ fetch: swap }));
    await expect(client.infer('affine', X, { sealed: true })).rejects.toMatchObject({ code: 'REQUEST_INVALID', message: expect.stringContaining('the sealed request is for model affine, the path names twin') });
    const r = await client.infer('affine', X, { sealed: false });
    expect(r.outputs.find((o) => o.name === 'y')?.data).toEqual(Y);
    expect(r.report.valid).toBe(false);
    expect(r.report.steps.find((s) => s.step === 'model')).toMatchObject({ status: 'failed', code: 'RECEIPT_MISMATCH', reason: 'receipt is for model twin@1, the request was for affine' });
    expect(r.report.steps.find((s) => s.step === 'signature')?.status).toBe('passed');
  });

  it('refuses a sealed answer that is not a JWE, or one sealed to an earlier request\'s key: CLIENT_RESPONSE_INVALID', async () => {
    let earlier: string | undefined;
    let mode: 'record' | 'garbage' | 'replay' = 'record';
    const rewrite = intercept({
      answer: (url, text) => {
        if (!url.endsWith('/infer')) return text;
        if (mode === 'record') return (earlier = text);
        return mode === 'garbage' ? 'hello' : earlier!;
      },
    });
    const client = await connect(gateway.url, options({ fetch: rewrite }));
    expect((await client.infer('affine', X)).report.valid).toBe(true);
    for (const m of ['garbage', 'replay'] as const) {
      mode = m;
      await expect(client.infer('affine', X)).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: "the sealed answer does not decrypt to JSON with this request's response key" });
    }
  });

  it('fails the output step when the answer\'s outputs were rewritten: RECEIPT_MISMATCH', async () => {
    const tamper = intercept({
      answer: (url, text) => {
        if (!url.endsWith('/infer')) return text;
        const body = JSON.parse(text) as { outputs: { data: number[] }[] };
        body.outputs[0]!.data[0] = 4;
        return JSON.stringify(body);
      },
    });
    const client = await connect(gateway.url, options({ fetch: tamper }));
    const r = await client.infer('affine', X, { sealed: false });
    expect(r.outputs[0]!.data[0]).toBe(4);
    expect(r.report.valid).toBe(false);
    expect(r.report.error?.code).toBe('RECEIPT_MISMATCH');
    expect(r.report.steps.find((s) => s.step === 'output')).toMatchObject({ status: 'failed', code: 'RECEIPT_MISMATCH' });
    expect(r.report.steps.find((s) => s.step === 'input')?.status).toBe('passed');
  });

  it('fails the signature step for a receipt from an enclave the gateway does not list: RECEIPT_SIGNATURE_INVALID', async () => {
    // The outsider runs the same model on the same input: a real receipt with the right digests, but
    // signed by a key no attestation of this gateway vouches for.
    const swap = intercept({
      answer: async (url, text) => {
        if (!url.endsWith('/infer')) return text;
        const body = JSON.parse(text) as { parameters: { nonce?: string } };
        const res = await fetch(`${outsider.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: X, parameters: { nonce: 'aa' } }) });
        return JSON.stringify({ ...body, ...(JSON.parse(await res.text()) as object) });
      },
    });
    const client = await connect(gateway.url, options({ fetch: swap }));
    const r = await client.infer('affine', X, { sealed: false, nonce: 'aa' });
    expect(receiptIssuer(r.receipt)).toBe(outsider.manifest.boot_id);
    expect(r.report.valid).toBe(false);
    expect(r.report.steps.find((s) => s.step === 'signature')).toMatchObject({ status: 'failed', code: 'RECEIPT_SIGNATURE_INVALID' });
  });

  it('fails the nonce step when the nonce was changed on the way: RECEIPT_MISMATCH', async () => {
    const change = intercept({
      request: (url, init) => {
        if (!url.endsWith('/infer')) return [url, init];
        const body = JSON.parse(String(init.body)) as { parameters: { nonce: string } };
        body.parameters.nonce = 'ff'.repeat(32);
        return [url, { ...init, body: JSON.stringify(body) }];
      },
    });
    const client = await connect(gateway.url, options({ fetch: change }));
    const r = await client.infer('affine', X, { sealed: false });
    expect(r.report.valid).toBe(false);
    expect(r.report.steps.find((s) => s.step === 'nonce')).toMatchObject({ status: 'failed', code: 'RECEIPT_MISMATCH' });
    expect(r.report.steps.find((s) => s.step === 'output')?.status).toBe('passed');
  });

  it('keeps the attestation until it is older than maxAgeMs, then attests again with a new nonce', async () => {
    let attestations = 0;
    const count = intercept({ request: (url, init) => ((attestations += url.includes('/v1/attestation') ? 1 : 0), [url, init]) });
    const cached = await connect(gateway.url, options({ fetch: count, maxAgeMs: 60_000 }));
    await cached.infer('affine', X);
    await cached.infer('affine', X);
    expect(attestations).toBe(1);

    attestations = 0;
    const short = await connect(gateway.url, options({ fetch: count, maxAgeMs: 1 }));
    const firstNonce = short.attestation.nonce;
    await new Promise((r) => setTimeout(r, 5));
    expect((await short.infer('affine', X)).report.valid).toBe(true);
    expect(attestations).toBe(2);
    expect(short.attestation.nonce).not.toBe(firstNonce);
  });

  it('rejects bad caller input before sending anything', async () => {
    const client = await connect(gateway.url, options());
    await expect(client.infer('affine', [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2] }])).rejects.toMatchObject({ code: 'TENSOR_DATA_LENGTH_MISMATCH' });
    await expect(client.infer('affine', X, { nonce: 'xyz' })).rejects.toMatchObject({ code: 'NONCE_INVALID' });
    await expect(client.infer('', X)).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });

  it('passes the gateway\'s errors through with their codes', async () => {
    const client = await connect(gateway.url, options());
    await expect(client.infer('missing', X, { sealed: false })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(client.enclave('no-such-boot')).rejects.toMatchObject({ code: 'CLIENT_ENCLAVE_UNKNOWN' });
    const hidden = intercept({ answer: (url, text) => (url.endsWith('/v1/enclaves') ? '{"enclaves":[]}' : text) });
    await expect(connect(gateway.url, options({ fetch: hidden }))).rejects.toMatchObject({ code: 'CLIENT_ENCLAVE_UNKNOWN' });
    const anonymous = await connect(gateway.url, options({ apiKey: undefined }));
    await expect(anonymous.infer('affine', X)).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
  });
});

describe('an enclave that goes away', () => {
  it('re-attests the current enclave and retries once when the sealed-to enclave is gone (JWE_KEY_MISMATCH)', async () => {
    const pair = [await startTestEnclave(ca, models), await startTestEnclave(ca, models)];
    const k = testKeys();
    const gw = await startGateway(
      testGatewayConfig({ enclaves: pair.map((e) => e.url), attestation: { rootCertificates: [ca.rootPem], policy: policyFor(pair[0]!.pcrs) }, auth: { keys: k.config } }),
      { sink: new MemoryReceiptSink(), logger: captureLogger().logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
    );
    try {
      const client = await connect(gw.url, { ...options(), apiKey: k.keys.infer });
      const first = client.attestation.bootId;
      const gone = pair.find((e) => e.manifest.boot_id === first)!;
      await gone.close();
      for (let i = 0; i < 100; i++) {
        const list = (await (await fetch(`${gw.url}/v1/enclaves`)).json()) as { enclaves: { boot_id?: string; state: string }[] };
        if (list.enclaves.find((e) => e.boot_id === first)?.state !== 'ready') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = await client.infer('affine', X);
      expect(r.report.valid).toBe(true);
      expect(r.claims!.iss).not.toBe(first);
      expect(client.attestation.bootId).toBe(r.claims!.iss);
    } finally {
      await gw.close();
      for (const e of pair) await e.close().catch(() => undefined);
    }
  });
});
