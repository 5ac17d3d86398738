/**
 * EnclaveClient's connect timeout counts only the making of a new connection: a request queued
 * behind the agent's busy keep-alive sockets has not failed to connect.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnclaveClient } from '../../gateway/pool/enclave-client';

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_req, res) => setTimeout(() => res.end('ok'), 300));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

it('answers requests that waited for a busy socket longer than the connect timeout', async () => {
  const client = new EnclaveClient(url, { connectTimeoutMs: 100, timeoutMs: 5_000, maxSockets: 1 });
  try {
    const answers = await Promise.all([0, 1, 2].map(() => client.request({ method: 'GET', path: '/' })));
    expect(answers.map((a) => [a.status, a.body.toString()])).toEqual([[200, 'ok'], [200, 'ok'], [200, 'ok']]);
  } finally {
    client.close();
  }
});
