/**
 * The gateway's relay and pool rules against real enclaves on loopback, with a recording TCP proxy
 * to see the bytes and to inject failures: sealed bodies are relayed byte for byte and never
 * parsed; a request that never reached an enclave moves to another; a broken connection after
 * sending is 502 UPSTREAM_OUTCOME_UNKNOWN, a slow answer 504 UPSTREAM_TIMEOUT; an enclave whose
 * attestation fails the policy gets no traffic; a restarted enclave is re-attested before use;
 * shutdown lets in-flight requests finish.
 */
import { Writable } from 'node:stream';
import { fromBase64 } from '../../attestation/bytes';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt, parseReceiptClaims } from '../../attestation/receipt';
import { TeegateError } from '../../attestation/errors';
import { sealRequest } from '../../attestation/sealed-request';
import type { InferTensor } from '../../attestation/tensors';
import type { RunningEnclave } from '../../enclave/main';
import type { ModelConfig } from '../../enclave/models/model-config';
import { MemoryReceiptSink } from '../../gateway/log/receipt-sink';
import { createLogger } from '../../gateway/observability/logger';
import { GatewayMetrics } from '../../gateway/observability/metrics';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { affineRequest } from '../support/tiny-models';
import { RecordingProxy, policyFor, startTestEnclave, testGatewayConfig, testKeys, testModelConfigs } from '../support/gateway-harness';

jest.setTimeout(60_000);

let ca: DevCa;
let models: ModelConfig[];
const cleanup: (() => Promise<void>)[] = [];

const quietLogger = () => createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

async function gatewayFor(enclaveUrls: string[], extra: Record<string, unknown> = {}, pcrs?: Readonly<Record<number, string>>): Promise<{ gateway: RunningGateway; sink: MemoryReceiptSink; metrics: GatewayMetrics }> {
  const sink = new MemoryReceiptSink();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const gateway = await startGateway(
    testGatewayConfig({
      enclaves: enclaveUrls,
      attestation: { rootCertificates: [ca.rootPem], policy: policyFor(pcrs ?? enclaveA.pcrs) },
      auth: { disabled: true },
      ...extra,
    }),
    { sink, metrics, logger: quietLogger() },
  );
  cleanup.push(() => gateway.close());
  return { gateway, sink, metrics };
}

async function infer(url: string, body: string | Uint8Array = JSON.stringify(affineRequest()), type = 'application/json', headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': type, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

async function enclavesOf(url: string) {
  return ((await (await fetch(`${url}/v1/enclaves`)).json()) as { enclaves: { id: string; state: string; boot_id?: string; manifest?: EnclaveManifest; document?: string; last_error?: { code: string; message: string } }[] }).enclaves;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

let enclaveA: RunningEnclave;
let enclaveB: RunningEnclave;

beforeAll(async () => {
  ca = await createDevCa();
  models = testModelConfigs();
  enclaveA = await startTestEnclave(ca, models);
  enclaveB = await startTestEnclave(ca, models);
});

afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

afterAll(async () => {
  await enclaveA?.close();
  await enclaveB?.close();
});

describe('opaque relay', () => {
  it('relays a sealed JWE and the sealed answer byte for byte', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    cleanup.push(() => proxy.close());
    const { gateway } = await gatewayFor([proxy.url]);
    const sealed = await sealRequest(enclaveA.manifest, affineRequest());
    const res = await infer(gateway.url, sealed.jwe, 'application/jose');
    expect(res.status).toBe(200);
    expect(proxy.upstream().includes(Buffer.from(`\r\n\r\n${sealed.jwe}`))).toBe(true);
    expect(proxy.downstream().includes(Buffer.from(`\r\n\r\n${res.text}`))).toBe(true);
    await expect(sealed.open(res.text)).resolves.toMatchObject({ model_name: 'affine' });
  });

  it('never parses a sealed body: arbitrary bytes reach the enclave unchanged and its verdict comes back', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    cleanup.push(() => proxy.close());
    const { gateway } = await gatewayFor([proxy.url]);
    const garbage = Uint8Array.from({ length: 600 }, (_, i) => (i * 131 + 7) % 256); // not UTF-8, not JSON, not JOSE
    const res = await infer(gateway.url, garbage, 'application/jose');
    expect([res.status, res.json().code]).toEqual([400, 'JWE_INVALID']);
    expect(proxy.upstream().includes(Buffer.concat([Buffer.from('\r\n\r\n'), Buffer.from(garbage)]))).toBe(true);
  });
});

