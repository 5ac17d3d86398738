/**
 * Issue 3 acceptance: an enclave (dev NSM) on loopback with the shipped real model (PP-OCRv4 text
 * recognition) and a tiny generated model; plain and sealed inference; every receipt verified with
 * the attestation/ functions against the boot document, the manifest, and the test's own request,
 * response and salt.
 */
import { CompactEncrypt, exportJWK, generateKeyPair, importJWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { fromBase64, randomBytes, toHex, utf8 } from '../../attestation/bytes';
import { verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import { verifyAttestation, type VerifiedAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt, verifyReceiptReport } from '../../attestation/receipt';
import { sealRequest } from '../../attestation/sealed-request';
import type { InferTensor } from '../../attestation/tensors';
import { defaultModelConfigs } from '../../enclave/models/model-config';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { listenEnclaveHttp } from '../../enclave/http-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEMO_MODEL, DEMO_TEXT, demoRequest } from '../support/demo';
import { postStreamed } from '../support/loopback';
import { rawExchange } from '../support/raw-http';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(120_000);

let enclave: RunningEnclave;
let attestation: VerifiedAttestation;
let manifest: EnclaveManifest;

async function post(path: string, body: string, type = 'application/json') {
  const res = await fetch(`${enclave.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

beforeAll(async () => {
  enclave = await startEnclave({ models: [...defaultModelConfigs(), ...tinyModelConfigs()] });
  const res = await fetch(`${enclave.url}/attestation`);
  const body = (await res.json()) as { document: string; manifest: unknown };
  attestation = await verifyAttestation(fromBase64(body.document), { rootCertificates: [enclave.devRootPem!] });
  manifest = await verifyManifestBinding(attestation, body.manifest);
});

afterAll(async () => {
  await enclave?.close();
});

describe('what Node\'s HTTP server would answer without a body is JSON from the registry', () => {
  it.each([
    ['headers over the limit', `GET /health HTTP/1.1\r\nHost: e\r\n${Array.from({ length: 3000 }, (_, i) => `x-h${i}: v\r\n`).join('')}\r\n`, 431, 'REQUEST_HEADERS_TOO_LARGE'],
    ['a header name with a space', 'GET /health HTTP/1.1\r\nHost: e\r\nbad name: v\r\n\r\n', 400, 'REQUEST_INVALID'],
    ['Content-Length with Transfer-Encoding', 'POST /v2/models/affine/infer HTTP/1.1\r\nHost: e\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'REQUEST_INVALID'],
  ])('%s', async (_what, request, status, code) => {
    const answer = await rawExchange(enclave.url, [request]);
    expect([answer.status, (JSON.parse(answer.body) as { code: string }).code]).toEqual([status, code]);
    expect(answer.headers).toContain('content-type: application/json');
    expect(answer.headers).toContain('connection: close');
  });

  it('also on a kept-alive connection after an answer: the malformed request after it gets its JSON 400', async () => {
    const answer = await rawExchange(enclave.url, ['GET /health HTTP/1.1\r\nHost: e\r\n\r\n', 'GET /health HTTP/1.1\r\nHost: e\r\nbad name: v\r\n\r\n'], 50);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(/HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\n\r\n\{"code":"REQUEST_INVALID","message":"the request is not valid HTTP\/1\.1 \(HPE_INVALID_HEADER_TOKEN\)"\}$/);
  });
});

describe('boot attestation', () => {
  it('binds the manifest (user_data) and the receipt key (public_key); PCRs are the measured ones', async () => {
    expect(manifest.models.map((m) => m.name)).toEqual([DEMO_MODEL, 'affine']);
    expect(toHex(attestation.pcrs.get(0)!)).toBe(enclave.pcrs[0]);
    expect(attestation.debug).toBe(false);
  });

  it('is untrusted under the default AWS root', async () => {
    await expect(verifyAttestation(enclave.bootDocument)).rejects.toMatchObject({ code: 'CHAIN_UNTRUSTED_ROOT' });
  });

  it('gives a fresh document for a nonce, with the same binding', async () => {
    const nonce = randomBytes(32);
    const res = await fetch(`${enclave.url}/attestation?nonce=${toHex(nonce)}`);
    const body = (await res.json()) as { document: string; manifest: unknown };
    const fresh = await verifyAttestation(fromBase64(body.document), { rootCertificates: [enclave.devRootPem!], nonce });
    await expect(verifyManifestBinding(fresh, body.manifest)).resolves.toEqual(manifest);
    expect(fresh.documentSha384).not.toBe(attestation.documentSha384);
  });

  it('answers a request target that is not a path with 400 REQUEST_INVALID, not 500', async () => {
    const { hostname, port } = new URL(enclave.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(Number(port), hostname, () => socket.end('GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => (text += d)).on('end', () => resolve(text)).on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('{"code":"REQUEST_INVALID","message":"the request target is not a valid path"}');
  });

  it('rejects a nonce that is not 64 hex characters', async () => {
    for (const nonce of ['ab', 'zz'.repeat(32), 'a'.repeat(66)]) {
      const res = await fetch(`${enclave.url}/attestation?nonce=${nonce}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'NONCE_INVALID' });
    }
  });
});

