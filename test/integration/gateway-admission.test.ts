/**
 * The gateway against an enclave address that does not behave: an HTTP relay in front of a real
 * enclave (dev NSM) that can rewrite what the enclave answers. It replays the boot document for the
 * gateway's nonce, sends a document that is not base64 or not JSON at all, drops the receipt from an
 * inference answer, answers with more than the configured limit, or says it is not ready. Each gets
 * its refusal and code, and no traffic or log entry follows. Also: an enclave serving two versions
 * of one model is admitted and serves each; a request arriving on an open connection during
 * shutdown gets 503 GATEWAY_SHUTTING_DOWN while the one in flight finishes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { fromBase64 } from '../../attestation/bytes';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { verifyManifestBinding } from '../../attestation/manifest';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt } from '../../attestation/receipt';
import { sealRequest } from '../../attestation/sealed-request';
import type { RunningEnclave } from '../../enclave/main';
import { affineModel } from '../../enclave/models/testing/tiny-onnx';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { createLogger } from '../../gateway/observability/logger';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';
import { policyFor, startTestEnclave, testGatewayConfig } from '../support/gateway-harness';
import { serveHttp, type LoopbackServer } from '../support/loopback';

jest.setTimeout(60_000);

/** What the real enclave answered, as the relay may rewrite it. */
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * An HTTP relay in front of a real enclave: each request goes to the enclave, and `rewrite` may
 * change the answer (or `delayMs` hold an inference answer back) before it is passed on.
 */
class Impostor {
  rewrite: (path: string, answer: Answer) => Answer = (_path, answer) => answer;
  delayMs = 0;

  private server: LoopbackServer | undefined;

  get url(): string {
    return this.server!.url;
  }

  static async start(target: string): Promise<Impostor> {
    const self = new Impostor();
    self.server = await serveHttp((req, res) => {
      void (async () => {
        const body = await buffer(req);
        const upstream = await fetch(`${target}${req.url}`, { method: req.method!, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body: new Uint8Array(body) } : {}) });
        const headers: Record<string, string> = {};
        upstream.headers.forEach((value, name) => {
          if (name !== 'content-length' && name !== 'connection' && name !== 'keep-alive' && name !== 'date') headers[name] = value;
        });
        const answer = self.rewrite(req.url!, { status: upstream.status, headers, body: Buffer.from(await upstream.arrayBuffer()) });
        if (req.method === 'POST' && self.delayMs > 0) await new Promise((r) => setTimeout(r, self.delayMs));
        res.writeHead(answer.status, { ...answer.headers, 'content-length': answer.body.length });
        res.end(answer.body);
      })().catch(() => res.destroy());
    });
    return self;
  }

  close(): Promise<void> {
    return this.server!.close();
  }
}

let ca: DevCa;
let enclave: RunningEnclave;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  ca = await createDevCa();
  enclave = await startTestEnclave(ca, tinyModelConfigs());
});

afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

afterAll(async () => {
  await enclave?.close();
});

async function gatewayFor(
  url: string | string[],
  limits: Record<string, unknown> = {},
  pcrs: Readonly<Record<number, string>> = enclave.pcrs,
  pool: Record<string, unknown> = {},
): Promise<{ gateway: RunningGateway; sink: MemoryReceiptSink; metrics: GatewayMetrics }> {
  const sink = new MemoryReceiptSink();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const gateway = await startGateway(
    testGatewayConfig({
      enclaves: Array.isArray(url) ? url : [url],
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(pcrs) },
      auth: { disabled: true },
      pool: { healthIntervalMs: 60_000, ...pool },
      limits,
    }),
    { sink, metrics, logger: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) },
  );
  cleanup.push(() => gateway.close());
  return { gateway, sink, metrics };
}

async function impostor(): Promise<Impostor> {
  const relay = await Impostor.start(enclave.url);
  cleanup.push(() => relay.close());
  return relay;
}