describe('pool rules', () => {
  it('moves a request that never reached an enclave to another one, and takes the dead one out', async () => {
    const proxy = await RecordingProxy.start(enclaveB.url);
    const { gateway, metrics } = await gatewayFor([enclaveA.url, proxy.url], { pool: { healthIntervalMs: 60_000 } });
    expect((await enclavesOf(gateway.url)).map((e) => e.state)).toEqual(['ready', 'ready']);
    await proxy.close(); // enclave-1 now refuses connections; the health loop has not noticed
    const served = [];
    for (let i = 0; i < 4; i++) {
      const res = await infer(gateway.url);
      expect(res.status).toBe(200);
      served.push(res.headers.get('teegate-enclave'));
    }
    expect(served).toEqual(['enclave-0', 'enclave-0', 'enclave-0', 'enclave-0']);
    expect(await metrics.registry.getSingleMetricAsString('teegate_gateway_upstream_retries_total')).toMatch(/reason="unreachable"\} 1/);
    const states = await enclavesOf(gateway.url);
    expect(states[1]).toMatchObject({ state: 'unhealthy', last_error: { code: expect.stringMatching(/^ECONNREFUSED$/) } });
  });

  it('answers 503 NO_ENCLAVE_AVAILABLE when no enclave can take the request', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    const { gateway } = await gatewayFor([proxy.url], { pool: { healthIntervalMs: 60_000 } });
    await proxy.close();
    const res = await infer(gateway.url);
    expect([res.status, res.json().code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
    expect(res.headers.get('retry-after')).toBe('1');
    expect((await fetch(`${gateway.url}/v2/health/ready`)).status).toBe(503);
  });

  it('answers 502 UPSTREAM_OUTCOME_UNKNOWN when the connection breaks after sending, and recovers', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    cleanup.push(() => proxy.close());
    const { gateway } = await gatewayFor([proxy.url]);
    proxy.mode = 'reset-post';
    const res = await infer(gateway.url);
    expect([res.status, res.json().code]).toEqual([502, 'UPSTREAM_OUTCOME_UNKNOWN']);
    proxy.mode = 'pass';
    await until(async () => (await enclavesOf(gateway.url))[0]!.state === 'ready');
    expect((await infer(gateway.url)).status).toBe(200);
  });

  it('answers 504 UPSTREAM_TIMEOUT when the enclave does not answer in time', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    cleanup.push(() => proxy.close());
    const { gateway } = await gatewayFor([proxy.url], { limits: { upstreamTimeoutMs: 300 } });
    proxy.mode = 'delay-post';
    proxy.delayMs = 1500;
    const started = Date.now();
    const res = await infer(gateway.url);
    expect([res.status, res.json().code]).toEqual([504, 'UPSTREAM_TIMEOUT']);
    expect(Date.now() - started).toBeLessThan(1400);
  });

  it('routes nothing to an enclave whose attestation fails the policy or the pinned root', async () => {
    const wrongPcrs = { ...enclaveA.pcrs, 0: 'ee'.repeat(48) };
    const { gateway, metrics } = await gatewayFor([enclaveA.url], {}, wrongPcrs);
    const [state] = await enclavesOf(gateway.url);
    expect(state).toMatchObject({ state: 'rejected', last_error: { code: 'ENCLAVE_ATTESTATION_REJECTED', message: expect.stringContaining('PCR_MISMATCH') } });
    expect(state!.document).toBeUndefined();
    const res = await infer(gateway.url);
    expect([res.status, res.json().code]).toEqual([503, 'NO_ENCLAVE_AVAILABLE']);
    expect(await metrics.registry.getSingleMetricAsString('teegate_gateway_enclave_verification_failures_total')).toMatch(/enclave="enclave-0",code="PCR_MISMATCH"\} [1-9]/);

    const otherCa = await createDevCa();
    const sink = new MemoryReceiptSink();
    const other = await startGateway(
      testGatewayConfig({ enclaves: [enclaveA.url], attestation: { rootCertificates: [otherCa.rootPem], policy: policyFor(enclaveA.pcrs) }, auth: { disabled: true } }),
      { sink, metrics: new GatewayMetrics({ defaultMetrics: false }), logger: quietLogger() },
    );
    cleanup.push(() => other.close());
    expect((await enclavesOf(other.url))[0]!.last_error!.message).toContain('CHAIN_UNTRUSTED_ROOT');
    expect(sink.entries).toHaveLength(0); // nothing logged for a rejected enclave
  });

  it('re-attests an enclave restarted under the same address before it takes traffic', async () => {
    const restarted = await startTestEnclave(ca, models);
    const port = Number(new URL(restarted.url).port);
    const { gateway, sink } = await gatewayFor([restarted.url], { pool: { healthIntervalMs: 60_000 } });
    const oldBoot = restarted.manifest.boot_id;
    expect((await infer(gateway.url)).status).toBe(200);
    await restarted.close();
    const again = await startTestEnclave(ca, models, port);
    cleanup.push(() => again.close());
    // The health loop is asleep: the first request finds another receipt key and is refused.
    const first = await infer(gateway.url);
    expect([first.status, first.json().code]).toEqual([502, 'ENCLAVE_IDENTITY_CHANGED']);
    await until(async () => (await enclavesOf(gateway.url))[0]!.boot_id === again.manifest.boot_id);
    const res = await infer(gateway.url);
    expect(res.status).toBe(200);
    const body = res.json() as { outputs: InferTensor[]; parameters: { receipt: string; salt: string; log_index: number } };
    const claims = parseReceiptClaims(JSON.parse(Buffer.from(body.parameters.receipt.split('.')[1]!, 'base64url').toString()));
    expect(claims.iss).toBe(again.manifest.boot_id);
    expect(claims.iss).not.toBe(oldBoot);
    // The new boot attestation was logged before the receipt, and the receipt verifies against it.
    const logged = sink.entries.findIndex((e) => e.type === 'attestation' && (e.manifest as EnclaveManifest).boot_id === claims.iss);
    expect(logged).toBeGreaterThanOrEqual(0);
    expect(logged).toBeLessThan(body.parameters.log_index);
    const entry = sink.entries[logged] as { document: Uint8Array; manifest: unknown };
    const attestation = await verifyAttestation(entry.document, { rootCertificates: [ca.rootPem] });
    const manifest = await verifyManifestBinding(attestation, entry.manifest);
    await expect(verifyReceipt({ receipt: body.parameters.receipt, attestation, manifest, inputs: affineRequest().inputs, outputs: body.outputs, salt: body.parameters.salt, sealed: false })).resolves.toBeDefined();
    const listed = (await enclavesOf(gateway.url))[0]!;
    expect(fromBase64(listed.document!)).toEqual(again.bootDocument);
  });
  it('keeps an enclave out, and the gateway up, while its new attestation cannot be logged; admits it once the log recovers', async () => {
    class FailingSink extends MemoryReceiptSink {
      failing = false;
      override async appendAttestation(document: Uint8Array, manifest: unknown): Promise<{ index: number }> {
        if (this.failing) throw new TeegateError('LOG_STORAGE_FAILED', 'disk full');
        return super.appendAttestation(document, manifest);
      }
    }
    const restarted = await startTestEnclave(ca, models);
    const port = Number(new URL(restarted.url).port);
    const sink = new FailingSink();
    const gateway = await startGateway(
      testGatewayConfig({ enclaves: [restarted.url], attestation: { rootCertificates: [ca.rootPem], policy: policyFor(enclaveA.pcrs) }, auth: { disabled: true }, pool: { healthIntervalMs: 100 } }),
      { sink, metrics: new GatewayMetrics({ defaultMetrics: false }), logger: quietLogger() },
    );
    cleanup.push(() => gateway.close());
    expect((await infer(gateway.url)).status).toBe(200);
    sink.failing = true;
    await restarted.close();
    const again = await startTestEnclave(ca, models, port);
    cleanup.push(() => again.close());
    await until(async () => (await enclavesOf(gateway.url))[0]!.last_error?.code === 'LOG_STORAGE_FAILED');
    expect((await enclavesOf(gateway.url))[0]!.state).toBe('unhealthy');
    expect((await infer(gateway.url)).json().code).toBe('NO_ENCLAVE_AVAILABLE');
    sink.failing = false;
    await until(async () => (await enclavesOf(gateway.url))[0]!.state === 'ready');
    expect((await enclavesOf(gateway.url))[0]!.boot_id).toBe(again.manifest.boot_id);
    expect((await infer(gateway.url)).status).toBe(200);
  });
});

