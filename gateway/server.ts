/**
 * Starts a gateway: logger, metrics, log sink, enclave pool (one attestation round before
 * listening), express app, HTTP server with timeouts. `close()` shuts down gracefully: stop
 * accepting, answer new requests on open connections with GATEWAY_SHUTTING_DOWN, let in-flight
 * requests finish (up to `shutdownGraceMs`), then cut what is left.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TeegateError } from '../attestation/errors';
import { createGatewayApp } from './app';
import { answerNodeErrors, connectionsCheckingInterval } from '../attestation/http-error-answer';
import type { GatewayConfig } from './config';
import { MemoryReceiptSink, type ReceiptSink } from './log/receipt-sink';
import { openTransparencyLog } from './log/open-log';
import { logRouter } from './log/routes';
import { TransparencyLog } from './log/transparency-log';
import { createLogger, type GatewayLogger } from './observability/logger';
import { GatewayMetrics } from './observability/metrics';
import { EnclavePool } from './pool/enclave-pool';

export interface StartOptions {
  /** Where receipts and attestations go (default: the transparency log of `config.log`). */
  readonly sink?: ReceiptSink;
  readonly logger?: GatewayLogger;
  readonly metrics?: GatewayMetrics;
}

export interface RunningGateway {
  readonly url: string;
  readonly pool: EnclavePool;
  readonly sink: ReceiptSink;
  readonly metrics: GatewayMetrics;
  close(): Promise<void>;
}

/** Why an address cannot be listened on, for the errors a configuration can cause. */
const LISTEN_FAILURES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is in use (another gateway, or another program, listens there)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine',
};

/** Listens; an address the configuration got wrong is CONFIG_INVALID naming it, not a crash. */
function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code !== undefined ? LISTEN_FAILURES[err.code] : undefined;
      reject(why === undefined ? err : new TeegateError('CONFIG_INVALID', `cannot listen on ${host}:${port}: ${why} (${err.code}); set port (TEEGATE_PORT) or host (TEEGATE_HOST)`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const metrics = options.metrics ?? new GatewayMetrics();
  // The transparency log: opened from the configuration unless the caller brings a sink.
  const { store } = config.log;
  const ownLog =
    options.sink === undefined && store !== 'memory'
      ? await openTransparencyLog(
          { ...config.log, store },
          {
            publishIntervalMs: config.log.publishIntervalMs,
            publishEveryEntries: config.log.publishEveryEntries,
            onError: (err: unknown) => logger.error({ err: String(err) }, 'transparency log background step failed'),
          },
        )
      : undefined;
  const sink = options.sink ?? ownLog ?? new MemoryReceiptSink();
  const routers = [
    ...(sink instanceof TransparencyLog ? [{ path: '/v1/log', router: logRouter(sink, { onInternal: (err: unknown) => logger.error({ err: String(err) }, 'log route failed') }) }] : []),
  ];
  const pool = new EnclavePool({
    enclaves: config.enclaves,
    attestation: config.attestation,
    sink,
    healthIntervalMs: config.pool.healthIntervalMs,
    healthTimeoutMs: config.pool.healthTimeoutMs,
    selection: config.pool.selection,
    client: { connectTimeoutMs: config.limits.connectTimeoutMs, timeoutMs: config.limits.upstreamTimeoutMs, maxResponseBytes: config.limits.upstreamResponseBytes },
    logger,
    metrics,
  });
  let shuttingDown = false;
  const { listener } = createGatewayApp({ config, pool, sink, logger, metrics, isShuttingDown: () => shuttingDown, routers });
  const server = createServer(
    {
      requestTimeout: config.limits.requestTimeoutMs,
      headersTimeout: Math.min(30_000, config.limits.requestTimeoutMs),
      connectionsCheckingInterval: connectionsCheckingInterval(config.limits.requestTimeoutMs),
      keepAliveTimeout: 65_000,
      // Node's own refusal of a missing Host has no body: the admission step refuses it in JSON.
      requireHostHeader: false,
    },
    listener,
  );
  // JSON where Node would answer by itself; `100 Continue` only after authentication, rate limits
  // and the body's declared size and type passed (gateway/http/read-body.ts).
  answerNodeErrors(server);
  let address: AddressInfo;
  try {
    await pool.start();
    address = await listen(server, config.port, config.host);
  } catch (err) {
    await pool.stop();
    await ownLog?.close();
    throw err;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, enclaves: config.enclaves.length, ready: pool.ready().length }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      logger.info('gateway shutting down');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      // Connections that become idle after their last answer are closed as they do.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      await closed;
      clearTimeout(grace);
      clearInterval(sweep);
      await pool.stop();
      await ownLog?.close();
      logger.info('gateway stopped');
      logger.flush?.();
    })();
    return closing;
  };
  return { url, pool, sink, metrics, close };
}