async function memberOf(gateway: RunningGateway): Promise<{ state: string; last_error?: { code: string; message: string } }> {
  const list = (await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { state: string; last_error?: { code: string; message: string } }[] };
  return list.enclaves[0]!;
}

async function infer(gateway: RunningGateway, path = '/v2/models/affine/infer') {
  const res = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
}

describe('admission of a hostile enclave address', () => {
  it('admits the relay while it passes the enclave\'s answers on unchanged (the cases below change one thing)', async () => {
    const { gateway, sink } = await gatewayFor((await impostor()).url);
    expect((await memberOf(gateway)).state).toBe('ready');
    expect((await infer(gateway)).status).toBe(200);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'receipt']);
  });

  it('rejects a replayed boot document (the answer to the gateway\'s nonce carries none): no traffic, nothing logged', async () => {
    const relay = await impostor();
    let boot: Answer | undefined;
    relay.rewrite = (path, answer) => (path === '/attestation' ? (boot = answer) : path.startsWith('/attestation?') ? boot! : answer);
    const { gateway, sink } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^fresh attestation: NONCE_/) } });
    expect((await infer(gateway)).json.code).toBe('NO_ENCLAVE_AVAILABLE');
    expect(sink.entries).toHaveLength(0);
  });

  it('rejects a document that is not base64', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path.startsWith('/attestation') ? { ...answer, body: Buffer.from(JSON.stringify({ ...JSON.parse(answer.body.toString()), document: 'not base64!' })) } : answer);
    const { gateway } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: '/attestation: document is not base64' } });
  });

  it('rejects an answer without a document', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path.startsWith('/attestation') ? { ...answer, body: Buffer.from('{"manifest": {}}') } : answer);
    const { gateway } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: '/attestation did not answer {document, manifest}' } });
  });

  it('keeps out an enclave whose attestation answer is not JSON: UPSTREAM_INVALID', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path.startsWith('/attestation') ? { ...answer, headers: { 'content-type': 'text/html' }, body: Buffer.from('<html>maintenance</html>') } : answer);
    const { gateway } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'unhealthy', last_error: { code: 'UPSTREAM_INVALID', message: expect.stringContaining('with a body that is not JSON') } });
    expect((await infer(gateway)).json.code).toBe('NO_ENCLAVE_AVAILABLE');
  });
});

describe('an enclave that is up but not ready', () => {
  const notReady = (answer: Answer): Answer => ({ ...answer, status: 503, body: Buffer.from(JSON.stringify({ code: 'ENCLAVE_NOT_READY', message: 'enclave serves no models: model key release failed' })) });

  it('is kept out when its health says so, with the reason it gives', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path === '/health' ? { ...answer, status: 503, body: Buffer.from(JSON.stringify({ ...JSON.parse(answer.body.toString()), status: 'failed', reason: 'model key release failed: AccessDeniedException' })) } : answer);
    const { gateway } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'unhealthy', last_error: { code: 'ENCLAVE_NOT_READY', message: 'model key release failed: AccessDeniedException' } });
    expect((await infer(gateway)).json.code).toBe('NO_ENCLAVE_AVAILABLE');
  });

  it('answering an inference 503 (it ran nothing): the request moves to another enclave, and it is taken out', async () => {
    const relay = await impostor();
    const { gateway, metrics } = await gatewayFor([relay.url, enclave.url], {}, enclave.pcrs, { selection: 'round-robin' });
    // Its health says so too from now on: else the check that follows the 503 may find it healthy and
    // admit it again before this test looks (as it should), and the test would race that check.
    relay.rewrite = (path, answer) => (path.endsWith('/infer') || path === '/health' ? notReady(answer) : answer);
    const served: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
      expect(res.status).toBe(200);
      served.push(res.headers.get('teegate-enclave'));
    }
    expect(served).toEqual(['enclave-1', 'enclave-1', 'enclave-1']);
    expect(await metrics.registry.getSingleMetricAsString('teegate_gateway_upstream_retries_total')).toMatch(/reason="not_ready"\} 1$/m);
    expect(await memberOf(gateway)).toMatchObject({ state: 'unhealthy', last_error: { code: 'ENCLAVE_NOT_READY' } });
  });
});

