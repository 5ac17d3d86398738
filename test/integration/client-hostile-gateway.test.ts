/**
 * The client SDK against a hostile gateway on loopback: a real enclave (dev NSM) stands behind a
 * gateway written here, which relays the enclave's evidence and answers, and which a test can make
 * lie in one way at a time. Every lie the SDK can see without a signature check is refused with a
 * typed error (CLIENT_RESPONSE_INVALID, CLIENT_FETCH_FAILED, CLIENT_ENCLAVE_UNKNOWN, or an
 * AttestationRejectedError naming the step), never taken as evidence.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromHex, toBase64 } from '../../attestation/bytes';
import { DevAttester } from '../../attestation/dev/dev-attester';
import { jwkToSpki, manifestDigest } from '../../attestation/manifest';
import { connect, type ConnectOptions, type TeegateClient } from '../../attestation/client';
import { TeegateClient as Client } from '../../attestation/client/client';
import { AttestationRejectedError } from '../../attestation/client/enclave-attestation';
import { MAX_ANSWER_BYTES } from '../../attestation/client/http';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import type { RunningEnclave } from '../../enclave/main';
import { policyFor, startTestEnclave, testModelConfigs } from '../support/gateway-harness';
import { serveHttp, type LoopbackServer } from '../support/loopback';
import { affineRequest } from '../support/tiny-models';

jest.setTimeout(60_000);

/** One lie of the gateway's: the answer to a request, or undefined to relay it faithfully. */
type Lie = (req: IncomingMessage, res: ServerResponse, path: string) => boolean | Promise<boolean>;

let ca: DevCa;
let enclave: RunningEnclave;
let gateway: LoopbackServer;
let lie: Lie | undefined;

const X = affineRequest().inputs;

function send(res: ServerResponse, status: number, body: string, type = 'application/json', headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** A request body as text (the client sends JSON or a compact JWE). */
function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString('utf8'))).on('error', reject);
  });
}

/** What an honest gateway lists for its one enclave. */
function honestListing(): { enclaves: Record<string, unknown>[] } {
  return { enclaves: [{ id: 'enclave-0', state: 'ready', boot_id: enclave.manifest.boot_id, document: toBase64(enclave.bootDocument), manifest: enclave.manifest }] };
}

/** The honest gateway's answers: attestation with a nonce, the listing, inference relayed. */
async function relay(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  if (url.pathname === '/v1/attestation') {
    const answer = await fetch(`${enclave.url}/attestation?nonce=${url.searchParams.get('nonce') ?? ''}`);
    return send(res, answer.status, await answer.text(), 'application/json', { 'teegate-enclave': 'enclave-0' });
  }
  if (url.pathname === '/v1/enclaves') return send(res, 200, JSON.stringify(honestListing()));
  if (req.method === 'POST' && url.pathname.startsWith('/v2/models/')) {
    const type = req.headers['content-type'] ?? 'application/json';
    const answer = await fetch(`${enclave.url}${url.pathname}`, { method: 'POST', headers: { 'content-type': type }, body: await readAll(req) });
    return send(res, answer.status, await answer.text(), answer.headers.get('content-type') ?? '', { 'teegate-enclave': 'enclave-0' });
  }
  send(res, 404, JSON.stringify({ code: 'ROUTE_NOT_FOUND', message: `no route ${url.pathname}` }));
}

beforeAll(async () => {
  ca = await createDevCa();
  enclave = await startTestEnclave(ca, testModelConfigs());
  gateway = await serveHttp((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    void (async () => {
      if (lie && (await lie(req, res, url.pathname))) return;
      await relay(req, res, url);
    })().catch(() => res.destroy());
  });
});

afterEach(() => {
  lie = undefined;
});

afterAll(async () => {
  await gateway?.close();
  await enclave?.close();
});

function options(extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return { policy: policyFor(enclave.pcrs), rootCertificates: [ca.rootPem], ...extra };
}

/** A lie told on one path (GET or POST), by answering `body` (a string, or the JSON of an object). */
function answerOn(path: string, body: unknown, type = 'application/json'): Lie {
  return (_req, res, p) => {
    if (p !== path) return false;
    send(res, 200, typeof body === 'string' ? body : JSON.stringify(body), type);
    return true;
  };
}

