/**
 * HTTP/1.1 client to one enclave (docs/enclave-api.md) over a keep-alive agent. Bodies are relayed
 * as raw bytes: nothing is parsed or re-serialised here. Every failure is classified by what the
 * gateway may conclude from it:
 *  - `not-sent`: the connection was never established, so the enclave cannot have run the request
 *    (safe to try another enclave);
 *  - `unknown`:  the connection broke after the request may have reached the enclave;
 *  - `timeout`:  connected, but no complete answer in time (outcome unknown);
 *  - `invalid`:  the answer is unusable (too large).
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { RECEIPT_HEADER } from '../../attestation/headers';

export type UpstreamFailureKind = 'not-sent' | 'unknown' | 'timeout' | 'invalid';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  /**
   * The `teegate-receipt` header of an answer that failed after its headers arrived: the enclave
   * ran the request and signed it, so the gateway logs it although the answer cannot be delivered.
   */
  receipt?: string;
  constructor(
    readonly kind: UpstreamFailureKind,
    message: string,
    readonly errorCode?: string,
  ) {
    super(message);
  }
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface EnclaveClientOptions {
  readonly connectTimeoutMs: number;
  /** Default time for a whole answer once connected. */
  readonly timeoutMs: number;
  /** Largest answer accepted (default 64 MiB). */
  readonly maxResponseBytes?: number;
  readonly maxSockets?: number;
}

export interface UpstreamRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: Buffer;
  readonly contentType?: string;
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Given, a request that times out is answered as `timeout` at once but its connection is not
   * destroyed: it is read in the background, and the receipt of an answer that arrives meanwhile
   * is passed here (the enclave ran the request and signed it; a receipt the gateway drops is a
   * gap in the log). Destroying it at once lost such receipts: an answer already in the socket's
   * buffer was discarded unread, and an enclave that had not yet seen the close (2-16 ms under
   * load) signed an answer into it. The connection stays open for DRAIN_MS at most (the timeout,
   * if shorter), then only its sending side is closed: an enclave that sees that end signs nothing
   * more (REQUEST_ABANDONED), and one that signed before it sees it still has its answer read.
   * The connection is destroyed once the enclave has closed its side, or CLOSE_WAIT_MS later.
   */
  readonly lateReceipt?: (receipt: string) => void;
}

/** How long past its timeout a timed-out request stays open for a late receipt (`lateReceipt`), at most. */
export const DRAIN_MS = 10_000;
/** After its sending side is closed, how long a drained connection waits for the enclave to close. */
export const CLOSE_WAIT_MS = 2_000;

/** Socket errors that mean no connection was ever made. */
const NOT_CONNECTED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNABORTED']);

