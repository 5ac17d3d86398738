/**
 * The enclave's HTTP server (docs/enclave-api.md). Plain node:http: it is on the inference hot
 * path and needs no framework. Every error is JSON {code, message} with the registry's status.
 */
import { formatServerTiming, RECEIPT_HEADER, SERVER_TIMING_HEADER } from '../attestation/headers';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { totalmem } from 'node:os';
import { fromHex, toBase64 } from '../attestation/bytes';
import { TeegateError, isTeegateError } from '../attestation/errors';
import { answerNodeErrors, connectionsCheckingInterval, continueIfExpected, requestFormRefusal } from '../attestation/http-error-answer';
import type { EnclaveService } from './enclave-service';
import { INFER_REQUEST_BUDGET, parseJsonWithin } from './json-budget';
import { MODEL_NAME } from './models/model-config';

export interface EnclaveHttpOptions {
  readonly port?: number;
  readonly host?: string;
  /** Request body limit in bytes (default 32 MiB: a 16 MiB tensor as JSON text). */
  readonly maxBodyBytes?: number;
  /**
   * Bytes of request bodies held at once, across requests, from the first byte read (or the
   * declared length) until the answer: more is 429 ENCLAVE_BUSY before anything runs, so a flood
   * of large requests cannot exhaust the enclave's memory. Default: an eighth of the memory
   * (os.totalmem, the enclave's own inside Nitro), and at least two bodies at the limit.
   */
  readonly maxPendingBytes?: number;
  /**
   * Node's server timeouts, ms: a whole request (default 120 s), its request line and headers
   * (66 s, at most the request's), an idle kept-alive connection (65 s). A request not sent in time
   * is 408 REQUEST_TIMEOUT.
   */
  readonly timeouts?: { readonly requestMs?: number; readonly headersMs?: number; readonly keepAliveMs?: number };
  readonly log?: (event: Record<string, unknown>) => void;
}

/** `/v2/models/{m}[/versions/{v}][/infer]`, names and versions as models are configured. */
const MODEL_ROUTE = new RegExp(`^/v2/models/(${MODEL_NAME})(?:/versions/(${MODEL_NAME}))?(/infer)?$`);

function send(res: ServerResponse, status: number, body: string, type = 'application/json', headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = isTeegateError(err) ? err : new TeegateError('INTERNAL', 'internal error');
  if (e.code === 'REQUEST_ABANDONED') {
    res.statusCode = e.status; // for the log line; nobody is answered
    res.destroy();
    return;
  }
  // After a body over a limit the rest of it is not read: the connection closes once answered.
  const unread = e.code === 'BODY_TOO_LARGE' || e.code === 'ENCLAVE_BUSY';
  if (!res.headersSent) send(res, e.status, JSON.stringify(e.toJSON()), 'application/json', unread ? { connection: 'close' } : {});
  else res.destroy();
}

/** The bytes of request bodies the enclave holds at once (EnclaveHttpOptions.maxPendingBytes). */
class PendingBytes {
  private used = 0;
  constructor(readonly limit: number) {}
  /** Takes `n` more bytes for a request, or false when that would exceed the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used -= n;
  }
}

function busy(pending: PendingBytes): TeegateError {
  return new TeegateError('ENCLAVE_BUSY', `this request would take the bytes of requests the enclave holds past its limit of ${pending.limit}: retry, on another enclave or later`);
}

/**
 * The request body, up to `limit` bytes. Over it (declared, or as it streams in), BODY_TOO_LARGE:
 * the rest is discarded, not buffered, until the 413 is sent and the connection closed. The bytes
 * are taken from `pending` as they are declared or arrive (`held` counts them; the caller gives
 * them back once answered); when `pending` has no room, ENCLAVE_BUSY the same way.
 */
function readBody(req: IncomingMessage, res: ServerResponse, limit: number, pending: PendingBytes, held: { bytes: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new TeegateError('BODY_TOO_LARGE', `request body of ${declared} bytes exceeds ${limit}`));
      req.resume();
      return;
    }
    if (!pending.take(declared)) {
      reject(busy(pending));
      req.resume();
      return;
    }
    held.bytes = declared;
    // A client waiting for `100 Continue` is asked for the body only now, past the checks above.
    continueIfExpected(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (err: TeegateError): void => {
      req.removeListener('data', onData);
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return refuse(new TeegateError('BODY_TOO_LARGE', `request body exceeds ${limit} bytes`));
      if (size > held.bytes) {
        if (!pending.take(size - held.bytes)) return refuse(busy(pending));
        held.bytes = size;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    // The client went away mid-body: a typed error (nobody reads the answer), not an unexpected one.
    req.on('error', () => reject(new TeegateError('REQUEST_INVALID', 'the connection closed before the request body ended')));
  });
}

function parseJson(body: Buffer): unknown {
  return parseJsonWithin(body, INFER_REQUEST_BUDGET, 'request body', () => {
    throw new TeegateError('REQUEST_INVALID', 'request body is not valid UTF-8 JSON');
  });
}

function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://enclave');
  } catch {
    throw new TeegateError('REQUEST_INVALID', 'the request target is not a valid path');
  }
}

