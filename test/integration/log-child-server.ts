/**
 * A minimal log server for the crash and multi-replica tests (run with `node bin/run-ts`): the real
 * log router and storage, plus test-only routes to append and flush. Not part of the gateway.
 *   env LOG_STORE=file LOG_DIR=...  or  LOG_STORE=postgres LOG_SCHEMA=... (TEEGATE_PG_URL)
 *   env LOG_KEY=PRIVATE+KEY+...     (shared by replicas)
 * Prints `listening <port>` once it serves.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { openLogStorage } from '../../gateway/log/open-log';
import { logRouter } from '../../gateway/log/routes';
import { TransparencyLog } from '../../gateway/log/transparency-log';

async function main(): Promise<void> {
  const store = process.env.LOG_STORE === 'postgres' ? 'postgres' : 'file';
  const storage = await openLogStorage(
    store === 'postgres' ? { store, postgresSchema: process.env.LOG_SCHEMA ?? 'teegate_log_child' } : { store, dataDir: process.env.LOG_DIR ?? './data' },
  );
  const log = await TransparencyLog.open({
    storage,
    origin: 'test.teegate/log',
    ...(process.env.LOG_KEY ? { signerKey: process.env.LOG_KEY } : {}),
    integrateIntervalMs: 20,
    publishIntervalMs: 50,
    publishEveryEntries: 500,
  });
  log.start();
  const app = express();
  app.use('/v1/log', logRouter(log));
  app.post('/test/append/:payload', async (req, res) => {
    try {
      res.json(await log.appendReceipt(String(req.params.payload)));
    } catch (err) {
      res.status(503).json({ error: String(err) });
    }
  });
  app.post('/test/flush', async (_req, res) => {
    try {
      res.type('text/plain').send(await log.flush());
    } catch (err) {
      res.status(503).json({ error: String(err) });
    }
  });
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => {
    server.close();
    void log.close().then(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(`log-child-server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