describe('answers the gateway does not relay', () => {
  it('502 UPSTREAM_INVALID for an inference answer without its receipt; nothing is logged for it', async () => {
    const relay = await impostor();
    const { gateway, sink } = await gatewayFor(relay.url);
    relay.rewrite = (path, answer) => {
      if (!path.endsWith('/infer')) return answer;
      const { ['teegate-receipt']: _dropped, ...headers } = answer.headers;
      return { ...answer, headers };
    };
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_INVALID']);
    expect(res.json.message).toContain('without a teegate-receipt header');
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation']);
  });

  it('502 UPSTREAM_INVALID for an answer over limits.upstreamResponseBytes, whose receipt is still logged (it ran)', async () => {
    const relay = await impostor();
    const { gateway, sink } = await gatewayFor(relay.url, { upstreamResponseBytes: 8192 });
    expect((await infer(gateway)).status).toBe(200); // a normal answer is far below the limit
    let signed: string | undefined;
    relay.rewrite = (path, answer) => {
      if (!path.endsWith('/infer')) return answer;
      signed = answer.headers['teegate-receipt'];
      return { ...answer, body: Buffer.concat([answer.body, Buffer.alloc(8192, 0x20)]) };
    };
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_INVALID']);
    expect(res.json.message).toContain('answered more than 8192 bytes');
    // Both receipts are in the log, so an auditor sees no gap in the enclave's numbering.
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'receipt', 'receipt']);
    expect(sink.entries[2]).toMatchObject({ type: 'receipt', jws: signed });
  });

  it('logs the receipt of an answer cut off after its headers, and answers 502 UPSTREAM_OUTCOME_UNKNOWN', async () => {
    const upstream = await serveHttp((req, res) => {
      void (async () => {
        const body = await buffer(req);
        const answer = await fetch(`${enclave.url}${req.url}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body } : {}) });
        const bytes = Buffer.from(await answer.arrayBuffer());
        const headers: Record<string, string> = {};
        answer.headers.forEach((value, name) => {
          if (!['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) headers[name] = value;
        });
        if (!req.url!.endsWith('/infer')) return void res.writeHead(answer.status, { ...headers, 'content-length': bytes.length }).end(bytes);
        res.writeHead(answer.status, { ...headers, 'content-length': bytes.length });
        res.write(bytes.subarray(0, 10)); // the enclave dies mid-answer
        setTimeout(() => res.destroy(), 20);
      })();
    });
    cleanup.push(() => upstream.close());
    const { gateway, sink } = await gatewayFor(upstream.url);
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_OUTCOME_UNKNOWN']);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'receipt']);
  });
});

describe('model versions', () => {
  it('admits an enclave serving two versions of one model and runs the version the path names', async () => {
    // Version 2: the same function in another file (opset 17), so the receipts tell the versions apart.
    const [v1] = tinyModelConfigs();
    const bytes = affineModel(4, 17);
    const path = join(mkdtempSync(join(tmpdir(), 'teegate-v2-')), 'affine-v2.onnx');
    writeFileSync(path, bytes);
    const v2 = { ...v1!, version: '2', path, sha256: createHash('sha256').update(bytes).digest('hex') };
    const both = await startTestEnclave(ca, [v1!, v2]);
    cleanup.push(() => both.close());
    const { gateway } = await gatewayFor(both.url, {}, both.pcrs); // the model configuration is measured into PCR0
    const member = await memberOf(gateway);
    expect([member.state, member.last_error]).toEqual(['ready', undefined]);
    expect(await (await fetch(`${gateway.url}/v2/models`)).json()).toEqual({ models: [{ name: 'affine', versions: ['1', '2'] }] });
    const listed = ((await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { document: string; manifest: unknown }[] }).enclaves[0]!;
    const attestation = await verifyAttestation(fromBase64(listed.document), { rootCertificates: [ca.rootPem] });
    const manifest = await verifyManifestBinding(attestation, listed.manifest);
    const post = (path: string, body: unknown = affineRequest()) => fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const [path, config] of [['/v2/models/affine/versions/1/infer', v1!], ['/v2/models/affine/versions/2/infer', v2], ['/v2/models/affine/infer', v2]] as const) {
      const res = await post(path);
      const body = (await res.json()) as { model_version: string; outputs: []; parameters: { receipt: string; salt: string } };
      expect([path, res.status, body.model_version]).toEqual([path, 200, config.version]);
      const claims = await verifyReceipt({ receipt: body.parameters.receipt, attestation, manifest, inputs: affineRequest().inputs, outputs: body.outputs, salt: body.parameters.salt, sealed: false });
      expect(claims.model).toEqual({ name: 'affine', version: config.version, sha256: config.sha256 });
    }
    // The body's model_version (an extension) selects too, but may not contradict the path.
    expect(((await (await post('/v2/models/affine/infer', { ...affineRequest(), model_version: '1' })).json()) as { model_version: string }).model_version).toBe('1');
    const conflict = await post('/v2/models/affine/versions/2/infer', { ...affineRequest(), model_version: '1' });
    expect([conflict.status, ((await conflict.json()) as { code: string; message: string })]).toEqual([400, { code: 'REQUEST_INVALID', message: 'model_version "1" differs from the version in the path, "2"' }]);
    const notString = await post('/v2/models/affine/infer', { ...affineRequest(), model_version: 1 });
    expect([notString.status, ((await notString.json()) as { code: string }).code]).toEqual([400, 'REQUEST_INVALID']);
    const unknown = await post('/v2/models/affine/versions/3/infer');
    expect([unknown.status, ((await unknown.json()) as { code: string }).code]).toEqual([404, 'MODEL_NOT_FOUND']);
    // A sealed request names its model inside: its version applies when the path names none, and
    // the path may not name another.
    const sealedTo = async (path: string, model: { name: string; version?: string }) => {
      const sealed = await sealRequest(manifest, affineRequest(), { model });
      const res = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/jose' }, body: sealed.jwe });
      return res.status === 200 ? { status: 200, body: (await sealed.open(await res.text())) as Record<string, unknown> } : { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await sealedTo('/v2/models/affine/infer', { name: 'affine', version: '1' })).toMatchObject({ status: 200, body: { model_version: '1' } });
    expect(await sealedTo('/v2/models/affine/versions/2/infer', { name: 'affine', version: '1' })).toEqual({ status: 400, body: { code: 'REQUEST_INVALID', message: 'the sealed request is for model affine@1, the path names affine@2' } });
    expect(await sealedTo('/v2/models/affine/versions/2/infer', { name: 'affine' })).toMatchObject({ status: 200, body: { model_version: '2' } });
    // Metadata of one version goes to the enclave's route for that version.
    const meta = await fetch(`${gateway.url}/v2/models/affine/versions/1`);
    expect([meta.status, ((await meta.json()) as { versions: string[] }).versions]).toEqual([200, ['1', '2']]);
  });
});

describe('graceful shutdown', () => {
  it('answers a request that arrives on an open connection during shutdown with 503 GATEWAY_SHUTTING_DOWN, after the one in flight', async () => {
    const relay = await impostor();
    const { gateway } = await gatewayFor(relay.url);
    relay.delayMs = 600;
    const { port } = new URL(gateway.url);
    const socket = connect(Number(port), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const body = JSON.stringify(affineRequest());
    socket.write(`POST /v2/models/affine/infer HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 200)); // the inference is in flight at the enclave
    const closed = gateway.close();
    await new Promise((r) => setTimeout(r, 100));
    socket.write('GET /v2/health/live HTTP/1.1\r\nHost: gateway\r\n\r\n');
    await closed;
    await ended;
    const text = Buffer.concat(received).toString('utf8');
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 503]);
    const second = text.slice(text.lastIndexOf('HTTP/1.1 503'));
    expect(second.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'GATEWAY_SHUTTING_DOWN' });
  });
});
