/**
 * EnclaveService in process (enclave/enclave-service.ts), below the HTTP layer: what a booted
 * service serves, and what it refuses, when boot is given a failure; the request checks that
 * decide an answer before any receipt number is spent; what the answer's parameters say beside
 * the receipt; and which model a sealed request runs on.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { parseReceiptClaims, unverifiedClaims } from '../../attestation/receipt';
import { sealRequest } from '../../attestation/sealed-request';
import { EnclaveService, type InferResponse } from '../../enclave/enclave-service';
import { generateEnclaveKeys } from '../../enclave/keys';
import type { ModelConfig } from '../../enclave/models/model-config';
import { ModelRegistry } from '../../enclave/models/model-registry';
import { notAndEchoModel } from '../../enclave/models/testing/tiny-onnx';
import { DevNsm } from '../../enclave/nsm/dev-nsm';
import { refusalOf } from '../support/error-code';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

let ca: DevCa;
const services: EnclaveService[] = [];
/** Closed here too: a service booted with a failure does not hold (so does not close) its models. */
const registries: ModelRegistry[] = [];

beforeAll(async () => {
  ca = await createDevCa();
});

const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  await Promise.all(registries.map((r) => r.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** affine@1 and affine@2 (the same y = 2x + 1 file), and not-and-echo@1 (two outputs). */
function configs(): ModelConfig[] {
  const [affine] = tinyModelConfigs();
  const dir = mkdtempSync(join(tmpdir(), 'teegate-service-'));
  dirs.push(dir);
  const bytes = notAndEchoModel();
  const path = join(dir, 'not-and-echo.onnx');
  writeFileSync(path, bytes);
  return [affine!, { ...affine!, version: '2' }, { name: 'not-and-echo', version: '1', kind: 'onnx', path, sha256: createHash('sha256').update(bytes).digest('hex') }];
}

async function boot(options: { failure?: string } = {}): Promise<EnclaveService> {
  const nsm = await DevNsm.create({ ca });
  const models = await ModelRegistry.load(configs());
  registries.push(models);
  const service = await EnclaveService.boot({ nsm, models, ...options });
  services.push(service);
  return service;
}

const claimsOf = (receipt: string) => parseReceiptClaims(unverifiedClaims(receipt));

describe('boot with a failure', () => {
  it('serves no inference even when models were loaded, and its health says why: ENCLAVE_NOT_READY', async () => {
    const service = await boot({ failure: 'key release refused' });
    expect(service.ready).toBe(false);
    expect(service.health()).toMatchObject({ status: 'failed', reason: 'key release refused', receipts_issued: 0 });
    expect(await refusalOf(() => service.infer('affine', affineRequest()))).toEqual({ code: 'ENCLAVE_NOT_READY', message: 'enclave serves no models: key release refused' });
    expect(service.health().receipts_issued).toBe(0);
  });

  it('refuses a sealed request as not ready before opening it: ENCLAVE_NOT_READY, not a JWE error', async () => {
    const service = await boot({ failure: 'key release refused' });
    expect(await refusalOf(() => service.inferSealed('affine', 'not a JWE'))).toEqual({ code: 'ENCLAVE_NOT_READY', message: 'enclave serves no models: key release refused' });
  });
});

describe('a ready service', () => {
  let service: EnclaveService;
  beforeAll(async () => {
    service = await boot();
  });

  it('counts an inference in flight from its start until it is answered or refused', async () => {
    const running = service.infer('affine', affineRequest());
    expect(service.health().in_flight).toBe(1);
    await running;
    expect(service.health().in_flight).toBe(0);
    await expect(service.infer('affine', { inputs: 'none' })).rejects.toThrow();
    expect(service.health().in_flight).toBe(0);
  });

  it('echoes the request id, and its parameters name the receipt\'s own seq, salt and sealed flag', async () => {
    const { response, receipt } = await service.infer('affine', { ...affineRequest(), id: 'request-7' });
    const claims = claimsOf(receipt);
    expect(response.id).toBe('request-7');
    expect(response.parameters).toEqual({ receipt, salt: expect.stringMatching(/^[0-9a-f]{64}$/), seq: claims.seq, sealed: false });
    const next = await service.infer('affine', affineRequest());
    expect(next.response).not.toHaveProperty('id');
    expect(next.response.parameters.seq).toBe(claims.seq + 1);
    expect(claimsOf(next.receipt).seq).toBe(claims.seq + 1);
  });

  it.each([
    ['a request that is an array', [affineRequest()], 'REQUEST_INVALID', 'inference request must be a JSON object'],
    ['an id that is a number', { ...affineRequest(), id: 7 }, 'REQUEST_INVALID', 'id must be a string of at most 256 characters'],
    ['an id of 257 characters', { ...affineRequest(), id: 'i'.repeat(257) }, 'REQUEST_INVALID', 'id must be a string of at most 256 characters'],
    ['parameters that are an array', { ...affineRequest(), parameters: [{ nonce: 'ab' }] }, 'REQUEST_INVALID', 'parameters must be an object'],
    ['an empty model_version', { ...affineRequest(), model_version: '' }, 'REQUEST_INVALID', 'model_version must be a string of 1..64 characters'],
    ['a model_version of 65 characters', { ...affineRequest(), model_version: 'v'.repeat(65) }, 'REQUEST_INVALID', 'model_version must be a string of 1..64 characters'],
  ])('refuses %s before running anything, spending no receipt number', async (_what, request, code, message) => {
    const issued = service.health().receipts_issued;
    expect(await refusalOf(() => service.infer('affine', request))).toEqual({ code, message });
    expect(service.health().receipts_issued).toBe(issued);
  });

  it('takes an id of 256 characters', async () => {
    const { response } = await service.infer('affine', { ...affineRequest(), id: 'i'.repeat(256) });
    expect(response.id).toBe('i'.repeat(256));
  });

  it('runs the version the body names when the path names none, and refuses a body that contradicts the path', async () => {
    const { response } = await service.infer('affine', { ...affineRequest(), model_version: '1' });
    expect(response.model_version).toBe('1');
    expect((await service.infer('affine', affineRequest())).response.model_version).toBe('2');
    expect(await refusalOf(() => service.infer('affine', { ...affineRequest(), model_version: '2' }, { version: '1' }))).toEqual({ code: 'REQUEST_INVALID', message: 'model_version "2" differs from the version in the path, "1"' });
  });

  it('answers only the outputs a request names', async () => {
    const request = { inputs: [{ name: 'bits', datatype: 'BOOL', shape: [2, 2], data: [true, false, false, true] }, { name: 'text', datatype: 'BYTES', shape: [1], data: ['hi'] }], outputs: [{ name: 'echo' }] };
    const { response } = await service.infer('not-and-echo', request);
    expect(response.outputs).toEqual([{ name: 'echo', datatype: 'BYTES', shape: [1], data: ['hi'] }]);
  });

  it('signs no receipt when the caller is gone by the end of the run, plain or sealed: REQUEST_ABANDONED', async () => {
    const issued = service.health().receipts_issued;
    expect((await refusalOf(() => service.infer('affine', affineRequest(), { answerable: () => false }))).code).toBe('REQUEST_ABANDONED');
    const sealed = await sealRequest(service.manifest, affineRequest());
    expect((await refusalOf(() => service.inferSealed('affine', sealed.jwe, { answerable: () => false }))).code).toBe('REQUEST_ABANDONED');
    expect(service.health().receipts_issued).toBe(issued);
  });
});

describe('sealed requests', () => {
  let service: EnclaveService;
  beforeAll(async () => {
    service = await boot();
  });

  async function run(model: { name: string; version?: string } | undefined, path: { name: string; version?: string }) {
    const sealed = await sealRequest(service.manifest, affineRequest(), model ? { model } : {});
    const { jwe, receipt } = await service.inferSealed(path.name, sealed.jwe, path.version !== undefined ? { version: path.version } : {});
    return { response: (await sealed.open(jwe)) as InferResponse, claims: claimsOf(receipt) };
  }

  it('answers with parameters and a receipt that both say sealed', async () => {
    const { response, claims } = await run(undefined, { name: 'affine' });
    expect(claims.sealed).toBe(true);
    expect(response.parameters).toMatchObject({ seq: claims.seq, sealed: true });
  });

  it('runs the version the request was sealed for when the path names none', async () => {
    const { response, claims } = await run({ name: 'affine', version: '1' }, { name: 'affine' });
    expect(response.model_version).toBe('1');
    expect(claims.model.version).toBe('1');
  });

  it('runs a request sealed for a model without a version at the version the path names', async () => {
    expect((await run({ name: 'affine' }, { name: 'affine', version: '1' })).response.model_version).toBe('1');
  });

  it.each([
    ['another model', { name: 'not-and-echo' }, { name: 'affine' }, 'the sealed request is for model not-and-echo, the path names affine'],
    ['another version', { name: 'affine', version: '2' }, { name: 'affine', version: '1' }, 'the sealed request is for model affine@2, the path names affine@1'],
  ])('refuses a path naming %s than the request was sealed for: REQUEST_INVALID, no receipt', async (_what, model, path, message) => {
    const issued = service.health().receipts_issued;
    expect(await refusalOf(() => run(model, path))).toEqual({ code: 'REQUEST_INVALID', message });
    expect(service.health().receipts_issued).toBe(issued);
  });
});

describe('the enclave\'s keys (enclave/keys.ts)', () => {
  it('keeps both private keys non-extractable: WebCrypto refuses to export them', async () => {
    const keys = await generateEnclaveKeys();
    for (const key of [keys.receipt.privateKey, keys.seal.privateKey]) {
      expect(key.extractable).toBe(false);
      const outcome = await globalThis.crypto.subtle.exportKey('pkcs8', key).then(
        () => 'exported',
        // A DOMException, from another realm than the test's Error.
        (err: unknown) => (typeof err === 'object' && err !== null && 'name' in err ? String(err.name) : 'no name'),
      );
      expect(outcome).toBe('InvalidAccessException');
    }
  });
});
