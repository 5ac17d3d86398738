/**
 * Fetches a teegate transparency log over HTTP (the `/v1/log` surface): checkpoint, verifier key,
 * tlog-tiles hash tiles and entry bundles, consistency proofs. Everything it returns is untrusted:
 * the auditor checks it. Browser-safe (fetch only); the fetch function is injectable.
 */
import { fromBase64, fromUtf8 } from '../bytes';
import { TeegateError } from '../errors';
import { readLimitedBody, type BodySource } from '../limited-body';
import { parseEntryBundle } from '../log/entry-bundle';
import { HASH_SIZE, MAX_PROOF_ELEMENTS } from '../log/merkle';
import { entryBundlePath, tilePath } from '../log/tiles';

export interface FetchResponse extends BodySource {
  readonly ok: boolean;
  readonly status: number;
}
export type FetchLike = (url: string) => Promise<FetchResponse>;

const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Per request with the default fetch: a log server that stops answering fails the audit, not hangs it. */
export const DEFAULT_TIMEOUT_MS = 60_000;

function fetchError(message: string, cause?: unknown): TeegateError {
  return new TeegateError('AUDIT_FETCH_FAILED', message, { cause });
}

export class LogClient {
  /** Base of the log, ending in `/v1/log/`. */
  readonly base: string;
  private readonly fetchFn: FetchLike;

  /**
   * `url` is the gateway (`https://host`) or the log itself (`https://host/v1/log`). With the
   * default fetch, each request (its whole answer included) is abandoned after `timeoutMs`.
   */
  constructor(url: string, fetchFn?: FetchLike, timeoutMs = DEFAULT_TIMEOUT_MS) {
    this.fetchFn = fetchFn ?? ((u) => globalThis.fetch(u, { signal: AbortSignal.timeout(timeoutMs) }));
    const trimmed = url.replace(/\/+$/, '');
    this.base = `${/\/v1\/log$/.test(trimmed) ? trimmed : `${trimmed}/v1/log`}/`;
  }

  async get(path: string): Promise<Uint8Array> {
    const url = this.base + path;
    let res: FetchResponse;
    try {
      res = await this.fetchFn(url);
    } catch (err) {
      throw fetchError(`GET ${url} failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw fetchError(`GET ${url} answered HTTP ${res.status}`);
    }
    let body: Uint8Array | undefined;
    try {
      body = await readLimitedBody(res, MAX_BODY_BYTES);
    } catch (err) {
      throw fetchError(`GET ${url}: reading the answer failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (body === undefined) throw fetchError(`GET ${url} answered more than ${MAX_BODY_BYTES} bytes`);
    return body;
  }

  private async text(path: string): Promise<string> {
    try {
      return fromUtf8(await this.get(path));
    } catch (err) {
      if (err instanceof TeegateError) throw err;
      throw fetchError(`${path} is not UTF-8`);
    }
  }

  private async json(path: string): Promise<unknown> {
    const text = await this.text(path);
    try {
      return JSON.parse(text);
    } catch {
      throw fetchError(`${path} did not answer JSON`);
    }
  }

  checkpoint(): Promise<string> {
    return this.text('checkpoint');
  }

  async verifierKey(): Promise<string> {
    return (await this.text('key')).trim();
  }

  /** Hash tile (level, index) of `width` hashes; its length is checked. */
  async tile(level: number, index: number, width: number): Promise<Uint8Array[]> {
    const body = await this.get(tilePath(level, index, width));
    if (body.length !== width * HASH_SIZE) throw fetchError(`tile ${level}/${index} has ${body.length} bytes, expected ${width * HASH_SIZE}`);
    const out: Uint8Array[] = [];
    for (let i = 0; i < width; i++) out.push(body.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return out;
  }

  /** Entry bundle `index` of `width` entries (LOG_ENTRY_MALFORMED if it holds another number). */
  async entryBundle(index: number, width: number): Promise<Uint8Array[]> {
    return parseEntryBundle(await this.get(entryBundlePath(index, width)), width);
  }

  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    const body = await this.json(`proof/consistency?from=${from}&to=${to}`);
    const proof = (body as { proof?: unknown } | null)?.proof;
    if (!Array.isArray(proof) || proof.length > MAX_PROOF_ELEMENTS || !proof.every((p) => typeof p === 'string')) {
      throw fetchError('consistency proof answer has no proof array');
    }
    try {
      return proof.map((p: string) => fromBase64(p));
    } catch {
      throw new TeegateError('LOG_PROOF_INVALID', 'consistency proof element is not base64');
    }
  }
}