describe('anonymous limits', () => {
  it('rate-limits GET /v1/attestation per client address (it costs an NSM call)', async () => {
    const { gateway } = await gatewayFor([enclaveA.url], { limits: { anonymousRateLimit: { requestsPerSecond: 0.01, burst: 1 } } });
    const nonce = 'ab'.repeat(32);
    expect((await fetch(`${gateway.url}/v1/attestation?nonce=${nonce}`)).status).toBe(200);
    const res = await fetch(`${gateway.url}/v1/attestation?nonce=${nonce}`);
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(res.headers.get('retry-after'))).toBe(100);
  });

  it('keys that are not valid are rate-limited per client address, and then every key from it, so a right guess cannot stand out', async () => {
    const { keys, config } = testKeys();
    const { gateway } = await gatewayFor([enclaveA.url], { auth: { keys: config }, limits: { anonymousRateLimit: { requestsPerSecond: 0.01, burst: 2 } } });
    expect((await infer(gateway.url, undefined, undefined, { authorization: `Bearer ${keys.infer}` })).status).toBe(200); // valid keys take nothing from it
    const wrong = { authorization: 'Bearer tg_guessed_0000000000000000000000' };
    const codes: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await infer(gateway.url, undefined, undefined, wrong);
      codes.push([res.status, res.json().code]);
    }
    expect(codes).toEqual([[401, 'AUTH_INVALID'], [401, 'AUTH_INVALID'], [429, 'RATE_LIMITED']]);
    const right = await infer(gateway.url, undefined, undefined, { authorization: `Bearer ${keys.infer}` });
    expect([right.status, right.json().code]).toEqual([429, 'RATE_LIMITED']); // refused before it is checked
    // A missing key is not a guess: it is answered 401 without taking from the client's allowance.
    expect((await infer(gateway.url)).status).toBe(401);
  });

  it('counts the client a trusted proxy names in X-Forwarded-For, and ignores the header from anyone else', async () => {
    const nonce = 'ab'.repeat(32);
    const from = (url: string, client: string) => fetch(`${url}/v1/attestation?nonce=${nonce}`, { headers: { 'x-forwarded-for': client } }).then((r) => r.status);
    const limits = { anonymousRateLimit: { requestsPerSecond: 0.01, burst: 1 } };
    const behindProxy = (await gatewayFor([enclaveA.url], { limits, trustProxies: ['127.0.0.1'] })).gateway;
    expect(await from(behindProxy.url, '198.51.100.1')).toBe(200);
    expect(await from(behindProxy.url, '198.51.100.2')).toBe(200); // another client behind the same proxy
    expect(await from(behindProxy.url, '198.51.100.1')).toBe(429);
    const direct = (await gatewayFor([enclaveA.url], { limits })).gateway; // no proxy trusted: the header is the client's word
    expect(await from(direct.url, '198.51.100.1')).toBe(200);
    expect(await from(direct.url, '198.51.100.2')).toBe(429);
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, then stops accepting', async () => {
    const proxy = await RecordingProxy.start(enclaveA.url);
    cleanup.push(() => proxy.close());
    const { gateway } = await gatewayFor([proxy.url]);
    proxy.mode = 'delay-post';
    proxy.delayMs = 400;
    const inFlight = infer(gateway.url);
    await new Promise((r) => setTimeout(r, 100));
    const closed = gateway.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ model_name: 'affine' });
    await closed;
    await expect(fetch(`${gateway.url}/v2/health/live`)).rejects.toThrow();
  });
});
