/**
 * The gateway's JSON logger (pino). Log lines carry request ids, routes, statuses, timings, key
 * ids and enclave ids: never request or response bodies, API keys or Authorization headers.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config';

export type GatewayLogger = Logger;

export function createLogger(options: { level: LogLevel; destination?: DestinationStream }): GatewayLogger {
  return pino(
    {
      level: options.level,
      base: { service: 'teegate-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: even if a caller logs a request object, these never reach the output.
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'body', '*.body', 'key', 'apiKey'], remove: true },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
