/**
 * Open Inference Protocol (KServe v2) routes: server metadata and health, model list, metadata and
 * readiness (express routes), and inference (`createInferHandler`, served by the front: front.ts).
 * Inference bodies, plain (application/json) or sealed (application/jose), are relayed as raw
 * bytes; the gateway logs the enclave's receipt (from the `teegate-receipt` header) and returns
 * its log index in `teegate-log-index` and, for plain JSON, in `parameters.log_index`.
 */
import type { IncomingMessage } from 'node:http';
import type { Express, Request, Response } from 'express';
import { TeegateError } from '../../attestation/errors';
import type { GatewayContext } from '../context';
import type { GatewayResponse } from '../http/exchange';
import { readRawBody } from '../http/read-body';
import { spliceLogIndex } from '../http/splice-log-index';
import type { ModelSelector } from '../pool/enclave-pool';
import { ENCLAVE_HEADER, formatServerTiming, LOG_INDEX_HEADER, parseServerTiming, RECEIPT_HEADER, SEAL_KID_HEADER, SERVER_TIMING_HEADER } from '../../attestation/headers';
import { relay, sendRelayed } from '../pool/relay';

export const SERVER_NAME = 'teegate';
export const SERVER_VERSION = '0.1.0';
export const SERVER_EXTENSIONS = ['teegate-receipts', 'teegate-sealed', 'teegate-transparency-log'];

/** The inference routes (express path syntax), which the front serves. */
export const INFER_ROUTES = ['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer'] as const;

/** A route's decoded path parameters. */
export type RouteParams = Readonly<Partial<Record<string, string>>>;

function selectorOf({ model, version }: RouteParams): ModelSelector {
  return { name: model ?? '', ...(version !== undefined ? { version } : {}) };
}

function selector(req: Request): ModelSelector {
  return selectorOf(req.params as RouteParams);
}

/** The enclave's path of a model (and version, when the client's path named one). */
function enclavePath({ name, version }: ModelSelector): string {
  return `/v2/models/${encodeURIComponent(name)}${version !== undefined ? `/versions/${encodeURIComponent(version)}` : ''}`;
}

function relayOptionsOf(ctx: GatewayContext) {
  // A failure to log it must not replace the answer's own error (a client decides on a retry by it).
  const logUndelivered = (receipt: string) =>
    ctx.sink.appendReceipt(receipt).catch((err: unknown) => ctx.logger.error({ err: String(err) }, 'the receipt of an undelivered answer could not be logged'));
  // An enclave that holds as many requests as it takes refuses before reading: try the next.
  const relayOptions = { maxAttempts: ctx.config.limits.maxAttempts, metrics: ctx.metrics, logUndelivered, retryOnCodes: ['ENCLAVE_BUSY' as const] };
  // A sealed request without a seal kid may reach an enclave that holds another key: try the next.
  const sealedRelayOptions = { ...relayOptions, retryOnCodes: [...relayOptions.retryOnCodes, 'JWE_KEY_MISMATCH' as const] };
  // Model metadata: no receipts to wait for after a timeout.
  const metadataOptions = { maxAttempts: ctx.config.limits.maxAttempts, metrics: ctx.metrics };
  return { relayOptions, sealedRelayOptions, metadataOptions };
}

