/** `teegate up [--port N] [--data DIR] [--enclaves N] [--host H]`: the whole dev stack on embedded defaults. */
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { isTeegateError } from '../../attestation/errors';
import { FolderInUseError, lockFolder } from '../../gateway/folder-lock';
import { ChildExitedError } from '../../infra/dev-stack/child-service';
import { startDevStack } from '../../infra/dev-stack/stack';
import { noteAwsSdkNodeSupport } from './aws-sdk-note';
import { UsageError, parseCommandArgs, parseWholeNumber } from './usage';

const HELP = `usage: teegate up [options]

Starts the dev KMS, enclaves (simulated Nitro Secure Module, the shipped PP-OCRv4 model sealed
under KMS on first start and released only to the measured enclave image) and the gateway, then
prints the URL. Ctrl-C or SIGTERM stops them all.

options:
  --port N        gateway port (default 8080)
  --host H        gateway address (default 127.0.0.1)
  --data DIR      where keys, the dev root, the sealed model and the log live (default ./data)
  --enclaves N    number of enclaves (default 1)
  --verbose       print every service's log lines
`;

/** The error code of listening on host:port right now (EADDRINUSE, EACCES, ...), or undefined if it can. */
function listenError(host: string, port: number): Promise<string | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    probe.listen(port, host, () => probe.close(() => resolve(undefined)));
  });
}

export async function upCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    { port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, enclaves: { type: 'string' }, verbose: { type: 'boolean' } },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n\n${HELP}`);
  const port = values.port !== undefined ? parseWholeNumber(values.port, '--port', 0, 65535) : 8080;
  const enclaves = values.enclaves !== undefined ? parseWholeNumber(values.enclaves, '--enclaves', 1, 16) : 1;
  const verbose = values.verbose ?? false;
  const host = values.host ?? '127.0.0.1';
  // Before anything starts: a busy port would otherwise fail the gateway last, after the KMS and
  // the enclaves booted. (The gateway still refuses it on its own, CONFIG_INVALID, if it is taken
  // in the meantime.)
  const busy = await listenError(host, port);
  if (busy !== undefined) throw new UsageError(`cannot listen on ${host}:${port} (${busy}): choose another port with --port N`, 'CONFIG_INVALID');
  const log = (line: string) => {
    if (verbose || /"level":"?(error|fatal|warn|40|50|60)/.test(line)) process.stderr.write(`${line}\n`);
  };

  // One stack per data folder: a second one would rewrite the first's gateway config, share its
  // KMS store and then be refused by its log. Taken before anything is written, given back last.
  const dataDir = resolvePath(values.data ?? 'data');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let unlock: () => Promise<void>;
  try {
    unlock = await lockFolder(dataDir);
  } catch (err) {
    // Like a busy port: the command as given cannot run here (exit 2); nothing has started.
    if (err instanceof FolderInUseError) {
      throw new UsageError(`the data folder ${dataDir} is in use by another teegate up (process ${err.pid}): stop it, or choose another folder with --data DIR`, 'CONFIG_INVALID');
    }
    throw new UsageError(`cannot lock the data folder ${dataDir}: ${(err as Error).message}`);
  }
  try {
    // Signals are handled from the first moment, so no child is ever left behind.
    let signalled: string | undefined;
    let wake: () => void = () => undefined;
    const signal = new Promise<void>((resolve) => (wake = resolve));
    const onSignal = (name: string) => () => {
      if (signalled) return;
      signalled = name;
      process.stderr.write(`teegate: ${name}, stopping ...\n`);
      wake();
    };
    process.on('SIGINT', onSignal('SIGINT'));
    process.on('SIGTERM', onSignal('SIGTERM'));

    process.stderr.write(`teegate: starting the dev stack (${enclaves} enclave${enclaves > 1 ? 's' : ''}) ...\n`);
    noteAwsSdkNodeSupport();
    const starting = startDevStack({ port, enclaves, host, dataDir, log });
    let stack;
    try {
      stack = await Promise.race([starting, signal.then(() => undefined)]);
    } catch (err) {
      // A service that could not start (its own words are in the message), or a kept file that cannot
      // be used: said in words; what had started is stopped.
      if (!(err instanceof ChildExitedError) && !isTeegateError(err)) throw err;
      process.stderr.write(`teegate: could not start the dev stack: ${isTeegateError(err) ? `${err.code}: ` : ''}${err.message}\n`);
      return 1;
    }
    if (!stack) {
      // Stopped while starting: let the start finish (or fail), then stop what it started.
      await (await starting.catch(() => undefined))?.stop();
      process.stderr.write('teegate: stopped\n');
      return 130;
    }
    const keyFile = `${stack.dataDir}/api-key`;
    process.stdout.write(
      [
        `teegate is up: ${stack.url}`,
        `  web explorer   ${stack.url}/ui/`,
        `  API key        ${stack.apiKey}   (saved in ${keyFile})`,
        `  policy         ${stack.dataDir}/measurement-policy.json   (dev root + measured PCRs)`,
        `  log key        ${stack.dataDir}/log-key`,
        `  dev KMS        ${stack.kmsUrl}   (model key in ${stack.dataDir}/model-key.json, credentials in ${stack.dataDir}/dev-kms-credentials.json)`,
        `  try            TEEGATE_API_KEY=$(cat ${keyFile}) npx teegate infer --url ${stack.url} --demo --policy ${stack.dataDir}/measurement-policy.json --log-key "$(cat ${stack.dataDir}/log-key)"`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
    await signal;
    await stack.stop();
    process.stderr.write('teegate: stopped\n');
    return 0;
  } finally {
    await unlock();
  }
}
