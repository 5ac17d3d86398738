/**
 * Opens the configured transparency log: the embedded file store under a data directory (default)
 * or PostgreSQL shared by several replicas. The gateway's configuration (gateway/config.ts, `log.*`,
 * file or TEEGATE_LOG_* environment) says which.
 */
import { join } from 'node:path';
import { TeegateError } from '../../attestation/errors';
import { FileLogStorage } from './storage/file-storage';
import type { LogStorage } from './storage/log-storage';
import { PostgresLogStorage } from './storage/postgres-storage';
import { TransparencyLog, type TransparencyLogOptions } from './transparency-log';

/** The `log.*` settings of gateway/config.ts (same names), for a store that keeps entries. */
export interface LogConfig {
  readonly store: 'file' | 'postgres';
  /** The file store's data folder: the log lives in `<dataDir>/log`. */
  readonly dataDir?: string;
  readonly postgresUrl?: string;
  readonly postgresSchema?: string;
  readonly origin?: string;
  readonly signerKey?: string;
}

export async function openLogStorage(config: LogConfig): Promise<LogStorage> {
  if (config.store === 'postgres') {
    return PostgresLogStorage.open({ ...(config.postgresUrl ? { url: config.postgresUrl } : {}), ...(config.postgresSchema ? { schema: config.postgresSchema } : {}) });
  }
  if (config.dataDir === undefined) throw new TeegateError('CONFIG_INVALID', 'a file log store needs a data folder (log.dataDir)');
  return FileLogStorage.open(join(config.dataDir, 'log'));
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
