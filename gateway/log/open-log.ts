/**
 * Opens the configured transparency log: the embedded file store under a data directory (default)
 * or PostgreSQL shared by several replicas. Environment (read by `logConfigFromEnv`):
 *   TEEGATE_LOG_STORE   file | postgres (default file)
 *   TEEGATE_DATA_DIR    data directory of the file store (default ./data; the log lives in <dir>/log)
 *   TEEGATE_PG_URL      PostgreSQL connection string (default postgres://postgres@127.0.0.1:5432/test)
 *   TEEGATE_LOG_SCHEMA  PostgreSQL schema of the log (default teegate_log)
 *   TEEGATE_LOG_ORIGIN  checkpoint origin and key name (default teegate.local/log)
 *   TEEGATE_LOG_KEY     signer key PRIVATE+KEY+... (default: generated once, kept by the store)
 */
import { join } from 'node:path';
import { TeegateError } from '../../attestation/errors';
import { FileLogStorage } from './storage/file-storage';
import type { LogStorage } from './storage/log-storage';
import { PostgresLogStorage } from './storage/postgres-storage';
import { TransparencyLog, type TransparencyLogOptions } from './transparency-log';

export interface LogConfig {
  readonly store: 'file' | 'postgres';
  readonly dataDir?: string;
  readonly pgUrl?: string;
  readonly pgSchema?: string;
  readonly origin?: string;
  readonly signerKey?: string;
}

export function logConfigFromEnv(env: NodeJS.ProcessEnv = process.env): LogConfig {
  const store = env.TEEGATE_LOG_STORE ?? 'file';
  if (store !== 'file' && store !== 'postgres') throw new TeegateError('CONFIG_INVALID', `TEEGATE_LOG_STORE must be file or postgres, not ${JSON.stringify(store)}`);
  return {
    store,
    ...(env.TEEGATE_DATA_DIR ? { dataDir: env.TEEGATE_DATA_DIR } : {}),
    ...(env.TEEGATE_PG_URL ? { pgUrl: env.TEEGATE_PG_URL } : {}),
    ...(env.TEEGATE_LOG_SCHEMA ? { pgSchema: env.TEEGATE_LOG_SCHEMA } : {}),
    ...(env.TEEGATE_LOG_ORIGIN ? { origin: env.TEEGATE_LOG_ORIGIN } : {}),
    ...(env.TEEGATE_LOG_KEY ? { signerKey: env.TEEGATE_LOG_KEY } : {}),
  };
}

export async function openLogStorage(config: LogConfig): Promise<LogStorage> {
  if (config.store === 'postgres') {
    return PostgresLogStorage.open({ ...(config.pgUrl ? { url: config.pgUrl } : {}), ...(config.pgSchema ? { schema: config.pgSchema } : {}) });
  }
  return FileLogStorage.open(join(config.dataDir ?? './data', 'log'));
}

/** Opens storage and log and starts background integration and publishing. */
export async function openTransparencyLog(
  config: LogConfig,
  options: Omit<TransparencyLogOptions, 'storage' | 'origin' | 'signerKey'> = {},
): Promise<TransparencyLog> {
  const storage = await openLogStorage(config);
  try {
    const log = await TransparencyLog.open({
      ...options,
      storage,
      ...(config.origin ? { origin: config.origin } : {}),
      ...(config.signerKey ? { signerKey: config.signerKey } : {}),
    });
    log.start();
    return log;
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
}