describe('the client is usable only once attested', () => {
  it('asks for the attestation before connect() or refresh(): REQUEST_INVALID', () => {
    const client = new Client(gateway.url, options());
    expect(() => client.attestation).toThrow(expect.objectContaining({ code: 'REQUEST_INVALID', message: 'not attested yet: call connect() or refresh()' }));
  });

  it('without any fetch (an old runtime, none passed): REQUEST_INVALID before any request', () => {
    const saved = globalThis.fetch;
    try {
      (globalThis as { fetch?: unknown }).fetch = undefined;
      expect(() => new Client(gateway.url, options())).toThrow(expect.objectContaining({ code: 'REQUEST_INVALID', message: 'no fetch available: pass options.fetch' }));
    } finally {
      globalThis.fetch = saved;
    }
  });

  it('the honest relay attests and infers (the lies below change one thing of this)', async () => {
    const client = await connect(gateway.url, options());
    expect(client.attestation.bootId).toBe(enclave.manifest.boot_id);
    const r = await client.infer('affine', X, { sealed: false });
    expect(r.report.valid).toBe(true);
  });
});

describe('a gateway that lies about the attestation', () => {
  it.each([
    ['no document', { manifest: {} }],
    ['an empty document', { document: '', manifest: {} }],
    ['a document that is a number', { document: 7, manifest: {} }],
  ])('answers %s: CLIENT_RESPONSE_INVALID', async (_label, body) => {
    lie = answerOn('/v1/attestation', body);
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/attestation answer has no document' });
  });

  it('answers a document that is not base64: CLIENT_RESPONSE_INVALID', async () => {
    lie = answerOn('/v1/attestation', { document: 'not base64!', manifest: enclave.manifest });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/attestation answer: document is not base64' });
  });

  it.each([
    ['enclaves that is not an array', { enclaves: { 0: {} } }],
    ['no enclaves', {}],
    ['more than 1024 enclaves', { enclaves: Array.from({ length: 1025 }, (_, i) => ({ id: `e${i}`, state: 'ready' })) }],
  ])('lists %s: CLIENT_RESPONSE_INVALID', async (_label, body) => {
    lie = answerOn('/v1/enclaves', body);
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/enclaves: enclaves is not an array' });
  });

  it.each([
    ['no id', { state: 'ready' }],
    ['a numeric id', { id: 0, state: 'ready' }],
    ['no state', { id: 'enclave-0' }],
  ])('lists an enclave with %s: CLIENT_RESPONSE_INVALID', async (_label, entry) => {
    lie = answerOn('/v1/enclaves', { enclaves: [entry, ...honestListing().enclaves] });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/enclaves enclaves[0] has no id or state' });
  });

  it('lists the enclave with a boot document that is not base64: CLIENT_RESPONSE_INVALID', async () => {
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], document: '%%%' }] });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/enclaves enclaves[0]: document is not base64' });
  });

  it('lists the enclave with a boot document that is not an attestation: rejected at the attestation step, naming the boot document', async () => {
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], document: toBase64(Uint8Array.of(0x84, 1, 2, 3, 4)) }] });
    const err = await connect(gateway.url, options()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationRejectedError);
    expect(err).toMatchObject({ code: 'COSE_MALFORMED', stage: 'attestation', message: expect.stringMatching(new RegExp(`^boot document of ${enclave.manifest.boot_id}: `)) });
    // The fresh document itself passed every step: the refusal is the boot document's.
    expect((err as AttestationRejectedError).steps.every((s) => s.status === 'passed')).toBe(true);
  });

  it('lists the enclave with a boot document bound to another manifest: MANIFEST_BINDING_MISMATCH on the boot document', async () => {
    const other = { ...enclave.manifest, issued_at: '2000-01-01T00:00:00.000Z' };
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], manifest: other }] });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'MANIFEST_BINDING_MISMATCH', stage: 'attestation', message: expect.stringContaining(`boot document of ${enclave.manifest.boot_id}: `) });
  });
});

describe('boot documents the operator made itself (the NSM signs whatever user_data and public_key the enclave asks for)', () => {
  /** A boot document from a dev attester under the same root, for the enclave's real manifest and receipt key unless told otherwise. */
  async function madeBootDocument(over: { debug?: boolean; userData?: Uint8Array; now?: () => number } = {}): Promise<Uint8Array> {
    const pcrs = new Map(Object.entries(enclave.pcrs).map(([i, hex]) => [Number(i), fromHex(hex)] as [number, Uint8Array]));
    const attester = await DevAttester.create({ ca, pcrs, ...(over.debug ? { debug: true } : {}), ...(over.now ? { now: over.now } : {}) });
    return attester.attest({ userData: over.userData ?? (await manifestDigest(enclave.manifest)), publicKey: await jwkToSpki(enclave.manifest.keys.receipt) });
  }

  it('a debug-mode enclave\'s document carrying the real manifest and key: DEBUG_MODE at the attestation step, as the fresh one would be', async () => {
    const document = await madeBootDocument({ debug: true });
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], document: toBase64(document) }] });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'DEBUG_MODE', stage: 'attestation' });
  });

  it('a document of the same image bound to another manifest with the same receipt key: USER_DATA_MISMATCH at the attestation step', async () => {
    const other = await manifestDigest({ ...enclave.manifest, boot_id: `${enclave.manifest.boot_id}-other` });
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], document: toBase64(await madeBootDocument({ userData: other })) }] });
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'USER_DATA_MISMATCH', stage: 'attestation' });
  });

  it('an honest boot document older than its leaf certificate (a long-running enclave) is checked at its own time, not refused', async () => {
    const document = await madeBootDocument({ now: () => Date.now() - 4 * 3600_000 });
    lie = answerOn('/v1/enclaves', { enclaves: [{ ...honestListing().enclaves[0], document: toBase64(document) }] });
    const client = await connect(gateway.url, options({ maxAgeMs: 60_000 }));
    expect(client.attestation.bootId).toBe(enclave.manifest.boot_id);
  });
});

