/**
 * Opens the configured transparency log: the embedded file store under a data directory (default)
 * or PostgreSQL shared by several replicas. The gateway's configuration (gateway/config.ts, `log.*`,
 * file or TEEGATE_LOG_* environment) says which.
 */
import { join } from 'node:path';
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