export function createEnclaveHttpHandler(service: EnclaveService, options: EnclaveHttpOptions = {}) {
  const limit = options.maxBodyBytes ?? 32 * 1024 * 1024;
  const pendingLimit = options.maxPendingBytes ?? Math.max(2 * limit, Math.floor(totalmem() / 8));
  // Below the body limit, a large request would be ENCLAVE_BUSY (retry) forever, even when idle.
  if (!Number.isSafeInteger(pendingLimit) || pendingLimit < limit) {
    throw new TeegateError('CONFIG_INVALID', `maxPendingBytes (${pendingLimit}) must be a whole number of at least the body limit, ${limit} bytes`);
  }
  const pending = new PendingBytes(pendingLimit);
  const log = options.log ?? (() => undefined);

  async function attestation(url: URL, res: ServerResponse): Promise<void> {
    const nonces = url.searchParams.getAll('nonce');
    if (nonces.length > 1) throw new TeegateError('NONCE_INVALID', 'one nonce, not several');
    const nonceHex = nonces[0];
    let document = service.bootDocument;
    if (nonceHex !== undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(nonceHex)) throw new TeegateError('NONCE_INVALID', 'nonce must be exactly 64 hex characters');
      document = await service.attest(fromHex(nonceHex));
    }
    send(res, 200, JSON.stringify({ document: toBase64(document), manifest: service.manifest }));
  }

  async function infer(model: string, version: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/jose') {
      req.resume();
      throw new TeegateError('MEDIA_TYPE_UNSUPPORTED', 'Content-Type must be application/json (plain) or application/jose (sealed)');
    }
    // The body's bytes are held, against maxPendingBytes, until the request is answered.
    const held = { bytes: 0 };
    try {
      const body = await readBody(req, res, limit, pending, held);
      const started = performance.now();
      // Checked just before a receipt number is spent: a caller that has gone (closed, or half-closed,
      // which ends an HTTP/1.1 connection here) could not receive the receipt, nor a gateway log it.
      // The request's socket: a pipelined request's response has none until the ones before it are sent.
      const answerable = (): boolean => req.socket.writable && !req.socket.destroyed;
      const { answer, receipt } =
        type === 'application/jose'
          ? await service.inferSealed(model, body.toString('latin1').trim(), { version, answerable }).then(({ jwe, receipt }) => ({ answer: jwe, receipt }))
          : await service.infer(model, parseJson(body), { version, answerable }).then(({ response, receipt }) => ({ answer: JSON.stringify(response), receipt }));
      send(res, 200, answer, type, { [RECEIPT_HEADER]: receipt, [SERVER_TIMING_HEADER]: formatServerTiming({ infer: performance.now() - started }) });
    } finally {
      pending.give(held.bytes);
    }
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    try {
      const refusal = requestFormRefusal(req);
      if (refusal) {
        req.resume();
        res.setHeader('connection', 'close'); // its body, if any, is not read as sent
        throw refusal;
      }
      const url = requestUrl(req.url);
      const path = url.pathname;
      if (req.method === 'POST') {
        const m = MODEL_ROUTE.exec(path);
        if (m && m[3]) return await infer(m[1]!, m[2], req, res);
        req.resume();
        throw new TeegateError('ROUTE_NOT_FOUND', `no route POST ${path}`);
      }
      if (req.method !== 'GET') throw new TeegateError('ROUTE_NOT_FOUND', `no route ${req.method} ${path}`);
      if (path === '/health') {
        const health = service.health();
        return send(res, health.status === 'ready' ? 200 : 503, JSON.stringify(health));
      }
      if (path === '/attestation') return await attestation(url, res);
      if (path === '/manifest') return send(res, 200, JSON.stringify(service.manifest));
      if (path === '/v2/models') return send(res, 200, JSON.stringify({ models: service.modelNames().map((name) => ({ name, versions: service.modelMetadata(name).versions })) }));
      const m = MODEL_ROUTE.exec(path);
      if (m && !m[3]) return send(res, 200, JSON.stringify(service.modelMetadata(m[1]!, m[2])));
      throw new TeegateError('ROUTE_NOT_FOUND', `no route GET ${path}`);
    } catch (err) {
      if (!isTeegateError(err)) log({ level: 'error', msg: 'unexpected error', err: String(err) });
      sendError(res, err);
    } finally {
      log({ level: 'debug', method: req.method, path: req.url, status: res.statusCode, ms: Math.round((performance.now() - started) * 100) / 100 });
    }
  };
}

export async function listenEnclaveHttp(service: EnclaveService, options: EnclaveHttpOptions = {}): Promise<{ server: Server; url: string }> {
  const handler = createEnclaveHttpHandler(service, options);
  // Host is checked by the handler, so that its absence is answered in JSON too.
  const requestTimeout = options.timeouts?.requestMs ?? 120_000;
  // Node requires headersTimeout <= requestTimeout.
  const headersTimeout = Math.min(options.timeouts?.headersMs ?? 66_000, requestTimeout);
  const server = createServer(
    {
      requireHostHeader: false,
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: options.timeouts?.keepAliveMs ?? 65_000,
      connectionsCheckingInterval: connectionsCheckingInterval(headersTimeout),
    },
    (req, res) => void handler(req, res),
  );
  // Malformed HTTP, oversized headers, a request not sent in time, an Expect other than
  // 100-continue, CONNECT: JSON like every other error, where Node would answer by itself; and
  // `100 Continue` only once a body is to be read.
  answerNodeErrors(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return { server, url: `http://${host}:${port}` };
}
