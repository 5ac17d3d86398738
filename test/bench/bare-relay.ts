/**
 * bench:gateway's floor: the least a gateway can do, as a process of its own. A bare node:http
 * server that relays each request to the enclave over a keep-alive connection and answers with the
 * enclave's status, type, Server-Timing and body; with `--append DIR` it first appends the answer to
 * `DIR/relay.log`, opened with O_DSYNC and written with FileHandle.write as the gateway's log file
 * store does, so the answer waits for the disk as a gateway's log index must. No auth, no limits,
 * no parsing, no metrics, no express.
 *
 * Usage: bare-relay.ts --enclave URL [--append DIR]. Prints the dev stack's ready line (child-service.ts).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Agent, createServer, request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * A stream's bytes, read the cheapest way: node:stream/consumers' buffer() goes through a Blob,
 * which cost this relay about 30 µs of CPU per request (a CPU profile, 2026-11-25), and the floor
 * should do no more than it must.
 */
function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { enclave: { type: 'string' }, append: { type: 'string' } } });
  if (values.enclave === undefined) throw new Error('--enclave URL is required');
  const upstream = new URL(values.enclave);
  const agent = new Agent({ keepAlive: true });
  const log: FileHandle | undefined = values.append === undefined ? undefined : await open(join(values.append, 'relay.log'), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, 0o600);

  const server = createServer(async (req, res) => {
    try {
      const body = await readAll(req);
      const answer = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
        const out = request(
          { agent, host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json', 'content-length': body.length } },
          (up) => readAll(up).then((b) => resolve({ status: up.statusCode ?? 502, headers: up.headers, body: b }), reject),
        );
        out.on('error', reject);
        out.end(body);
      });
      if (log !== undefined) await log.write(answer.body);
      const timing = answer.headers['server-timing'];
      res.writeHead(answer.status, {
        'content-type': answer.headers['content-type'] ?? 'application/json',
        'content-length': answer.body.length,
        ...(timing === undefined ? {} : { 'server-timing': timing }),
      });
      res.end(answer.body);
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    process.stdout.write(`${JSON.stringify({ event: 'ready', url: `http://127.0.0.1:${address.port}` })}\n`);
  });
  process.once('SIGTERM', () => {
    server.close();
    agent.destroy();
    void log?.close();
    server.closeAllConnections();
  });
}

main().catch((err) => {
  process.stderr.write(`bare-relay failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
