/**
 * The client SDK's only I/O: `fetch` (injectable), with the gateway's answers turned into typed
 * errors. Everything the gateway says is attacker-controlled: answers are size-limited, parsed
 * defensively, and a teegate error code in an error body is only believed as a code, never as
 * evidence.
 */
import { fromUtf8 } from '../bytes';
import { TeegateError, isErrorCode } from '../errors';
import { readLimitedBody } from '../limited-body';

/** The subset of the WHATWG fetch the SDK uses (Node 20+, browsers, or a test's own). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface HttpClientOptions {
  readonly fetch?: FetchLike;
  /** Sent as `Authorization: Bearer <key>` on inference requests. */
  readonly apiKey?: string;
  /** Per request (default 120 s). */
  readonly timeoutMs?: number;
}

export class GatewayHttp {
  readonly baseUrl: string;
  private readonly fetchFn: FetchLike;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;

  constructor(url: string, options: HttpClientOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TeegateError('REQUEST_INVALID', `gateway URL ${JSON.stringify(url)} is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TeegateError('REQUEST_INVALID', 'gateway URL must be http: or https:');
    this.baseUrl = parsed.href.replace(/\/+$/, '');
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TeegateError('REQUEST_INVALID', 'no fetch available: pass options.fetch');
    this.fetchFn = (input, init) => f(input, init);
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** One request; network failures become CLIENT_FETCH_FAILED. Any status is returned. */
  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string; auth?: boolean } = {}): Promise<HttpAnswer> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.auth && this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    const signal = typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(this.timeoutMs) : undefined;
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new TeegateError('CLIENT_FETCH_FAILED', `${init.method ?? 'GET'} ${this.baseUrl}${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_ANSWER_BYTES) {
      await res.body?.cancel().catch(() => undefined);
      throw new TeegateError('CLIENT_RESPONSE_INVALID', `${path}: answer of ${declared} bytes exceeds ${MAX_ANSWER_BYTES}`);
    }
    let body: Uint8Array | undefined;
    try {
      body = await readLimitedBody(res, MAX_ANSWER_BYTES);
    } catch (err) {
      throw new TeegateError('CLIENT_FETCH_FAILED', `${path}: reading the answer failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (body === undefined) throw new TeegateError('CLIENT_RESPONSE_INVALID', `${path}: answer exceeds ${MAX_ANSWER_BYTES} bytes`);
    let text: string;
    try {
      text = fromUtf8(body);
    } catch {
      throw new TeegateError('CLIENT_RESPONSE_INVALID', `${path}: the answer is not valid UTF-8`);
    }
    return { status: res.status, headers: res.headers, text };
  }

  /** A 200 answer's text, or the gateway's error as a TeegateError. */
  async ok(path: string, init: Parameters<GatewayHttp['request']>[1] = {}): Promise<HttpAnswer> {
    const answer = await this.request(path, init);
    if (answer.status !== 200) throw errorFromAnswer(path, answer);
    return answer;
  }

  async getJson(path: string): Promise<unknown> {
    return parseJson(path, (await this.ok(path)).text);
  }
}

export function parseJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new TeegateError('CLIENT_RESPONSE_INVALID', `${what}: answer is not JSON`);
  }
}

/** `{code, message}` bodies keep their registered code; anything else is CLIENT_FETCH_FAILED. */
export function errorFromAnswer(path: string, answer: HttpAnswer): TeegateError {
  let body: unknown;
  try {
    body = JSON.parse(answer.text) as unknown;
  } catch {
    body = undefined;
  }
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const message = typeof o.message === 'string' ? o.message.slice(0, 1000) : answer.text.slice(0, 200);
  if (isErrorCode(o.code)) return new TeegateError(o.code, `gateway ${answer.status} for ${path}: ${message}`);
  return new TeegateError('CLIENT_FETCH_FAILED', `gateway ${answer.status} for ${path}: ${message}`);
}

export function jsonObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TeegateError('CLIENT_RESPONSE_INVALID', `${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
