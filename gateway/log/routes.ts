/**
 * The log's HTTP surface, an express Router the gateway mounts at `/v1/log`:
 *
 *   GET checkpoint                          latest signed checkpoint (C2SP signed note, text/plain)
 *   GET key                                 the log's verifier key (`<origin>+<id>+<key>`, text/plain)
 *   GET tile/<L>/<N>[.p/<W>]                C2SP tlog-tiles Merkle hash tiles
 *   GET tile/entries/<N>[.p/<W>]            entry bundles (uint16 length-prefixed canonical entries)
 *   GET entries?start=S&count=C             JSON {start, entries: [base64 entry]}, C <= 256
 *   GET proof/inclusion?index=I[&size=N]    JSON {index, size, proof: [base64 hash]} (size: latest checkpoint)
 *   GET proof/consistency?from=A[&to=B]     JSON {from, to, proof: [base64 hash]} (to: latest checkpoint)
 *
 * Errors are the registry's JSON {code, message}.
 */
import { Router, type Request, type Response } from 'express';
import { toBase64 } from '../../attestation/bytes';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { DECIMAL_SIZE } from '../../attestation/log/checkpoint';
import { parseTilePath, TILE_WIDTH } from '../../attestation/log/tiles';
import { sendError } from '../http/errors';
import type { TransparencyLog } from './transparency-log';

const MAX_ENTRIES_PER_REQUEST = TILE_WIDTH;

function queryInt(req: Request, name: string, fallback?: number): number {
  const raw = req.query[name];
  if (raw === undefined && fallback !== undefined) return fallback;
  if (typeof raw !== 'string' || !DECIMAL_SIZE.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new TeegateError('LOG_RANGE_INVALID', `query parameter ${name} must be a non-negative integer`);
  }
  return Number(raw);
}

type Handler = (req: Request, res: Response) => Promise<void>;

function handle(fn: Handler, onInternal: (err: unknown) => void): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    try {
      await fn(req, res);
    } catch (err) {
      if (isTeegateError(err)) return sendError(res, err);
      onInternal(err);
      sendError(res, new TeegateError('INTERNAL', 'the transparency log failed to handle the request'));
    }
  };
}

export interface LogRouterOptions {
  /** Called with unexpected (non-TeegateError) failures, e.g. to log them. */
  readonly onInternal?: (err: unknown) => void;
}

/** The `/v1/log` router. Mount with `app.use('/v1/log', logRouter(log))`. */
export function logRouter(log: TransparencyLog, options: LogRouterOptions = {}): Router {
  const router = Router();
  const onInternal = options.onInternal ?? (() => undefined);
  const get = (path: string, fn: Handler) => router.get(path, handle(fn, onInternal));

  get('/checkpoint', async (_req, res) => {
    const { note } = await log.checkpoint();
    res.setHeader('Cache-Control', 'no-store');
    res.type('text/plain; charset=utf-8').send(note);
  });

  get('/key', async (_req, res) => {
    res.type('text/plain; charset=utf-8').send(`${log.verifierKey}\n`);
  });

  get('/tile/*path', async (req, res) => {
    const parsed = parseTilePath(req.path.slice(1));
    const body =
      parsed.kind === 'entries' ? await log.entryBundle(parsed.index, parsed.width) : await log.tile(parsed.level, parsed.index, parsed.width);
    // Full tiles never change; partial ones are replaced by wider ones but each path is immutable too.
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.type('application/octet-stream').send(Buffer.from(body.buffer, body.byteOffset, body.length));
  });

  get('/entries', async (req, res) => {
    const start = queryInt(req, 'start');
    const count = queryInt(req, 'count', 1);
    if (count < 1 || count > MAX_ENTRIES_PER_REQUEST) throw new TeegateError('LOG_RANGE_INVALID', `count must be in 1..${MAX_ENTRIES_PER_REQUEST}`);
    const entries = await log.entries(start, count);
    res.json({ start, entries: entries.map(toBase64) });
  });

  get('/proof/inclusion', async (req, res) => {
    const index = queryInt(req, 'index');
    const size = req.query.size === undefined ? (await log.checkpoint()).size : queryInt(req, 'size');
    const proof = await log.inclusionProof(index, size);
    res.json({ index, size, proof: proof.map(toBase64) });
  });

  get('/proof/consistency', async (req, res) => {
    const from = queryInt(req, 'from');
    const to = req.query.to === undefined ? (await log.checkpoint()).size : queryInt(req, 'to');
    const proof = await log.consistencyProof(from, to);
    res.json({ from, to, proof: proof.map(toBase64) });
  });

  return router;
}
