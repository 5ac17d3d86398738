/**
 * A gateway or log server that answers without end (a chunked body, no declared length): the
 * client SDK and the auditor read answers as they stream in and stop at their limits
 * (CLIENT_RESPONSE_INVALID, AUDIT_FETCH_FAILED) instead of buffering until memory runs out; and
 * one that stops answering fails the auditor's request after its timeout instead of hanging it.
 */
import { connect } from '../../attestation/client/client';
import { MAX_ANSWER_BYTES } from '../../attestation/client/http';
import { LogClient } from '../../attestation/audit/log-client';
import { serveHttp, type LoopbackServer } from '../support/loopback';

jest.setTimeout(60_000);

let endless: LoopbackServer;
let url: string;
/** Bytes the server managed to send per request before the client hung up. */
const sent: number[] = [];

beforeAll(async () => {
  endless = await serveHttp((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let total = 0;
    let open = true;
    res.on('close', () => {
      open = false;
      sent.push(total);
    });
    const pump = (): void => {
      while (open && total < 4 * MAX_ANSWER_BYTES) {
        total += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (open) res.end(); // never reached by a reader that keeps its limit
    };
    pump();
  });
  url = endless.url;
});

afterAll(() => endless.close());

it('the client SDK stops reading at its answer limit: CLIENT_RESPONSE_INVALID', async () => {
  sent.length = 0;
  await expect(connect(url, { policy: { pcrs: { 0: 'ab'.repeat(48) } } })).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: expect.stringContaining(`answer exceeds ${MAX_ANSWER_BYTES} bytes`) });
  await new Promise((r) => setTimeout(r, 100));
  // The server was cut off near the limit, not after its 4x the limit.
  expect(sent[0]).toBeLessThan(2 * MAX_ANSWER_BYTES);
});

it('the client SDK refuses an answer that is not UTF-8 rather than reading replacement characters: CLIENT_RESPONSE_INVALID', async () => {
  const latin1 = await serveHttp((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(Buffer.concat([Buffer.from('{"document":"'), Buffer.of(0xff), Buffer.from('","manifest":{}}')]));
  });
  try {
    await expect(connect(latin1.url, { policy: { pcrs: { 0: 'ab'.repeat(48) } } })).rejects.toMatchObject({ code: 'CLIENT_RESPONSE_INVALID', message: expect.stringContaining('the answer is not valid UTF-8') });
  } finally {
    await latin1.close();
  }
});

it('the auditor\'s log client stops reading at its limit: AUDIT_FETCH_FAILED', async () => {
  sent.length = 0;
  await expect(new LogClient(url).verifierKey()).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: expect.stringContaining('answered more than 33554432 bytes') });
  await new Promise((r) => setTimeout(r, 100));
  expect(sent[0]).toBeLessThan(2 * MAX_ANSWER_BYTES);
});

describe('a log server that stops answering', () => {
  let silent: LoopbackServer;
  beforeAll(async () => {
    // /key: headers, then nothing more; anything else: nothing at all.
    silent = await serveHttp((req, res) => {
      if (req.url?.endsWith('/key')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
      }
    });
  });
  afterAll(() => silent.close());

  it('fails the auditor\'s request after its timeout, whether it stalls before its headers or in its body: AUDIT_FETCH_FAILED', async () => {
    const client = new LogClient(silent.url, undefined, 300);
    const started = Date.now();
    await expect(client.get('checkpoint')).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: expect.stringMatching(/^GET .*checkpoint failed: /) });
    await expect(client.verifierKey()).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: expect.stringContaining('reading the answer failed') });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