describe('a gateway that lies at the HTTP level', () => {
  it('declares an answer longer than the client reads: CLIENT_RESPONSE_INVALID before reading it', async () => {
    lie = (_req, res, path) => {
      if (path !== '/v1/attestation') return false;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(MAX_ANSWER_BYTES + 1) });
      res.write('{"document":"'); // and never more
      return true;
    };
    // A client that read on would wait for the rest until its timeout (then CLIENT_FETCH_FAILED).
    await expect(connect(gateway.url, options({ timeoutMs: 5000 }))).rejects.toMatchObject({
      code: 'CLIENT_RESPONSE_INVALID',
      message: expect.stringMatching(new RegExp(`^/v1/attestation\\?nonce=[0-9a-f]{64}: answer of ${MAX_ANSWER_BYTES + 1} bytes exceeds ${MAX_ANSWER_BYTES}$`)),
    });
  });

  it('cuts the connection in the middle of an answer: CLIENT_FETCH_FAILED', async () => {
    lie = (_req, res, path) => {
      if (path !== '/v1/attestation') return false;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"document":"', () => res.socket?.destroy());
      return true;
    };
    await expect(connect(gateway.url, options())).rejects.toMatchObject({ code: 'CLIENT_FETCH_FAILED', message: expect.stringMatching(/^\/v1\/attestation\?nonce=[0-9a-f]{64}: reading the answer failed: /) });
  });
});

describe('a gateway that lies about inference', () => {
  let client: TeegateClient;
  beforeAll(async () => {
    client = await connect(gateway.url, options());
  });

  it.each([
    ['as JSON', 'application/json'],
    ['with no content type', ''],
  ])('answers a sealed request %s (not a JWE): CLIENT_RESPONSE_INVALID', async (_label, type) => {
    lie = async (req, res, path) => {
      if (path !== '/v2/models/affine/infer') return false;
      await readAll(req);
      const plain = await fetch(`${enclave.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: X }) });
      const body = await plain.text();
      res.writeHead(200, { 'content-length': Buffer.byteLength(body), ...(type ? { 'content-type': type } : {}) });
      res.end(body);
      return true;
    };
    await expect(client.infer('affine', X)).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: `sealed request answered with ${type || 'no content type'}, not application/jose` });
  });

  it('names an issuer it cannot list, then answers the listing with garbage: the listing error, not a report against another enclave', async () => {
    // The receipt's `iss` (read before any signature check) picks the enclave to verify against;
    // the gateway's broken listing of it is an error of the call, not a silently skipped lookup.
    const ghost = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from('{"iss":"ghost-boot"}').toString('base64url')}.c2ln`;
    lie = async (req, res, path) => {
      if (path === '/v1/enclaves') return (send(res, 200, '{"enclaves":"none"}'), true);
      if (path !== '/v2/models/affine/infer') return false;
      const answer = await fetch(`${enclave.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: await readAll(req) });
      const body = (await answer.json()) as { parameters: Record<string, unknown> };
      body.parameters.receipt = ghost;
      send(res, 200, JSON.stringify(body));
      return true;
    };
    await expect(client.infer('affine', X, { sealed: false })).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: '/v1/enclaves: enclaves is not an array' });
  });

  it('lists an enclave under a boot id it no longer has: CLIENT_ENCLAVE_UNKNOWN, not the enclave that answers now', async () => {
    // The first listing names the enclave's previous boot; the attestation through the gateway then
    // shows another boot id: the client refuses to take that enclave for the one it asked about.
    let listings = 0;
    lie = (_req, res, path) => {
      if (path !== '/v1/enclaves' || listings++ > 0) return false;
      send(res, 200, JSON.stringify({ enclaves: [{ ...honestListing().enclaves[0], boot_id: 'previous-boot' }] }));
      return true;
    };
    await expect(client.enclave('previous-boot')).rejects.toMatchObject({
      code: 'CLIENT_ENCLAVE_UNKNOWN',
      message: `enclave enclave-0 now has boot id ${enclave.manifest.boot_id}, not previous-boot`,
    });
    expect(listings).toBe(2);
  });
});