export function registerOipRoutes(app: Express, ctx: GatewayContext): void {
  const { pool } = ctx;
  const { metadataOptions } = relayOptionsOf(ctx);

  app.get('/v2', (_req, res) => {
    res.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: SERVER_EXTENSIONS });
  });
  app.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  app.get('/v2/health/ready', (_req, res) => {
    if (pool.ready().length > 0) return void res.json({ ready: true });
    res.status(503).json({ code: 'NO_ENCLAVE_AVAILABLE', message: 'no attested enclave is ready', ready: false });
  });
  app.get('/v2/models', (_req, res) => {
    const versions = new Map<string, Set<string>>();
    for (const m of pool.ready()) {
      for (const model of m.identity!.manifest.models) {
        if (!versions.has(model.name)) versions.set(model.name, new Set());
        versions.get(model.name)!.add(model.version);
      }
    }
    res.json({ models: [...versions].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, v]) => ({ name, versions: [...v].sort() })) });
  });

  const metadata = async (req: Request, res: Response) => {
    const model = selector(req);
    const relayed = await relay(pool, { method: 'GET', path: enclavePath(model) }, model, metadataOptions);
    res.locals.model = model.name;
    sendRelayed(res, relayed);
  };
  app.get('/v2/models/:model', metadata);
  app.get('/v2/models/:model/versions/:version', metadata);

  const ready = (req: Request, res: Response) => {
    const model = selector(req);
    const notReady = (message: string) => void res.status(503).json({ code: 'NO_ENCLAVE_AVAILABLE', message, name: model.name, ready: false });
    // Which models exist is known from attested manifests only (as for inference): with none
    // attested yet, not ready; a model none lists, not found.
    const listed = pool.lists(model);
    if (listed === 'not-listed') throw new TeegateError('MODEL_NOT_FOUND', `no enclave serves model ${model.name}${model.version ? ` version ${model.version}` : ''}`);
    res.locals.model = model.name;
    if (listed === 'unknown') return notReady('no enclave has been attested yet');
    const isReady = pool.serving(model).length > 0;
    if (isReady) return void res.json({ name: model.name, ready: true });
    notReady(`no attested enclave serving ${model.name} is ready`);
  };
  app.get('/v2/models/:model/ready', ready);
  app.get('/v2/models/:model/versions/:version/ready', ready);
}

/**
 * Inference: reads the body raw, relays it, logs the receipt durably, answers with its log index.
 * On Node's own request and response (the front calls it for the INFER_ROUTES, after admission
 * and authorization); throws what the error answer says.
 */
export function createInferHandler(ctx: GatewayContext): (req: IncomingMessage, res: GatewayResponse, params: RouteParams) => Promise<void> {
  const { pool, config, metrics, sink } = ctx;
  const { relayOptions, sealedRelayOptions } = relayOptionsOf(ctx);
  return async (req, res, params) => {
    const base = selectorOf(params);
    const body = await readRawBody(req, res, config.limits.bodyBytes);
    res.locals.mode = body.mode;
    const relayStarted = performance.now();
    const sealKid = req.headers[SEAL_KID_HEADER];
    const model: ModelSelector = body.mode === 'sealed' && typeof sealKid === 'string' ? { ...base, sealKid } : base;
    const relayed = await relay(
      pool,
      { method: 'POST', path: `${enclavePath(base)}/infer`, body: body.bytes, contentType: body.contentType },
      model,
      body.mode === 'sealed' && model.sealKid === undefined ? sealedRelayOptions : relayOptions,
    );
    const relayEnded = performance.now();
    const { member, response } = relayed;
    // Only a model some attested enclave serves names a metrics series: the path is the client's.
    res.locals.model = base.name;
    res.locals.enclave = member.id;
    res.setHeader(ENCLAVE_HEADER, member.id); // on an UPSTREAM_INVALID answer below too
    let out = response.body;
    if (response.status === 200) {
      const receipt = response.headers[RECEIPT_HEADER];
      if (typeof receipt !== 'string' || receipt.length === 0) {
        throw new TeegateError('UPSTREAM_INVALID', `enclave ${member.id} answered an inference without a ${RECEIPT_HEADER} header`);
      }
      const { index } = await sink.appendReceipt(receipt);
      const logged = performance.now();
      metrics.logAppendDuration.observe((logged - relayEnded) / 1000);
      const receivedAt = res.locals.receivedAt ?? relayStarted;
      // The enclave's own `infer` (a number or nothing, whatever the header says) beside the relay's.
      const upstream = response.headers[SERVER_TIMING_HEADER];
      const { infer: enclaveInfer } = parseServerTiming(typeof upstream === 'string' ? upstream : undefined);
      res.setHeader(
        SERVER_TIMING_HEADER,
        formatServerTiming({ ...(enclaveInfer !== undefined ? { infer: enclaveInfer } : {}), enclave: relayEnded - relayStarted, log: logged - relayEnded, total: logged - receivedAt }),
      );
      res.setHeader(RECEIPT_HEADER, receipt);
      res.setHeader(LOG_INDEX_HEADER, String(index));
      if (body.mode === 'plain') out = spliceLogIndex(out, index) ?? out;
    }
    sendRelayed(res, relayed, out);
  };
}
