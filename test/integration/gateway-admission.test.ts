/**
 * The gateway against an enclave address that does not behave: an HTTP relay in front of a real
 * enclave (dev NSM) that can rewrite what the enclave answers. It replays the boot document for the
 * gateway's nonce, sends a document that is not base64 or not JSON at all, drops the receipt from an
 * inference answer, answers with more than the configured limit, or says it is not ready. Each gets
 * its refusal and code, and no traffic or log entry follows. Also: an enclave serving two versions
 * of one model is admitted and serves each; a request arriving on an open connection during
 * shutdown gets 503 GATEWAY_SHUTTING_DOWN while the one in flight finishes.
 *
 * Also the rules of admission and retry one at a time: a boot or fresh document re-signed with
 * another measurement, user data or public key, or a manifest the document is not bound to, is
 * rejected; what is tried again on another enclave (ENCLAVE_BUSY, once per enclave, within
 * limits.maxAttempts) and what never is (a 500, a connection broken after sending); a receipt under
 * a key the enclave was not attested with; an enclave restarted behind the same address; overlapping
 * checks; the selection strategies; and a pool that stopped.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { fromBase64, toBase64 } from '../../attestation/bytes';
import { DevAttester } from '../../attestation/dev/dev-attester';
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
  rewrite: (path: string, answer: Answer) => Answer | Promise<Answer> = (_path, answer) => answer;
  delayMs = 0;
  /** The enclave behind it: changing it is an enclave restarted under the same address. */
  target = '';

  private server: LoopbackServer | undefined;

  get url(): string {
    return this.server!.url;
  }

  static async start(target: string): Promise<Impostor> {
    const self = new Impostor();
    self.target = target;
    self.server = await serveHttp((req, res) => {
      void (async () => {
        const body = await buffer(req);
        const upstream = await fetch(`${self.target}${req.url}`, { method: req.method!, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body: new Uint8Array(body) } : {}) });
        const headers: Record<string, string> = {};
        upstream.headers.forEach((value, name) => {
          if (name !== 'content-length' && name !== 'connection' && name !== 'keep-alive' && name !== 'date') headers[name] = value;
        });
        const answer = await self.rewrite(req.url!, { status: upstream.status, headers, body: Buffer.from(await upstream.arrayBuffer()) });
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

/**
 * A stand-in for the enclave that relays to it, but cuts each inference answer off 10 bytes into
 * its body (the enclave dies mid-answer), its headers replaced by `headers` where given.
 */
async function cutOffAfterHeaders(headers: Record<string, string> = {}): Promise<LoopbackServer> {
  return serveHttp((req, res) => {
    void (async () => {
      const body = await buffer(req);
      const answer = await fetch(`${enclave.url}${req.url}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body } : {}) });
      const bytes = Buffer.from(await answer.arrayBuffer());
      const relayed: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) relayed[name] = value;
      });
      if (!req.url!.endsWith('/infer')) return void res.writeHead(answer.status, { ...relayed, 'content-length': bytes.length }).end(bytes);
      res.writeHead(answer.status, { ...relayed, ...headers, 'content-length': bytes.length });
      res.write(bytes.subarray(0, 10));
      setTimeout(() => res.destroy(), 20);
    })();
  });
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

/**
 * The enclave's attestation answer with its document signed again by the dev CA (which the gateway
 * pins), as a compromised or lying host with a signing key would: the same fields as the enclave's
 * document but those `change` replaces.
 */
async function reSigned(answer: Answer, change: { pcr0?: Uint8Array; userData?: Uint8Array; publicKey?: Uint8Array }): Promise<Answer> {
  const json = JSON.parse(answer.body.toString()) as { document: string };
  const real = await verifyAttestation(fromBase64(json.document), { rootCertificates: [ca.rootPem] });
  const pcrs = new Map(real.pcrs);
  if (change.pcr0) pcrs.set(0, change.pcr0);
  const attester = await DevAttester.create({ ca, pcrs });
  const document = await attester.attest({
    ...(real.nonce ? { nonce: real.nonce } : {}),
    userData: change.userData ?? real.userData!,
    publicKey: change.publicKey ?? real.publicKey!,
  });
  return { ...answer, body: Buffer.from(JSON.stringify({ ...json, document: toBase64(document) })) };
}

describe('admission checks each attestation document against the policy and the boot binding', () => {
  const otherPcr0 = new Uint8Array(48).fill(0x5a);
  const otherBytes = (n: number) => new Uint8Array(n).fill(7);

  async function admitted(rewrite: (path: string, answer: Answer) => Answer | Promise<Answer>) {
    const relay = await impostor();
    relay.rewrite = rewrite;
    const { gateway, sink } = await gatewayFor(relay.url);
    return { member: await memberOf(gateway), sink, gateway };
  }

  it('a boot document measuring another image is rejected, though the fresh one meets the policy', async () => {
    const { member, sink, gateway } = await admitted((path, answer) => (path === '/attestation' ? reSigned(answer, { pcr0: otherPcr0 }) : answer));
    expect(member).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^boot attestation: PCR_MISMATCH: /) } });
    expect(sink.entries).toHaveLength(0);
    expect(await infer(gateway)).toMatchObject({ status: 503, json: { code: 'NO_ENCLAVE_AVAILABLE' } });
  });

  it('a fresh document measuring another image is rejected, though the boot one meets the policy', async () => {
    const { member, sink } = await admitted((path, answer) => (path.startsWith('/attestation?') ? reSigned(answer, { pcr0: otherPcr0 }) : answer));
    expect(member).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^fresh attestation: PCR_MISMATCH: /) } });
    expect(sink.entries).toHaveLength(0);
  });

  it('a fresh document with other user data (another manifest) is rejected', async () => {
    const { member, sink } = await admitted((path, answer) => (path.startsWith('/attestation?') ? reSigned(answer, { userData: otherBytes(32) }) : answer));
    expect(member).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^fresh attestation: USER_DATA_MISMATCH: /) } });
    expect(sink.entries).toHaveLength(0);
  });

  it('a fresh document with another public key (another receipt key) is rejected', async () => {
    const { member, sink } = await admitted((path, answer) => (path.startsWith('/attestation?') ? reSigned(answer, { publicKey: otherBytes(91) }) : answer));
    expect(member).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^fresh attestation: PUBLIC_KEY_MISMATCH: /) } });
    expect(sink.entries).toHaveLength(0);
  });

  it('a manifest the boot document is not bound to is rejected: MANIFEST_BINDING_MISMATCH', async () => {
    const { member, sink } = await admitted((path, answer) => {
      if (path !== '/attestation') return answer;
      const json = JSON.parse(answer.body.toString()) as { manifest: { models: { name: string }[] } };
      json.manifest.models[0]!.name = 'renamed';
      return { ...answer, body: Buffer.from(JSON.stringify(json)) };
    });
    expect(member).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringMatching(/^boot attestation: MANIFEST_BINDING_MISMATCH: /) } });
    expect(sink.entries).toHaveLength(0);
  });

  it('an attestation route that answers 404 keeps the enclave out as unhealthy: UPSTREAM_INVALID naming the status', async () => {
    const { member, sink } = await admitted((path, answer) =>
      path.startsWith('/attestation') ? { ...answer, status: 404, body: Buffer.from(JSON.stringify({ code: 'ROUTE_NOT_FOUND', message: 'no such route' })) } : answer,
    );
    expect(member).toMatchObject({ state: 'unhealthy', last_error: { code: 'UPSTREAM_INVALID', message: 'enclave-0/attestation answered 404' } });
    expect(sink.entries).toHaveLength(0);
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

  it('is kept out when its health answers 200 but a status other than ready', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path === '/health' ? { ...answer, body: Buffer.from(JSON.stringify({ ...JSON.parse(answer.body.toString()), status: 'loading', reason: 'loading models' })) } : answer);
    const { gateway, sink } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'unhealthy', last_error: { code: 'ENCLAVE_NOT_READY', message: 'loading models' } });
    expect(sink.entries).toHaveLength(0);
    expect(await infer(gateway)).toMatchObject({ status: 503, json: { code: 'NO_ENCLAVE_AVAILABLE' } });
  });

  it('is kept out when its health answers 503, though its body says ready', async () => {
    const relay = await impostor();
    relay.rewrite = (path, answer) => (path === '/health' ? { ...answer, status: 503 } : answer);
    const { gateway, sink } = await gatewayFor(relay.url);
    expect(await memberOf(gateway)).toMatchObject({ state: 'unhealthy', last_error: { code: 'ENCLAVE_NOT_READY', message: 'health answered 503' } });
    expect(sink.entries).toHaveLength(0);
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
    const upstream = await cutOffAfterHeaders();
    cleanup.push(() => upstream.close());
    const { gateway, sink } = await gatewayFor(upstream.url);
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_OUTCOME_UNKNOWN']);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'receipt']);
  });
});

describe('what is tried again, and where', () => {
  const answering = (status: number, code: string) => (answer: Answer): Answer => ({ ...answer, status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ code, message: `${code} from the relay` })) });

  it('an enclave\'s 500 is relayed as it is, never sent to another enclave (it may have run), and the enclave stays in rotation', async () => {
    const relay = await impostor();
    let posts = 0;
    relay.rewrite = (path, answer) => (path.endsWith('/infer') ? (posts++, answering(500, 'INTERNAL')(answer)) : answer);
    const { gateway, sink } = await gatewayFor([relay.url, enclave.url], {}, enclave.pcrs, { selection: 'round-robin' });
    const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
    expect(res.status).toBe(500);
    expect(res.headers.get('teegate-enclave')).toBe('enclave-0');
    expect(await res.json()).toEqual({ code: 'INTERNAL', message: 'INTERNAL from the relay' });
    expect(posts).toBe(1);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'attestation']); // the other enclave ran nothing
    expect((await memberOf(gateway)).state).toBe('ready');
  });

  it('ENCLAVE_BUSY moves the request to each other enclave once; when every one is busy, the last busy answer is relayed', async () => {
    const [a, b] = [await impostor(), await impostor()];
    const posts = { a: 0, b: 0 };
    a.rewrite = (path, answer) => (path.endsWith('/infer') ? (posts.a++, answering(429, 'ENCLAVE_BUSY')(answer)) : answer);
    b.rewrite = (path, answer) => (path.endsWith('/infer') ? (posts.b++, answering(429, 'ENCLAVE_BUSY')(answer)) : answer);
    const { gateway, metrics, sink } = await gatewayFor([a.url, b.url], { maxAttempts: 3 });
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([429, 'ENCLAVE_BUSY']);
    expect(posts).toEqual({ a: 1, b: 1 });
    expect(await metrics.registry.getSingleMetricAsString('teegate_gateway_upstream_retries_total')).toMatch(/reason="enclave_busy"\} 1$/m);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'attestation']);
  });

  it('ENCLAVE_BUSY with limits.maxAttempts 1: relayed as it is, though another enclave could be tried', async () => {
    const [a, b] = [await impostor(), await impostor()];
    let posts = 0;
    for (const relay of [a, b]) relay.rewrite = (path, answer) => (path.endsWith('/infer') ? (posts++, answering(429, 'ENCLAVE_BUSY')(answer)) : answer);
    const { gateway } = await gatewayFor([a.url, b.url], { maxAttempts: 1 });
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([429, 'ENCLAVE_BUSY']);
    expect(posts).toBe(1);
  });

  it('ENCLAVE_BUSY from the only enclave is relayed after one attempt: the request is not sent to it again', async () => {
    const relay = await impostor();
    let posts = 0;
    relay.rewrite = (path, answer) => (path.endsWith('/infer') ? (posts++, answering(429, 'ENCLAVE_BUSY')(answer)) : answer);
    const { gateway } = await gatewayFor(relay.url, { maxAttempts: 3 });
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([429, 'ENCLAVE_BUSY']);
    expect(posts).toBe(1);
    expect((await memberOf(gateway)).state).toBe('ready');
  });

  it('a connection that breaks after the request was sent: 502 UPSTREAM_OUTCOME_UNKNOWN, not retried elsewhere, and the enclave is checked and attested again', async () => {
    let posts = 0;
    const breaking = await serveHttp((req, res) => {
      void (async () => {
        const body = await buffer(req);
        if (req.url!.endsWith('/infer')) {
          posts++;
          return void res.destroy(); // the request arrived; no answer ever comes
        }
        const answer = await fetch(`${enclave.url}${req.url}`, { method: req.method, ...(req.method === 'POST' ? { body } : {}) });
        const bytes = Buffer.from(await answer.arrayBuffer());
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json', 'content-length': bytes.length }).end(bytes);
      })();
    });
    cleanup.push(() => breaking.close());
    const { gateway, sink } = await gatewayFor([breaking.url, enclave.url], {}, enclave.pcrs, { selection: 'round-robin' });
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_OUTCOME_UNKNOWN']);
    expect(posts).toBe(1);
    // The health interval is a minute here: the check that attests it again is the one the failure started.
    const deadline = Date.now() + 10_000;
    while (sink.entries.filter((e) => e.type === 'attestation').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'attestation', 'attestation']);
    expect((await memberOf(gateway)).state).toBe('ready');
  });
});

it('an answer signed under a receipt key the enclave was not attested with: 502 ENCLAVE_IDENTITY_CHANGED, and the enclave is attested again before it serves', async () => {
  const relay = await impostor();
  const foreignKid = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'not-the-attested-kid' })).toString('base64url');
  let swap = true;
  relay.rewrite = (path, answer) => (swap && path.endsWith('/infer') ? { ...answer, headers: { ...answer.headers, 'teegate-receipt': `${foreignKid}.e30.c2ln` } } : answer);
  const { gateway, sink } = await gatewayFor(relay.url);
  const res = await infer(gateway);
  expect([res.status, res.json.code]).toEqual([502, 'ENCLAVE_IDENTITY_CHANGED']);
  swap = false;
  // The health interval is a minute here: the attestation that follows is the one the answer started.
  const deadline = Date.now() + 10_000;
  while (sink.entries.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'attestation']); // the foreign receipt is not logged
  expect((await memberOf(gateway)).state).toBe('ready');
  expect((await infer(gateway)).status).toBe(200);
});

describe('an enclave restarted under the same address', () => {
  async function enclaveView(gateway: RunningGateway): Promise<{ state: string; boot_id?: string; document?: string; manifest?: unknown }> {
    return ((await (await fetch(`${gateway.url}/v1/enclaves`)).json()) as { enclaves: { state: string; boot_id?: string; document?: string; manifest?: unknown }[] }).enclaves[0]!;
  }

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not reached in 10 s: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('between two health checks (no failed check) is out of rotation until its new attestation is verified and logged', async () => {
    const restarted = await startTestEnclave(ca, tinyModelConfigs());
    cleanup.push(() => restarted.close());
    const relay = await impostor();
    const { gateway, sink } = await gatewayFor(relay.url, {}, enclave.pcrs, { healthIntervalMs: 100 });
    expect(await enclaveView(gateway)).toMatchObject({ state: 'ready', boot_id: enclave.manifest.boot_id });
    // The new boot answers its attestation slowly, so the time it is not yet verified can be seen.
    relay.rewrite = async (path, answer) => {
      if (path.startsWith('/attestation')) await new Promise((r) => setTimeout(r, 1500));
      return answer;
    };
    relay.target = restarted.url;
    await until(async () => (await enclaveView(gateway)).state === 'pending', 'the member is pending');
    expect(await infer(gateway)).toMatchObject({ status: 503, json: { code: 'NO_ENCLAVE_AVAILABLE' } });
    await until(async () => (await enclaveView(gateway)).state === 'ready', 'the member is ready again');
    expect((await enclaveView(gateway)).boot_id).toBe(restarted.manifest.boot_id);
    expect((await infer(gateway)).status).toBe(200);
    expect(sink.entries.map((e) => e.type)).toEqual(['attestation', 'attestation', 'receipt']);
    expect(sink.entries[1]).toMatchObject({ manifest: { boot_id: restarted.manifest.boot_id } });
  });

  it('whose new attestation is rejected no longer shows its previous boot document or manifest', async () => {
    const relay = await impostor();
    const { gateway } = await gatewayFor(relay.url, {}, enclave.pcrs, { healthIntervalMs: 100 });
    expect(await enclaveView(gateway)).toMatchObject({ state: 'ready', boot_id: enclave.manifest.boot_id });
    relay.rewrite = (path, answer) => {
      if (path === '/health') return { ...answer, body: Buffer.from(JSON.stringify({ ...JSON.parse(answer.body.toString()), boot_id: 'another-boot' })) };
      return path === '/attestation' ? reSigned(answer, { pcr0: new Uint8Array(48).fill(0x5a) }) : answer;
    };
    await until(async () => (await enclaveView(gateway)).state === 'rejected', 'the member is rejected');
    const view = await enclaveView(gateway);
    expect([view.boot_id, view.document, view.manifest]).toEqual([undefined, undefined, undefined]);
  });
});

it('an attestation that completes after the gateway began to stop is neither logged nor admitted', async () => {
  const relay = await impostor();
  let healthy = false;
  let attesting: () => void = () => undefined;
  const attestationAsked = new Promise<void>((resolve) => (attesting = resolve));
  relay.rewrite = async (path, answer) => {
    if (path === '/health' && !healthy) return { ...answer, status: 503 };
    if (path.startsWith('/attestation')) {
      attesting();
      await new Promise((r) => setTimeout(r, 500));
    }
    return answer;
  };
  const { gateway, sink } = await gatewayFor(relay.url, {}, enclave.pcrs, { healthIntervalMs: 100 });
  expect((await memberOf(gateway)).state).toBe('unhealthy');
  healthy = true;
  await attestationAsked; // a health check is now admitting it
  await gateway.close();
  expect(sink.entries).toHaveLength(0);
  expect(gateway.pool.members[0]!.state).not.toBe('ready');
  // A stopped pool checks nothing: no request reaches the enclave.
  let asked = 0;
  relay.rewrite = (_path, answer) => (asked++, answer);
  await gateway.pool.check(gateway.pool.members[0]!);
  expect(asked).toBe(0);
});

it('checks of one enclave that overlap share one run: it is attested, and its attestation logged, once', async () => {
  const relay = await impostor();
  let healthy = false;
  relay.rewrite = (path, answer) => (path === '/health' && !healthy ? { ...answer, status: 503 } : answer);
  const { gateway, sink } = await gatewayFor(relay.url);
  expect((await memberOf(gateway)).state).toBe('unhealthy');
  healthy = true;
  const member = gateway.pool.members[0]!;
  await Promise.all([gateway.pool.check(member), gateway.pool.check(member), gateway.pool.checkAll()]);
  expect(member.state).toBe('ready');
  expect(sink.entries.map((e) => e.type)).toEqual(['attestation']);
});

describe('an enclave that became unreachable after it was admitted', () => {
  it('limits.maxAttempts bounds the enclaves one request tries: with 1, the request that found it gone is 503 NO_ENCLAVE_AVAILABLE', async () => {
    const gone = await Impostor.start(enclave.url);
    const { gateway } = await gatewayFor([gone.url, enclave.url], { maxAttempts: 1 }, enclave.pcrs, { selection: 'round-robin' });
    await gone.close(); // nothing listens there any more: the request never reaches an enclave
    const res = await infer(gateway);
    expect([res.status, res.json.code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
    expect(res.json.message).toContain('enclave-0');
    expect((await infer(gateway)).status).toBe(200); // it was taken out: the next one goes to enclave-1
  });

  it('with limits.maxAttempts 2, the same request moves on to the other enclave', async () => {
    const gone = await Impostor.start(enclave.url);
    const { gateway } = await gatewayFor([gone.url, enclave.url], { maxAttempts: 2 }, enclave.pcrs, { selection: 'round-robin' });
    await gone.close();
    const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
    expect([res.status, res.headers.get('teegate-enclave')]).toEqual([200, 'enclave-1']);
  });

  it('a sealed request for its seal key is 503 NO_ENCLAVE_AVAILABLE (retry), not JWE_KEY_MISMATCH, while another enclave serves the model', async () => {
    const other = await startTestEnclave(ca, tinyModelConfigs());
    cleanup.push(() => other.close());
    const gone = await Impostor.start(enclave.url);
    const { gateway } = await gatewayFor([gone.url, other.url]);
    await gone.close();
    const sealed = await sealRequest(enclave.manifest, affineRequest());
    const res = await fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/jose', 'teegate-seal-kid': enclave.manifest.keys.seal.kid }, body: sealed.jwe });
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
  });
});

it('the receipt of an answer cut off after its headers is not logged when it is not under the enclave\'s attested key', async () => {
  const foreign = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'not-the-attested-kid' })).toString('base64url')}.e30.c2ln`;
  const upstream = await cutOffAfterHeaders({ 'teegate-receipt': foreign });
  cleanup.push(() => upstream.close());
  const { gateway, sink } = await gatewayFor(upstream.url);
  const res = await infer(gateway);
  expect([res.status, res.json.code]).toEqual([502, 'UPSTREAM_OUTCOME_UNKNOWN']);
  expect(sink.entries.map((e) => e.type)).toEqual(['attestation']);
});

describe('pool.selection', () => {
  /** Starts one slow inference (its enclave holds it `delayMs`), then two more one after another: the enclaves that served those two. */
  async function servedWhileOneIsSlow(selection: string): Promise<(string | null)[]> {
    const [slow, fast] = [await impostor(), await impostor()];
    const { gateway } = await gatewayFor([slow.url, fast.url], {}, enclave.pcrs, { selection });
    slow.delayMs = 1500;
    const post = () => fetch(`${gateway.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(affineRequest()) });
    const first = post(); // the pool's first pick: enclave-0, the slow one
    await new Promise((r) => setTimeout(r, 200));
    const served: (string | null)[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await post();
      expect(res.status).toBe(200);
      served.push(res.headers.get('teegate-enclave'));
    }
    const held = await first;
    expect([held.status, held.headers.get('teegate-enclave')]).toEqual([200, 'enclave-0']);
    return served;
  }

  it('least-in-flight sends new requests past an enclave that is still busy with one', async () => {
    expect(await servedWhileOneIsSlow('least-in-flight')).toEqual(['enclave-1', 'enclave-1']);
  });

  it('round-robin takes the enclaves in turn, busy or not', async () => {
    expect(await servedWhileOneIsSlow('round-robin')).toEqual(['enclave-1', 'enclave-0']);
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
