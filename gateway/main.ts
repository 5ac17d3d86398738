/**
 * Process entry: `node bin/run-ts gateway/main.ts [--config FILE]` (or TEEGATE_CONFIG). Reads and
 * validates the configuration, starts the gateway, shuts down gracefully on SIGTERM / SIGINT.
 * An invalid configuration prints `REJECTED CONFIG_INVALID: <message>` and exits 2.
 */
import { resolve } from 'node:path';
import { isTeegateError } from '../attestation/errors';
import { loadGatewayConfig } from './config';
import { startGateway } from './server';

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const at = argv.indexOf('--config');
  const file = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && file === undefined) {
    process.stderr.write('usage: gateway/main.ts [--config FILE]\n');
    process.exit(2);
  }
  let gateway;
  try {
    gateway = await startGateway(loadGatewayConfig(file !== undefined ? { file } : {}));
  } catch (err) {
    if (isTeegateError(err)) {
      process.stderr.write(`REJECTED ${err.code}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  process.stdout.write(`teegate gateway listening on ${gateway.url}\n`);
  // The machine-readable ready line that process supervisors (teegate up) wait for.
  process.stdout.write(`${JSON.stringify({ event: 'ready', url: gateway.url })}\n`);
  const stop = (signal: string) => {
    process.stderr.write(`${signal}: shutting down (in-flight requests finish first)\n`);
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Started by `teegate up` with an IPC channel: stop with it, even when it was killed outright.
  if (process.send !== undefined) {
    process.channel?.unref();
    if (process.connected) process.once('disconnect', () => stop('the process that started the gateway is gone'));
    else stop('the process that started the gateway is gone');
  }
}

// Run when this file is the entry (directly, or through bin/run-ts, which `require`s it).
if (require.main === module || (process.argv[1] !== undefined && resolve(process.argv[1]) === __filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`gateway failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
