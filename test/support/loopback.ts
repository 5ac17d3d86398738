/** An HTTP server on 127.0.0.1 (a free port) for tests: its URL, and a close that cuts open connections. */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoopbackServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function serveHttp(handler: RequestListener): Promise<LoopbackServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** POST a JSON body of `chunks` × 1000 spaces as a stream (chunked: no Content-Length is declared). */
export function postStreamed(url: string, chunks: number, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: new ReadableStream({
      start(controller) {
        for (let i = 0; i < chunks; i++) controller.enqueue(new Uint8Array(1000).fill(32));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
}
