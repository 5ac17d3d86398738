/**
 * Opens the configured transparency log: the embedded file store under a data directory (default)
 * or PostgreSQL shared by several replicas. The gateway's configuration (gateway/config.ts, `log.*`,
 * file or TEEGATE_LOG_* environment) says which.
 */
import { join } from 'node:path';
import type { GatewayConfig } from '../config';
import { FileLogStorage } from './storage/file-storage';
import type { LogStorage } from './storage/log-storage';
import { PostgresLogStorage } from './storage/postgres-storage';
import { TransparencyLog, type TransparencyLogOptions } from './transparency-log';

type LogSettings = GatewayConfig['log'];
type Naming = Partial<Pick<LogSettings, 'origin' | 'signerKey'>>;
/** The `log.*` settings of gateway/config.ts, for a store that keeps entries (the file store needs its folder). */
export type LogConfig =
  | ({ readonly store: 'file' } & Pick<LogSettings, 'dataDir'> & Naming)
  | ({ readonly store: 'postgres' } & Partial<Pick<LogSettings, 'postgresUrl' | 'postgresSchema'>> & Naming);

export async function openLogStorage(config: LogConfig): Promise<LogStorage> {
  if (config.store === 'postgres') {
    return PostgresLogStorage.open({ ...(config.postgresUrl ? { url: config.postgresUrl } : {}), ...(config.postgresSchema ? { schema: config.postgresSchema } : {}) });
  }
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
