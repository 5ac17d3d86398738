/**
 * The gateway end to end on loopback, in front of two real enclaves (dev NSM, one dev CA):
 * Open Inference Protocol metadata and the specification's own request/response example, plain
 * and sealed inference with receipts verified and logged, attestation, enclaves and JWKS, every
 * auth and limit error, security headers, CORS, metrics and logs.
 */
import { parseServerTiming } from '../../attestation/headers';
import { fromBase64, randomBytes, toHex } from '../../attestation/bytes';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import { verifyAttestation, type VerifiedAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt } from '../../attestation/receipt';
import { sealRequest } from '../../attestation/sealed-request';
import type { InferTensor } from '../../attestation/tensors';
import type { RunningEnclave } from '../../enclave/main';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { postStreamed } from '../support/loopback';
import { rawExchange, rawRequest } from '../support/raw-http';
import { affineRequest } from '../support/tiny-models';
import { SPEC_OUTPUT0, captureLogger, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs, type TestKeys } from '../support/gateway-harness';

jest.setTimeout(60_000);

let ca: DevCa;
let enclaves: RunningEnclave[];
let gateway: RunningGateway;
let sink: MemoryReceiptSink;
let keys: TestKeys;
let logs: () => string[];

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: () => Record<string, unknown>;
}

