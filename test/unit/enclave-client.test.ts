/**
 * EnclaveClient's connect timeout counts only the making of a new connection: a request queued
 * behind the agent's busy keep-alive sockets has not failed to connect. A request that times out
 * with `lateReceipt` keeps its connection and passes on the receipt of an answer that comes later.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLOSE_WAIT_MS, EnclaveClient } from '../../gateway/pool/enclave-client';

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

describe('a request that times out, with lateReceipt', () => {
  /** A server that answers after `delayMs` with a receipt header, and records when each connection closed. */
  async function slowEnclave(delayMs: number): Promise<{ url: string; closedAt: number[]; answeredAt: number[]; close: () => Promise<void> }> {
    const closedAt: number[] = [];
    const answeredAt: number[] = [];
    const timers: NodeJS.Timeout[] = [];
    const slow = createServer((_req, res) => {
      timers.push(setTimeout(() => {
        if (!res.socket?.writable) return; // the client has gone: nothing signed
        answeredAt.push(Date.now());
        res.setHeader('teegate-receipt', 'late.receipt.jws');
        res.end('{}');
      }, delayMs));
    });
    slow.on('connection', (socket) => socket.on('close', () => closedAt.push(Date.now())));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, closedAt, answeredAt, close: () => new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        slow.closeAllConnections();
        slow.close(() => resolve());
      }) };
  }

  it('answers timeout at once, keeps the connection, and passes on the receipt of the answer that comes later', async () => {
    // Answered 100 ms after the timeout, within the drain (as long as the timeout again).
    const enclave = await slowEnclave(300);
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 200 });
    try {
      const late: string[] = [];
      let seen!: () => void;
      const lateSeen = new Promise<void>((resolve) => (seen = resolve));
      await expect(client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{}'), lateReceipt: (r) => (late.push(r), seen()) })).rejects.toMatchObject({ kind: 'timeout' });
      expect(late).toEqual([]); // the timeout is answered before the enclave's answer comes
      await lateSeen;
      expect(late).toEqual(['late.receipt.jws']);
      expect(enclave.answeredAt).toHaveLength(1);
      expect(enclave.closedAt).toEqual([]); // the connection was open when the enclave answered
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('when no answer comes, closes its sending side once the timeout has passed again; the enclave\'s server then closes; nothing is passed on', async () => {
    const enclave = await slowEnclave(60_000);
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 100 });
    try {
      const late: string[] = [];
      const started = Date.now();
      await expect(client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{}'), lateReceipt: (r) => late.push(r) })).rejects.toMatchObject({ kind: 'timeout' });
      const deadline = Date.now() + 10_000;
      while (enclave.closedAt.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(enclave.closedAt).toHaveLength(1);
      // Open through the timeout and as long again (drained), closed well before CLOSE_WAIT_MS would force it.
      expect(enclave.closedAt[0]! - started).toBeGreaterThanOrEqual(2 * 100 - 20);
      expect(enclave.closedAt[0]! - started).toBeLessThan(2 * 100 + CLOSE_WAIT_MS);
      expect(late).toEqual([]);
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('closes the connection once the late answer\'s receipt is passed on, without waiting out the drain', async () => {
    const enclave = await slowEnclave(1_100);
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 1_000 });
    try {
      let seen!: () => void;
      const lateSeen = new Promise<void>((resolve) => (seen = resolve));
      await expect(client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{}'), lateReceipt: () => seen() })).rejects.toMatchObject({ kind: 'timeout' });
      await lateSeen;
      // The drain would keep it until the timeout has passed again (1 s after it); it is closed well before.
      const deadline = Date.now() + 500;
      while (enclave.closedAt.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(enclave.closedAt).toHaveLength(1);
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('without lateReceipt, closes the connection at the timeout (the enclave then signs nothing)', async () => {
    const enclave = await slowEnclave(300);
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 100 });
    try {
      await expect(client.request({ method: 'GET', path: '/health' })).rejects.toMatchObject({ kind: 'timeout' });
      await new Promise((r) => setTimeout(r, 400));
      expect(enclave.closedAt).toHaveLength(1);
      expect(enclave.answeredAt).toEqual([]);
    } finally {
      client.close();
      await enclave.close();
    }
  });
});

it('health checks are not queued behind inferences that fill the agent', async () => {
  const enclave = createServer((req, res) => {
    if (req.url === '/health') res.end('{"status":"ready"}');
    // inferences never answer
  });
  await new Promise<void>((resolve) => enclave.listen(0, '127.0.0.1', resolve));
  const client = new EnclaveClient(`http://127.0.0.1:${(enclave.address() as AddressInfo).port}`, { connectTimeoutMs: 500, timeoutMs: 5_000, maxSockets: 2 });
  try {
    const hanging = [0, 1].map(() => client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{}') }).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 100));
    await expect(client.getJson('/health', 1_000)).resolves.toEqual({ status: 200, json: { status: 'ready' } });
    client.close();
    await Promise.all(hanging);
  } finally {
    client.close();
    enclave.closeAllConnections();
    await new Promise((resolve) => enclave.close(resolve));
  }
});

describe('limits of one answer', () => {
  async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; closedAt: number[]; close: () => Promise<void> }> {
    const s = createServer(handler);
    const closedAt: number[] = [];
    s.on('connection', (socket) => socket.on('close', () => closedAt.push(Date.now())));
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
      closedAt,
      close: () =>
        new Promise((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    };
  }

  it('takes an answer of exactly maxResponseBytes; one byte more is invalid', async () => {
    const enclave = await serve((req, res) => res.end(Buffer.alloc(Number(req.url!.slice(1)), 0x20)));
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 5_000, maxResponseBytes: 2048 });
    try {
      expect((await client.request({ method: 'GET', path: '/2048' })).body.length).toBe(2048);
      await expect(client.request({ method: 'GET', path: '/2049' })).rejects.toMatchObject({ kind: 'invalid', message: `${enclave.url} answered more than 2048 bytes` });
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('a request still waiting for a socket when its time is up was never sent: not-sent, ECONNECTTIMEOUT', async () => {
    const enclave = await serve((_req, res) => setTimeout(() => res.end('ok'), 500));
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 5_000, timeoutMs: 5_000, maxSockets: 1 });
    try {
      const first = client.request({ method: 'GET', path: '/' });
      await expect(client.request({ method: 'GET', path: '/', timeoutMs: 100 })).rejects.toMatchObject({ kind: 'not-sent', errorCode: 'ECONNECTTIMEOUT' });
      expect((await first).status).toBe(200);
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('a request sent on a reused keep-alive connection that gets no answer in time is a timeout (it may have run), not not-sent', async () => {
    const enclave = await serve((req, res) => (req.url === '/slow' ? setTimeout(() => res.end('late'), 1_000) : res.end('ok')));
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 5_000, maxSockets: 1 });
    try {
      expect((await client.request({ method: 'GET', path: '/' })).status).toBe(200); // the connection is kept for the next request
      await expect(client.request({ method: 'POST', path: '/slow', body: Buffer.from('{}'), timeoutMs: 200 })).rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('sends a body with its Content-Length and content type, not chunked', async () => {
    const seen: { length?: string; coding?: string; type?: string }[] = [];
    const enclave = await serve((req, res) => {
      seen.push({ length: req.headers['content-length'], coding: req.headers['transfer-encoding'], type: req.headers['content-type'] });
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 5_000 });
    try {
      await client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{"inputs":[]}'), contentType: 'application/json' });
      expect(seen).toEqual([{ length: '13', coding: undefined, type: 'application/json' }]);
    } finally {
      client.close();
      await enclave.close();
    }
  });

  it('a timed-out answer whose headers (and receipt) came is closed at once, not drained, even with lateReceipt', async () => {
    // The headers and receipt come at once; the body never ends.
    const enclave = await serve((_req, res) => {
      res.writeHead(200, { 'teegate-receipt': 'early.receipt.jws', 'content-length': '100' });
      res.write('{');
    });
    const client = new EnclaveClient(enclave.url, { connectTimeoutMs: 1_000, timeoutMs: 2_000 });
    try {
      const late: string[] = [];
      await expect(client.request({ method: 'POST', path: '/v2/models/m/infer', body: Buffer.from('{}'), lateReceipt: (r) => late.push(r) })).rejects.toMatchObject({
        kind: 'timeout',
        receipt: 'early.receipt.jws',
      });
      // Draining would keep it open for the timeout again (2 s); closing it takes a moment.
      const deadline = Date.now() + 1_000;
      while (enclave.closedAt.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(enclave.closedAt).toHaveLength(1);
      expect(late).toEqual([]); // its receipt travels with the error, once
    } finally {
      client.close();
      await enclave.close();
    }
  });
});