export class EnclaveClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly maxResponseBytes: number;

  /**
   * `label` names the enclave in every error message (default: its URL). The gateway passes the
   * member id, since those messages reach clients (`/v1/enclaves`, NO_ENCLAVE_AVAILABLE) and the
   * enclaves' addresses are the operator's business; its own logs carry the URL beside the id.
   */
  constructor(
    readonly baseUrl: string,
    private readonly options: EnclaveClientOptions,
    readonly label: string = baseUrl,
  ) {
    const url = new URL(baseUrl);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || 80);
    this.maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: 'lifo' });
    // Health checks and attestations on sockets of their own: inferences that fill the agent
    // (slow, or draining after a timeout) must not make a reachable enclave look unreachable.
    this.controlAgent = new Agent({ keepAlive: true, maxSockets: 4 });
  }

  private readonly controlAgent: Agent;

  request(req: UpstreamRequest, agent: Agent = this.agent): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolvePromise, rejectPromise) => {
      let settled = false;
      let connected = false;
      const headers: Record<string, string | number> = { ...req.headers };
      if (req.body !== undefined) {
        headers['content-length'] = req.body.length;
        if (req.contentType) headers['content-type'] = req.contentType;
      }
      const outgoing = httpRequest({ agent, host: this.host, port: this.port, method: req.method, path: req.path, headers });
      // Started once a new connection is being made: a request queued for one of the agent's busy
      // keep-alive sockets has not been sent either, but nothing is wrong with the enclave.
      let connectTimer: NodeJS.Timeout | undefined;
      let receiptSeen: string | undefined;
      /** Set while a timed-out request is read in the background (`lateReceipt`). */
      let drainTimer: NodeJS.Timeout | undefined;
      const timeoutMs = req.timeoutMs ?? this.options.timeoutMs;
      const drain = (): void => {
        drainTimer = setTimeout(() => {
          outgoing.socket?.end(); // the enclave's server ends the connection when it sees this
          drainTimer = setTimeout(() => outgoing.destroy(), CLOSE_WAIT_MS);
          drainTimer.unref();
        }, Math.min(timeoutMs, DRAIN_MS));
        drainTimer.unref();
      };
      const finish = (err: UpstreamError | undefined, res?: UpstreamResponse, keepOpen = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(answerTimer);
        if (err) {
          if (keepOpen) drain();
          else outgoing.destroy();
          if (receiptSeen !== undefined) err.receipt = receiptSeen;
          rejectPromise(err);
        } else resolvePromise(res!);
      };
      const answerTimer = setTimeout(() => {
        if (!connected) finish(new UpstreamError('not-sent', `no connection to ${this.label}`, 'ECONNECTTIMEOUT'));
        // An answer whose headers came already had its receipt taken (err.receipt): nothing to wait for.
        else finish(new UpstreamError('timeout', `${this.label} did not answer within ${timeoutMs} ms`), undefined, req.lateReceipt !== undefined && receiptSeen === undefined);
      }, timeoutMs);
      outgoing.on('close', () => clearTimeout(drainTimer));
      outgoing.on('socket', (socket) => {
        if (!socket.connecting) {
          connected = true;
          return;
        }
        // Cleared on 'connect' (and by finish), so it fires only while not connected.
        connectTimer = setTimeout(() => {
          finish(new UpstreamError('not-sent', `no connection to ${this.label} within ${this.options.connectTimeoutMs} ms`, 'ECONNECTTIMEOUT'));
        }, this.options.connectTimeoutMs);
        socket.once('connect', () => {
          connected = true;
          clearTimeout(connectTimer);
        });
      });
      outgoing.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'UNKNOWN';
        const kind: UpstreamFailureKind = !connected && NOT_CONNECTED_CODES.has(code) ? 'not-sent' : 'unknown';
        finish(new UpstreamError(kind, `${this.label}: ${code}`, code)); // Node's message names the address
      });
      outgoing.on('response', (res) => {
        const receipt = res.headers[RECEIPT_HEADER];
        if (typeof receipt === 'string' && receipt.length > 0) receiptSeen = receipt;
        if (settled) {
          // After a timeout, read in the background: the receipt is passed on, the rest discarded
          // with the connection (never handed back to the agent, which may have half-closed it).
          if (receiptSeen !== undefined) req.lateReceipt?.(receiptSeen);
          outgoing.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            finish(new UpstreamError('invalid', `${this.label} answered more than ${this.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }));
        res.on('aborted', () => finish(new UpstreamError('unknown', `${this.label} closed the connection mid-answer`, 'ECONNRESET')));
        res.on('error', (err: NodeJS.ErrnoException) => finish(new UpstreamError('unknown', `${this.label}: ${err.code ?? err.message}`, err.code)));
      });
      outgoing.end(req.body);
    });
  }

  /** GET and parse a small JSON answer (health, attestation, metadata: not the inference hot path). */
  async getJson(path: string, timeoutMs?: number): Promise<{ status: number; json: unknown }> {
    const res = await this.request({ method: 'GET', path, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }, this.controlAgent);
    let json: unknown;
    try {
      json = JSON.parse(res.body.toString('utf8')) as unknown;
    } catch {
      throw new UpstreamError('invalid', `${this.label}${path} answered ${res.status} with a body that is not JSON`);
    }
    return { status: res.status, json };
  }

  close(): void {
    this.agent.destroy();
    this.controlAgent.destroy();
  }
}