async function call(path: string, init: { method?: string; body?: string; type?: string; key?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.type) headers['content-type'] = init.type;
  const key = init.key === undefined ? keys.infer : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${gateway.url}${path}`, { method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'), headers, ...(init.body !== undefined ? { body: init.body } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

async function verifiedEnclaves(): Promise<Map<string, { attestation: VerifiedAttestation; manifest: EnclaveManifest }>> {
  const list = (await call('/v1/enclaves')).json().enclaves as { id: string; document: string; manifest: unknown }[];
  const out = new Map<string, { attestation: VerifiedAttestation; manifest: EnclaveManifest }>();
  for (const e of list) {
    const attestation = await verifyAttestation(fromBase64(e.document), { rootCertificates: [ca.rootPem], at: Date.now() });
    out.set(e.id, { attestation, manifest: await verifyManifestBinding(attestation, e.manifest) });
  }
  return out;
}

beforeAll(async () => {
  ca = await createDevCa();
  const models = testModelConfigs();
  enclaves = [await startTestEnclave(ca, models), await startTestEnclave(ca, models)];
  const k = testKeys();
  keys = k.keys;
  const capture = captureLogger();
  logs = capture.lines;
  sink = new MemoryReceiptSink();
  gateway = await startGateway(
    testGatewayConfig({
      enclaves: enclaves.map((e) => e.url),
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclaves[0]!.pcrs) },
      auth: { keys: k.config },
      limits: { bodyBytes: 4096 },
      cors: { origins: ['https://app.example.com'] },
    }),
    { sink, logger: capture.logger, metrics: new GatewayMetrics({ defaultMetrics: false }) },
  );
});

afterAll(async () => {
  await gateway?.close();
  for (const e of enclaves ?? []) await e.close();
});

describe('Open Inference Protocol metadata and health', () => {
  it('serves server metadata, liveness and readiness', async () => {
    expect((await call('/v2', { key: null })).json()).toEqual({ name: 'teegate', version: '0.1.0', extensions: ['teegate-receipts', 'teegate-sealed', 'teegate-transparency-log'] });
    expect((await call('/v2/health/live', { key: null })).json()).toEqual({ live: true });
    expect((await call('/v2/health/ready', { key: null })).json()).toEqual({ ready: true });
  });

  it('lists the models of the attested enclaves and relays model metadata', async () => {
    expect((await call('/v2/models', { key: null })).json()).toEqual({ models: [{ name: 'affine', versions: ['1'] }, { name: 'mymodel', versions: ['1'] }] });
    const meta = await call('/v2/models/mymodel', { key: null });
    expect(meta.json()).toEqual({
      name: 'mymodel',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [
        { name: 'input0', datatype: 'UINT32', shape: [2, 2] },
        { name: 'input1', datatype: 'BOOL', shape: [3] },
      ],
      outputs: [{ name: 'output0', datatype: 'FP32', shape: [3, 2] }],
    });
    expect(meta.headers.get('teegate-enclave')).toMatch(/^enclave-[01]$/);
    expect((await call('/v2/models/mymodel/versions/1', { key: null })).json()).toMatchObject({ name: 'mymodel' });
    expect((await call('/v2/models/mymodel/ready', { key: null })).json()).toEqual({ name: 'mymodel', ready: true });
    expect((await call('/v2/models/mymodel/versions/1/ready', { key: null })).json()).toEqual({ name: 'mymodel', ready: true });
  });

  it('answers MODEL_NOT_FOUND for a model or version no enclave serves', async () => {
    for (const path of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/mymodel/versions/9/ready', '/v2/models/mymodel/versions/9']) {
      const res = await call(path, { key: null });
      expect([res.status, res.json().code]).toEqual([404, 'MODEL_NOT_FOUND']);
    }
    const res = await call('/v2/models/nope/infer', { body: JSON.stringify(affineRequest()), type: 'application/json' });
    expect([res.status, res.json().code]).toEqual([404, 'MODEL_NOT_FOUND']);
  });
});

describe('the specification examples (kserve/open-inference-protocol, inference_rest.md)', () => {
  // The request exactly as the specification gives it.
  const specRequest = `{
  "id" : "42",
  "inputs" : [
    {
      "name" : "input0",
      "shape" : [ 2, 2 ],
      "datatype" : "UINT32",
      "data" : [ 1, 2, 3, 4 ]
    },
    {
      "name" : "input1",
      "shape" : [ 3 ],
      "datatype" : "BOOL",
      "data" : [ true ]
    }
  ],
  "outputs" : [
    {
      "name" : "output0"
    }
  ]
}`;

  it('relays the request as given; the enclave refuses its input1 (shape [3], one element) with the exact code', async () => {
    const res = await call('/v2/models/mymodel/infer', { body: specRequest, type: 'application/json' });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'TENSOR_DATA_LENGTH_MISMATCH' });
  });

  it('answers the example response for the request with input1 given all 3 elements', async () => {
    const res = await call('/v2/models/mymodel/infer', { body: specRequest.replace('"data" : [ true ]', '"data" : [ true, false, true ]'), type: 'application/json' });
    expect(res.status).toBe(200);
    const body = res.json() as { id: string; model_name: string; outputs: InferTensor[]; parameters: { receipt: string; salt: string; log_index: number } };
    expect(body.id).toBe('42');
    expect(body.model_name).toBe('mymodel');
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'output0', shape: [3, 2], datatype: 'FP32' });
    expect(body.outputs[0]!.data).toEqual(SPEC_OUTPUT0.map((v) => Math.fround(v)));
    expect(body.parameters.log_index).toBe(Number(res.headers.get('teegate-log-index')));
  });
});

describe('plain inference', () => {
  it('relays, verifies nothing it should not, logs the receipt and returns its index', async () => {
    const request = { id: 'req-plain-1', ...affineRequest([1, 2, 3, 4]), parameters: { nonce: 'feedface'.repeat(4) } };
    const res = await call('/v2/models/affine/infer', { body: JSON.stringify(request), type: 'application/json' });
    expect(res.status).toBe(200);
    const body = res.json() as { outputs: InferTensor[]; parameters: { receipt: string; salt: string; log_index: number } };
    expect(body.outputs[0]!.data).toEqual([3, 5, 7, 9]);
    const index = Number(res.headers.get('teegate-log-index'));
    expect(body.parameters.log_index).toBe(index);
    expect(res.headers.get('teegate-receipt')).toBe(body.parameters.receipt);
    expect(sink.entries[index]).toEqual({ type: 'receipt', index, jws: body.parameters.receipt });
    const enclave = (await verifiedEnclaves()).get(res.headers.get('teegate-enclave')!)!;
    const claims = await verifyReceipt({ receipt: body.parameters.receipt, ...enclave, inputs: request.inputs as InferTensor[], outputs: body.outputs, salt: body.parameters.salt, nonce: request.parameters.nonce, sealed: false });
    expect(claims).toMatchObject({ nonce: request.parameters.nonce, sealed: false, model: { name: 'affine', version: '1' } });
    expect((body as unknown as { id: string }).id).toBe('req-plain-1');
    // The enclave's attestation was logged before its first receipt.
    const attIndex = sink.entries.findIndex((e) => e.type === 'attestation' && (e.manifest as EnclaveManifest).boot_id === claims.iss);
    expect(attIndex).toBeGreaterThanOrEqual(0);
    expect(attIndex).toBeLessThan(index);
  });

  it('says where the time went (Server-Timing): the enclave\'s own inference within the relay, the log append, the total', async () => {
    const res = await call('/v2/models/affine/infer', { body: JSON.stringify(affineRequest()), type: 'application/json' });
    expect(res.status).toBe(200);
    const t = parseServerTiming(res.headers.get('server-timing') ?? undefined);
    expect(Object.keys(t).sort()).toEqual(['enclave', 'infer', 'log', 'total']);
    expect(t.infer).toBeGreaterThan(0);
    expect(t.enclave).toBeGreaterThanOrEqual(t.infer!);
    expect(t.log).toBeGreaterThan(0);
    expect(t.total).toBeGreaterThanOrEqual(t.enclave! + t.log!);
  });

  it('spreads requests over both enclaves', async () => {
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await call('/v2/models/affine/infer', { body: JSON.stringify(affineRequest()), type: 'application/json' });
      served.add(res.headers.get('teegate-enclave')!);
    }
    expect([...served].sort()).toEqual(['enclave-0', 'enclave-1']);
  });

  it('relays enclave errors unchanged (the gateway does not parse plain bodies either)', async () => {
    const res = await call('/v2/models/affine/infer', { body: '{not json', type: 'application/json' });
    expect([res.status, res.json().code]).toEqual([400, 'REQUEST_INVALID']);
  });
});

describe('sealed inference', () => {
  async function manifestOf(id: string): Promise<EnclaveManifest> {
    return (await verifiedEnclaves()).get(id)!.manifest;
  }

  it('relays a JWE to the enclave holding the seal key; the receipt verifies and is logged', async () => {
    const manifest = await manifestOf('enclave-1');
    const request = affineRequest([0, 1, 2, 3]);
    const sealed = await sealRequest(manifest, request);
    const res = await call('/v2/models/affine/infer', { body: sealed.jwe, type: 'application/jose', headers: { 'teegate-seal-kid': manifest.keys.seal.kid } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jose');
    expect(res.headers.get('teegate-enclave')).toBe('enclave-1');
    const response = (await sealed.open(res.text)) as { outputs: InferTensor[]; parameters: { receipt: string; salt: string } };
    expect(response.outputs[0]!.data).toEqual([1, 3, 5, 7]);
    const index = Number(res.headers.get('teegate-log-index'));
    expect(sink.entries[index]).toMatchObject({ type: 'receipt', jws: response.parameters.receipt });
    const enclave = (await verifiedEnclaves()).get('enclave-1')!;
    await expect(verifyReceipt({ receipt: response.parameters.receipt, ...enclave, inputs: request.inputs, outputs: response.outputs, salt: response.parameters.salt, sealed: true })).resolves.toMatchObject({ sealed: true });
  });

  it('finds the right enclave without the seal-kid header (a key mismatch did not run, so it moves on)', async () => {
    for (const id of ['enclave-0', 'enclave-1']) {
      const manifest = await manifestOf(id);
      for (let i = 0; i < 2; i++) {
        const sealed = await sealRequest(manifest, affineRequest());
        const res = await call('/v2/models/affine/infer', { body: sealed.jwe, type: 'application/jose' });
        expect([res.status, res.headers.get('teegate-enclave')]).toEqual([200, id]);
      }
    }
  });

  it('answers JWE_KEY_MISMATCH for a seal kid no enclave holds', async () => {
    const sealed = await sealRequest(await manifestOf('enclave-0'), affineRequest());
    const res = await call('/v2/models/affine/infer', { body: sealed.jwe, type: 'application/jose', headers: { 'teegate-seal-kid': 'not-a-kid' } });
    expect([res.status, res.json().code]).toEqual([400, 'JWE_KEY_MISMATCH']);
  });

  it('answers MODEL_NOT_FOUND, not JWE_KEY_MISMATCH, for a seal kid sent to a model no enclave serves', async () => {
    const manifest = await manifestOf('enclave-0');
    const sealed = await sealRequest(manifest, affineRequest());
    for (const kid of [manifest.keys.seal.kid, 'not-a-kid']) {
      const res = await call('/v2/models/nosuchmodel/infer', { body: sealed.jwe, type: 'application/jose', headers: { 'teegate-seal-kid': kid } });
      expect([res.status, res.json().code]).toEqual([404, 'MODEL_NOT_FOUND']);
    }
  });
});

describe('attestation, enclaves and keys', () => {
  it('relays a fresh attestation for a 64-hex nonce, bound to the manifest', async () => {
    const nonce = randomBytes(32);
    const res = await call(`/v1/attestation?nonce=${toHex(nonce).toUpperCase()}`, { key: null });
    expect(res.status).toBe(200);
    const body = res.json() as { document: string; manifest: unknown };
    const fresh = await verifyAttestation(fromBase64(body.document), { rootCertificates: [ca.rootPem], nonce, policy: policyFor(enclaves[0]!.pcrs) });
    const manifest = await verifyManifestBinding(fresh, body.manifest);
    const id = res.headers.get('teegate-enclave')!;
    expect((await verifiedEnclaves()).get(id)!.manifest).toEqual(manifest);
    const pinned = await call(`/v1/attestation?nonce=${toHex(randomBytes(32))}&enclave=enclave-1`, { key: null });
    expect(pinned.headers.get('teegate-enclave')).toBe('enclave-1');
  });

  it('refuses any other nonce with NONCE_INVALID', async () => {
    for (const query of ['', '?nonce=', `?nonce=${'a'.repeat(63)}`, `?nonce=${'a'.repeat(65)}`, `?nonce=${'g'.repeat(64)}`, `?nonce=${'a'.repeat(64)}&nonce=${'b'.repeat(64)}`, `?nonce=${'a'.repeat(62)}%20%20`]) {
      const res = await call(`/v1/attestation${query}`, { key: null });
      expect([query, res.status, res.json().code]).toEqual([query, 400, 'NONCE_INVALID']);
    }
    expect((await call(`/v1/attestation?nonce=${'a'.repeat(64)}&enclave=enclave-9`, { key: null })).json().code).toBe('REQUEST_INVALID');
  });

  it('lists both enclaves with verifiable boot documents, logged before use', async () => {
    const list = (await call('/v1/enclaves', { key: null })).json().enclaves as { id: string; state: string; log_index: number; boot_id: string }[];
    expect(list.map((e) => [e.id, e.state])).toEqual([
      ['enclave-0', 'ready'],
      ['enclave-1', 'ready'],
    ]);
    const verified = await verifiedEnclaves();
    for (const e of list) {
      expect(verified.get(e.id)!.manifest.boot_id).toBe(e.boot_id);
      expect(sink.entries[e.log_index]).toMatchObject({ type: 'attestation' });
      expect(toHex(await (async () => (sink.entries[e.log_index] as { document: Uint8Array }).document)())).toBe(toHex(enclaves[e.id === 'enclave-0' ? 0 : 1]!.bootDocument));
    }
  });

  it('publishes the receipt keys of the live enclaves as a JWK Set', async () => {
    const jwks = (await call('/.well-known/jwks.json', { key: null })).json() as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(enclaves.map((e) => e.manifest.keys.receipt.kid).sort());
  });
});

describe('auth and limits', () => {
  const body = JSON.stringify(affineRequest());

  it('401 AUTH_REQUIRED without a key, 401 AUTH_INVALID for an unknown one', async () => {
    const none = await call('/v2/models/affine/infer', { body, type: 'application/json', key: null });
    expect([none.status, none.json()]).toEqual([401, { code: 'AUTH_REQUIRED', message: expect.any(String) }]);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="teegate"');
    const wrong = await call('/v2/models/affine/infer', { body, type: 'application/json', key: `${keys.infer}x` });
    expect([wrong.status, wrong.json().code]).toEqual([401, 'AUTH_INVALID']);
  });

  it('names no metrics series after a model no enclave serves (the path is the client\'s)', async () => {
    for (const path of ['/v2/models/made-up-1/ready', '/v2/models/made-up-2', '/v2/models/made-up-3/infer']) {
      const res = await call(path, path.endsWith('infer') ? { body: '{"inputs":[]}', type: 'application/json' } : {});
      expect(res.json().code).toBe('MODEL_NOT_FOUND');
    }
    const metrics = await call('/metrics', { key: keys.admin });
    expect(metrics.text).toMatch(/route="\/v2\/models\/:model\/ready",method="GET",model="",status="404"/);
    expect(metrics.text).not.toContain('made-up');
  });

  it('403 AUTH_FORBIDDEN for a key without the scope; the admin key reads metrics', async () => {
    const res = await call('/metrics');
    expect([res.status, res.json().code]).toEqual([403, 'AUTH_FORBIDDEN']);
    expect((await call('/metrics', { key: null })).json().code).toBe('AUTH_REQUIRED');
    const metrics = await call('/metrics', { key: keys.admin });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/teegate_gateway_request_duration_seconds_bucket\{le="[^"]+",route="\/v2\/models\/:model\/infer",method="POST",model="affine",status="200"\} [1-9]/);
    expect(metrics.text).toMatch(/teegate_gateway_inferences_total\{model="affine",mode="sealed",outcome="ok"\} [1-9]/);
    expect(metrics.text).toMatch(/teegate_gateway_inferences_total\{model="affine",mode="plain",outcome="ok"\} [1-9]/);
    expect(metrics.text).toContain('teegate_gateway_enclave_healthy{enclave="enclave-0"} 1');
    expect(metrics.text).toContain('teegate_gateway_enclaves{state="ready"} 2');
    expect(metrics.text).toContain('teegate_gateway_enclave_verification_failures_total');
    expect(metrics.text).toMatch(/teegate_gateway_log_append_duration_seconds_count [1-9]/);
  });

  it('429 RATE_LIMITED with Retry-After once a key spent its burst', async () => {
    for (let i = 0; i < 2; i++) expect((await call('/v2/models/affine/infer', { body, type: 'application/json', key: keys.limited })).status).toBe(200);
    const res = await call('/v2/models/affine/infer', { body, type: 'application/json', key: keys.limited });
    expect([res.status, res.json().code]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Other keys are not affected.
    expect((await call('/v2/models/affine/infer', { body, type: 'application/json' })).status).toBe(200);
  });

  it('413 BODY_TOO_LARGE over the body limit, declared or streamed', async () => {
    const big = JSON.stringify(affineRequest()).padEnd(5000, ' ');
    const res = await call('/v2/models/affine/infer', { body: big, type: 'application/json' });
    expect([res.status, res.json().code]).toEqual([413, 'BODY_TOO_LARGE']);
    const streamed = await postStreamed(`${gateway.url}/v2/models/affine/infer`, 5, { authorization: `Bearer ${keys.infer}` });
    expect([streamed.status, ((await streamed.json()) as { code: string }).code]).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('a body of exactly limits.bodyBytes (4096 here) is taken, declared or streamed; one byte more is 413 BODY_TOO_LARGE', async () => {
    const streamed = (text: string) =>
      fetch(`${gateway.url}/v2/models/affine/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.infer}` },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(text));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const exact = JSON.stringify(affineRequest()).padEnd(4096, ' ');
    expect((await call('/v2/models/affine/infer', { body: exact, type: 'application/json' })).status).toBe(200);
    expect((await streamed(exact)).status).toBe(200);
    const over = `${exact} `;
    const declared = await call('/v2/models/affine/infer', { body: over, type: 'application/json' });
    expect([declared.status, declared.json().code]).toEqual([413, 'BODY_TOO_LARGE']);
    const res = await streamed(over);
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('415 MEDIA_TYPE_UNSUPPORTED for other media types and content codings, 404 ROUTE_NOT_FOUND', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const res = await call('/v2/models/affine/infer', { body, type });
      expect([res.status, res.json().code]).toEqual([415, 'MEDIA_TYPE_UNSUPPORTED']);
    }
    const gz = await call('/v2/models/affine/infer', { body, type: 'application/json', headers: { 'content-encoding': 'gzip' } });
    expect([gz.status, gz.json().code]).toEqual([415, 'MEDIA_TYPE_UNSUPPORTED']);
    const missing = await call('/v3/nothing', { key: null });
    expect([missing.status, missing.json()]).toEqual([404, { code: 'ROUTE_NOT_FOUND', message: 'no route GET /v3/nothing' }]);
  });

  it('reads the media type by its essence in any case, and the identity coding in any case; a type that only begins like JSON is 415', async () => {
    for (const type of ['Application/JSON', 'application/json; charset=utf-8', 'APPLICATION/json ;x=1']) {
      expect([type, (await call('/v2/models/affine/infer', { body, type })).status]).toEqual([type, 200]);
    }
    const identity = await call('/v2/models/affine/infer', { body, type: 'application/json', headers: { 'content-encoding': 'Identity' } });
    expect(identity.status).toBe(200);
    for (const type of ['application/jsonp', 'application/json-seq', 'application/jose+json']) {
      const res = await call('/v2/models/affine/infer', { body, type });
      // Refused by the gateway itself: nothing reached an enclave.
      expect([type, res.status, res.json().code, res.headers.get('teegate-enclave')]).toEqual([type, 415, 'MEDIA_TYPE_UNSUPPORTED', null]);
    }
  });

  it('400 REQUEST_INVALID for a path parameter with a bad percent-escape (not 500, not "retry")', async () => {
    for (const path of ['/v2/models/%zz', '/v2/models/a%E0%A4%A/infer', '/v2/models/affine/versions/%C0%80/ready']) {
      const res = await call(path, path.endsWith('infer') ? { body, type: 'application/json' } : {});
      expect([path, res.status, res.json(), res.headers.get('retry-after')]).toEqual([path, 400, { code: 'REQUEST_INVALID', message: 'the request path holds an invalid percent-escape' }, null]);
    }
    expect(logs().some((l) => l.includes('unhandled'))).toBe(false);
  });

  it('inference, served in front of express (gateway/front.ts), is routed as express routes the rest', async () => {
    // Case-insensitive, an optional trailing slash, a query string, percent-decoded parameters.
    for (const path of ['/V2/Models/affine/INFER', '/v2/models/affine/infer/', '/v2/models/affine/infer?x=1', '/v2/models/aff%69ne/versions/1/infer']) {
      const res = await call(path, { body, type: 'application/json' });
      expect([path, res.status, typeof res.headers.get('teegate-log-index')]).toEqual([path, 200, 'string']);
    }
    // An absolute-form request target (RFC 9112 3.2.2: a server must accept it).
    const absolute = JSON.stringify(affineRequest());
    const answer = await rawExchange(gateway.url, [rawRequest('POST', `${gateway.url}/v2/models/affine/infer`, [`Authorization: Bearer ${keys.infer}`], absolute)]);
    expect([answer.status, answer.headers]).toEqual([200, expect.stringContaining('teegate-log-index: ')]);
    // Not inference: other methods, and paths that only look like it, reach express.
    const get = await call('/v2/models/affine/infer', { key: null });
    expect([get.status, get.json()]).toEqual([404, { code: 'ROUTE_NOT_FOUND', message: 'no route GET /v2/models/affine/infer' }]);
    const deeper = await call('/v2/models/affine/infer/more', { body, type: 'application/json' });
    expect([deeper.status, deeper.json().code]).toEqual([404, 'ROUTE_NOT_FOUND']);
    // The same admission as every route: request id (the client's, when it is a plain token),
    // security headers, CORS; on the front's own error answers too.
    for (const key of [keys.infer, null]) {
      const res = await call('/v2/models/affine/infer', { body, type: 'application/json', key, headers: { 'x-request-id': 'req-42', origin: 'https://app.example.com' } });
      expect([res.status, res.headers.get('x-request-id'), res.headers.get('x-content-type-options'), res.headers.get('cache-control'), res.headers.get('access-control-allow-origin')]).toEqual([
        key === null ? 401 : 200,
        'req-42',
        'nosniff',
        'no-store',
        'https://app.example.com',
      ]);
    }
  });

  it('sets security headers and answers CORS for the configured origin only', async () => {
    const res = await call('/v2', { key: null, headers: { origin: 'https://app.example.com' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-expose-headers')).toContain('teegate-log-index');
    expect(res.headers.get('access-control-expose-headers')).toContain('server-timing');
    expect(res.headers.get('timing-allow-origin')).toBe('https://app.example.com');
    const pre = await call('/v2/models/affine/infer', { method: 'OPTIONS', key: null, headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('Authorization');
    // The SDK's sealed requests carry teegate-seal-kid: a browser page must be allowed to send it.
    expect(pre.headers.get('access-control-allow-headers')!.toLowerCase().split(', ')).toEqual(expect.arrayContaining(['authorization', 'content-type', 'teegate-seal-kid']));
    const other = await call('/v2', { key: null, headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('timing-allow-origin')).toBeNull();
    // Answers without the CORS headers vary by Origin too, so no shared cache gives them to the allowed origin.
    expect([res.headers.get('vary'), other.headers.get('vary'), (await call('/v2', { key: null })).headers.get('vary')]).toEqual(['Origin', 'Origin', 'Origin']);
  });

  it('lets an allowed page read every teegate header of an answer, and tells a disallowed page\'s preflight nothing', async () => {
    const res = await call('/v2', { key: null, headers: { origin: 'https://app.example.com' } });
    expect(res.headers.get('access-control-expose-headers')!.split(', ').sort()).toEqual(['retry-after', 'server-timing', 'teegate-enclave', 'teegate-log-index', 'teegate-receipt', 'x-request-id']);
    const pre = await call('/v2/models/affine/infer', { method: 'OPTIONS', key: null, headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    for (const name of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age']) expect([name, pre.headers.get(name)]).toEqual([name, null]);
  });
});

describe('logs', () => {
  it('are JSON lines with route, status and key id, never bodies or keys', async () => {
    const lines = logs();
    expect(lines.length).toBeGreaterThan(20);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'request', route: '/v2/models/:model/infer', status: 200, keyId: 'app', model: 'affine', mode: 'plain' }));
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'enclave attested and ready', enclave: 'enclave-0' }));
    const all = lines.join('\n');
    for (const secret of [keys.infer, keys.admin, keys.limited, 'feedface', 'Bearer', '"inputs"', 'eyJ']) expect(all).not.toContain(secret);
  });
});