describe('plain inference with the real model', () => {
  it('reads the demo line and returns a receipt that verifies against the request, response and salt', async () => {
    const request = { ...demoRequest(), parameters: { nonce: 'c0ffee' } };
    const res = await post(`/v2/models/${DEMO_MODEL}/infer`, JSON.stringify(request));
    expect(res.status).toBe(200);
    const response = JSON.parse(res.text) as { outputs: InferTensor[]; parameters: { receipt: string; salt: string } };
    expect(response.outputs.find((o) => o.name === 'text')!.data).toEqual([DEMO_TEXT]);
    expect(res.headers.get('teegate-receipt')).toBe(response.parameters.receipt);

    const claims = await verifyReceipt({
      receipt: response.parameters.receipt,
      attestation,
      manifest,
      inputs: request.inputs,
      outputs: response.outputs,
      salt: response.parameters.salt,
      nonce: 'c0ffee',
      sealed: false,
    });
    expect(claims.model).toEqual(manifest.models[0]);
    expect(claims.att).toBe(attestation.documentSha384);
  });

  it('fails verification when one byte of the output was changed', async () => {
    const request = demoRequest();
    const response = JSON.parse((await post(`/v2/models/${DEMO_MODEL}/infer`, JSON.stringify(request))).text) as {
      outputs: InferTensor[];
      parameters: { receipt: string; salt: string };
    };
    const text = response.outputs.find((o) => o.name === 'text')!;
    const changed = (text.data[0] as string).replace('verified', 'verifieD');
    const outputs = response.outputs.map((o) => (o.name === 'text' ? { ...o, data: [changed] } : o));
    const report = await verifyReceiptReport({ receipt: response.parameters.receipt, attestation, manifest, inputs: request.inputs, outputs, salt: response.parameters.salt });
    expect(report.valid).toBe(false);
    expect(report.error?.code).toBe('RECEIPT_MISMATCH');
    expect(report.steps.find((s) => s.step === 'output')?.status).toBe('failed');
    expect(report.steps.find((s) => s.step === 'input')?.status).toBe('passed');
  });

  it('answers bad tensors with typed errors before the model runs', async () => {
    const cases: [unknown, string][] = [
      [{ inputs: [{ name: 'nope', datatype: 'BYTES', shape: [1], data: ['x'] }] }, 'TENSOR_NAME_UNKNOWN'],
      [{ inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'TENSOR_DATATYPE_MISMATCH'],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] }, 'TENSOR_SHAPE_MISMATCH'],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] }] }, 'TENSOR_DATA_LENGTH_MISMATCH'],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4194305], data: [] }] }, 'TENSOR_TOO_LARGE'],
    ];
    for (const [body, code] of cases) {
      const res = await post('/v2/models/affine/infer', JSON.stringify(body));
      expect({ code: (JSON.parse(res.text) as { code: string }).code, status: res.status >= 400 }).toEqual({ code, status: true });
    }
    expect((await post('/v2/models/affine/infer', '{not json')).status).toBe(400);
    // Invalid UTF-8 is refused, not replaced with U+FFFD under a receipt.
    const latin1 = await fetch(`${enclave.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat([Buffer.from('{"id":"a'), Buffer.of(0xff, 0xc0, 0xaf), Buffer.from(`b",${JSON.stringify(affineRequest()).slice(1)}`)]) });
    expect({ status: latin1.status, body: await latin1.json() }).toEqual({ status: 400, body: { code: 'REQUEST_INVALID', message: 'request body is not valid UTF-8 JSON' } });
    expect((await post('/v2/models/affine/infer', '{}', 'text/plain')).status).toBe(415);
    expect(JSON.parse((await post('/v2/models/missing/infer', '{}')).text)).toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });

  it('refuses a receipt nonce that is not 1..64 bytes of hex with 400 NONCE_INVALID, and signs no receipt for it', async () => {
    const length = { code: 'NONCE_INVALID', message: 'nonce must be hex of 1..64 bytes' };
    const hex = { code: 'NONCE_INVALID', message: 'nonce must be hex' };
    const cases: [unknown, object][] = [
      ['', length],
      ['ab'.repeat(64) + 'ab', length],
      [42, length],
      [['ab'], length],
      ['zz', hex],
      ['abc', hex],
      ['0x12', hex],
    ];
    const before = await seqOf();
    for (const [nonce, error] of cases) {
      const res = await post('/v2/models/affine/infer', JSON.stringify({ ...affineRequest(), parameters: { nonce } }));
      expect({ nonce, status: res.status, body: JSON.parse(res.text) as unknown, receipt: res.headers.get('teegate-receipt') }).toEqual({ nonce, status: 400, body: error, receipt: null });
    }
    expect(await seqOf()).toBe(before + 1);
    // The longest nonce accepted: 64 bytes, in either case, carried lower-case in the receipt.
    const res = await post('/v2/models/affine/infer', JSON.stringify({ ...affineRequest(), parameters: { nonce: 'AB'.repeat(64) } }));
    expect(res.status).toBe(200);
    expect((JSON.parse(Buffer.from(res.headers.get('teegate-receipt')!.split('.')[1]!, 'base64url').toString('utf8')) as { nonce: string }).nonce).toBe('ab'.repeat(64));
  });
  it('answers an output JSON cannot carry with 422 MODEL_OUTPUT_UNREPRESENTABLE, and signs no receipt for it', async () => {
    const before = await seqOf();
    const res = await post('/v2/models/affine/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [3e38, 0, 0, 0] }] }));
    expect(res.status).toBe(422);
    expect(JSON.parse(res.text)).toEqual({ code: 'MODEL_OUTPUT_UNREPRESENTABLE', message: 'model output "y" holds Infinity, which JSON cannot carry' });
    expect(res.headers.get('teegate-receipt')).toBeNull();
    expect(await seqOf()).toBe(before + 1); // no number was spent on the refused answer
  });
  it('refuses JSON that nests too deep or holds too many objects before parsing it, plain or sealed: 400 REQUEST_INVALID', async () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    expect(JSON.parse((await post('/v2/models/affine/infer', deep)).text)).toEqual({ code: 'REQUEST_INVALID', message: 'request body nests deeper than 32 levels' });
    const objects = `{"junk":[${Array(5000).fill('{}').join(',')}]}`;
    expect(JSON.parse((await post('/v2/models/affine/infer', objects)).text)).toEqual({ code: 'REQUEST_INVALID', message: 'request body holds more than 4096 objects' });
    const sealed = await sealRequest(manifest, JSON.parse(`{"inputs":${'['.repeat(40)}${']'.repeat(40)}}`) as unknown);
    expect(JSON.parse((await post('/v2/models/affine/infer', sealed.jwe, 'application/jose')).text)).toEqual({ code: 'REQUEST_INVALID', message: 'sealed plaintext nests deeper than 33 levels' });
  });

  it('answers the outputs a request names, and refuses unknown or repeated names before running the model', async () => {
    const { inputs } = affineRequest();
    const named = await post('/v2/models/affine/infer', JSON.stringify({ inputs, outputs: [{ name: 'y' }] }));
    expect(((JSON.parse(named.text) as { outputs: InferTensor[] }).outputs).map((o) => o.name)).toEqual(['y']);
    const before = await seqOf();
    const refused: [unknown, string, string][] = [
      [[{ name: 'nope' }], 'TENSOR_NAME_UNKNOWN', 'the model has no output "nope"'],
      [[{ name: 'y' }, { name: 'y' }], 'REQUEST_INVALID', 'outputs names 2 tensors, the model has 1'],
      [{ name: 'y' }, 'REQUEST_INVALID', 'outputs must be an array'],
      [[{ name: 7 }], 'REQUEST_INVALID', 'outputs[0].name must be a string'],
    ];
    for (const [outputs, code, message] of refused) {
      const res = await post('/v2/models/affine/infer', JSON.stringify({ inputs, outputs }));
      expect(JSON.parse(res.text)).toEqual({ code, message });
    }
    const twice = await post(`/v2/models/${DEMO_MODEL}/infer`, JSON.stringify({ ...demoRequest(), outputs: [{ name: 'text' }, { name: 'text' }] }));
    expect(JSON.parse(twice.text)).toEqual({ code: 'REQUEST_INVALID', message: 'outputs names a tensor twice' });
    expect(await seqOf()).toBe(before + 1);
  });

  it('refuses outputs whose JSON would not fit an answer with 413 TENSOR_TOO_LARGE, and signs no receipt for them', async () => {
    // 2,560,000 values of 0.1 (10 MB of request) come back as 1.2000000476837158: 48.6 MB of JSON,
    // over the 44 MiB an answer may carry (a gateway would refuse the answer, and the receipt would
    // be missing from its log).
    const before = await seqOf();
    const rows = 640_000;
    const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},4],"data":[${Array(rows * 4).fill('0.1').join(',')}]}]}`;
    const res = await post('/v2/models/affine/infer', body);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text)).toEqual({ code: 'TENSOR_TOO_LARGE', message: expect.stringMatching(/^the outputs would take 486\d{5} bytes of JSON, more than an answer may carry \(46137344\)/) });
    expect(res.headers.get('teegate-receipt')).toBeNull();
    expect(await seqOf()).toBe(before + 1);
  });
});

async function seqOf(): Promise<number> {
  return (JSON.parse((await post('/v2/models/affine/infer', JSON.stringify(affineRequest()))).text) as { parameters: { seq: number } }).parameters.seq;
}

describe('sealed inference', () => {
  it('decrypts inside, answers sealed, and the receipt says sealed', async () => {
    const request = demoRequest();
    const sealed = await sealRequest(manifest, request);
    const res = await post(`/v2/models/${DEMO_MODEL}/infer`, sealed.jwe, 'application/jose');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jose');
    expect(res.text).not.toContain(DEMO_TEXT);
    const response = (await sealed.open(res.text)) as { outputs: InferTensor[]; parameters: { receipt: string; salt: string } };
    expect(response.outputs.find((o) => o.name === 'text')!.data).toEqual([DEMO_TEXT]);
    const claims = await verifyReceipt({ receipt: response.parameters.receipt, attestation, manifest, inputs: request.inputs, outputs: response.outputs, salt: response.parameters.salt, sealed: true });
    expect(claims.sealed).toBe(true);
    expect(res.headers.get('teegate-receipt')).toBe(response.parameters.receipt);
  });

  it('takes a JWE with surrounding whitespace (a trailing newline from a shell), and runs it at the version the path names', async () => {
    const sealed = await sealRequest(manifest, affineRequest());
    const res = await post('/v2/models/affine/versions/1/infer', `${sealed.jwe}\r\n`, 'application/jose');
    expect(res.status).toBe(200);
    expect(await sealed.open(res.text)).toMatchObject({ model_name: 'affine', model_version: '1' });
    const unknown = await post('/v2/models/affine/versions/9/infer', (await sealRequest(manifest, affineRequest())).jwe, 'application/jose');
    expect({ status: unknown.status, body: JSON.parse(unknown.text) as unknown }).toEqual({ status: 404, body: { code: 'MODEL_NOT_FOUND', message: 'no model "affine" version "9" is served' } });
  });

  it('refuses a response key that is not a P-256 point before the model runs: 400 JWE_INVALID, no receipt number spent', async () => {
    const before = await seqOf();
    const client = await exportJWK((await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true })).publicKey);
    const { kty, crv, x, y, kid } = manifest.keys.seal;
    const plaintext = JSON.stringify({ id: randomUUID(), iat: Math.floor(Date.now() / 1000), request: affineRequest(), response_key: { ...client, y: client.x } });
    const jwe = await new CompactEncrypt(utf8(plaintext)).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid }).encrypt(await importJWK({ kty, crv, x, y }, 'ECDH-ES+A256KW'));
    const res = await post('/v2/models/affine/infer', jwe, 'application/jose');
    expect({ status: res.status, body: JSON.parse(res.text) as unknown }).toEqual({ status: 400, body: { code: 'JWE_INVALID', message: expect.stringContaining('response_key is not a P-256 public key') } });
    expect(res.headers.get('teegate-receipt')).toBeNull();
    expect(await seqOf()).toBe(before + 1);
  });

  it('rejects a JWE for another key, a tampered JWE, a replay and a stale one with typed errors', async () => {
    const request = affineRequest();
    // Another enclave's seal key, named by its own kid.
    const other = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const otherJwk = { ...(await exportJWK(other.publicKey)), kid: 'other-key' };
    const forOther = await sealRequest({ keys: { ...manifest.keys, seal: { ...manifest.keys.seal, ...otherJwk, kty: 'EC', crv: 'P-256' } as EnclaveManifest['keys']['seal'] } }, request);
    expect(JSON.parse((await post('/v2/models/affine/infer', forOther.jwe, 'application/jose')).text)).toMatchObject({ code: 'JWE_KEY_MISMATCH' });

    // Encrypted to another key but claiming ours: does not decrypt.
    const wrongKey = await new CompactEncrypt(utf8('{}'))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: manifest.keys.seal.kid })
      .encrypt(await importJWK(await exportJWK(other.publicKey), 'ECDH-ES+A256KW'));
    expect(JSON.parse((await post('/v2/models/affine/infer', wrongKey, 'application/jose')).text)).toMatchObject({ code: 'JWE_INVALID' });

    const good = await sealRequest(manifest, request);
    const parts = good.jwe.split('.');
    const ct = parts[3]!;
    parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
    const tampered = await post('/v2/models/affine/infer', parts.join('.'), 'application/jose');
    expect({ status: tampered.status, body: JSON.parse(tampered.text) }).toMatchObject({ status: 400, body: { code: 'JWE_INVALID' } });

    expect((await post('/v2/models/affine/infer', good.jwe, 'application/jose')).status).toBe(200);
    const replay = await post('/v2/models/affine/infer', good.jwe, 'application/jose');
    expect({ status: replay.status, body: JSON.parse(replay.text) }).toMatchObject({ status: 409, body: { code: 'JWE_REPLAYED' } });

    const stale = await sealRequest(manifest, request, { iat: Math.floor(Date.now() / 1000) - 3600 });
    expect(JSON.parse((await post('/v2/models/affine/infer', stale.jwe, 'application/jose')).text)).toMatchObject({ code: 'JWE_EXPIRED' });
  });
});

describe('receipts under concurrency', () => {
  it('numbers 1,000 concurrent inferences without gaps and never repeats a jti', async () => {
    const before = (await (await fetch(`${enclave.url}/health`)).json()) as { receipts_issued: number };
    const body = JSON.stringify(affineRequest());
    const results = await Promise.all(
      Array.from({ length: 1000 }, async () => {
        const res = await post('/v2/models/affine/infer', body);
        expect(res.status).toBe(200);
        const receipt = res.headers.get('teegate-receipt')!;
        return JSON.parse(Buffer.from(receipt.split('.')[1]!, 'base64url').toString('utf8')) as { seq: number; jti: string };
      }),
    );
    const seqs = results.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => before.receipts_issued + i));
    expect(new Set(results.map((r) => r.jti)).size).toBe(1000);
  });
});

describe('HTTP limits and routes', () => {
  /** A second listener on the same enclave, with a 4 KiB body limit. */
  let small: { server: Server; url: string };
  beforeAll(async () => {
    small = await listenEnclaveHttp(enclave.service, { maxBodyBytes: 4096 });
  });
  afterAll(async () => {
    small.server.closeAllConnections();
    await new Promise((resolve) => small.server.close(resolve));
  });

  const codeOf = async (res: Response) => [res.status, ((await res.json()) as { code: string }).code];

  it('listens on the loopback interface only when no host is given', async () => {
    expect(new URL(enclave.url).hostname).toBe('127.0.0.1');
    const { server, url } = await listenEnclaveHttp(enclave.service);
    try {
      expect([(server.address() as AddressInfo).address, new URL(url).hostname]).toEqual(['127.0.0.1', '127.0.0.1']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('marks every answer, success or error, as not to be cached', async () => {
    const answers = [
      await fetch(`${enclave.url}/health`),
      await fetch(`${enclave.url}/manifest`),
      await fetch(`${enclave.url}/v2/models/affine`),
      await fetch(`${enclave.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) }),
      await fetch(`${enclave.url}/nope`),
    ];
    expect(answers.map((res) => [res.status, res.headers.get('cache-control')])).toEqual([
      [200, 'no-store'],
      [200, 'no-store'],
      [200, 'no-store'],
      [200, 'no-store'],
      [404, 'no-store'],
    ]);
    await Promise.all(answers.map((res) => res.arrayBuffer()));
  });

  it('413 BODY_TOO_LARGE for a declared length over the limit, before reading the body', async () => {
    const body = JSON.stringify(affineRequest()).padEnd(5000, ' ');
    expect(await codeOf(await fetch(`${small.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }))).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('413 BODY_TOO_LARGE, not a reset connection, for a streamed body that grows past the limit', async () => {
    expect(await codeOf(await postStreamed(`${small.url}/v2/models/affine/infer`, 5))).toEqual([413, 'BODY_TOO_LARGE']);
    // The enclave still answers on the same listener.
    expect((await post('/v2/models/affine/infer', JSON.stringify(affineRequest()))).status).toBe(200);
  });

  it('takes a streamed (chunked) body of exactly the limit, and refuses one a byte longer: 413 BODY_TOO_LARGE', async () => {
    const streamed = (size: number) =>
      fetch(`${small.url}/v2/models/affine/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            const bytes = utf8(JSON.stringify(affineRequest()).padEnd(size, ' '));
            controller.enqueue(bytes.subarray(0, 1000));
            controller.enqueue(bytes.subarray(1000));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const atLimit = await streamed(4096);
    expect(atLimit.status).toBe(200);
    await atLimit.arrayBuffer();
    expect(await codeOf(await streamed(4097))).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('a client that hangs up mid-body is not an unexpected error in the enclave\'s log', async () => {
    const lines: Record<string, unknown>[] = [];
    const logged = await listenEnclaveHttp(enclave.service, { log: (e) => lines.push(e as Record<string, unknown>) });
    try {
      const { hostname, port } = new URL(logged.url);
      await new Promise<void>((resolve, reject) => {
        const socket = netConnect(Number(port), hostname, () => {
          socket.write('POST /v2/models/affine/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs":');
          setTimeout(() => socket.destroy(), 50);
        });
        socket.on('close', () => resolve()).on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(lines.find((l) => l.method === 'POST')).toMatchObject({ level: 'debug', path: '/v2/models/affine/infer' });
      expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    } finally {
      logged.server.closeAllConnections();
      await new Promise((resolve) => logged.server.close(resolve));
    }
  });

  it('404 ROUTE_NOT_FOUND for unknown paths and methods', async () => {
    for (const [method, path] of [['GET', '/v2/models/affine/infer'], ['GET', '/admin'], ['POST', '/v2/models/affine'], ['DELETE', '/health'], ['PUT', '/v2/models/affine/infer']] as const) {
      expect([method, path, ...(await codeOf(await fetch(`${enclave.url}${path}`, { method })))]).toEqual([method, path, 404, 'ROUTE_NOT_FOUND']);
    }
  });

  it('400 REQUEST_INVALID for a body that is not JSON', async () => {
    const res = await post('/v2/models/affine/infer', '{"inputs": [');
    expect([res.status, JSON.parse(res.text).code]).toEqual([400, 'REQUEST_INVALID']);
  });
});
