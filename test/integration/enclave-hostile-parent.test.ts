/**
 * The enclave's HTTP surface as a hostile parent instance (or gateway) attacks it: every byte it
 * sends is the attacker's. Real enclaves on loopback (dev NSM; the shipped OCR model and tiny
 * generated ones), raw sockets where HTTP framing matters. What is checked:
 *  - every refusal is JSON `{code, message}` with the registry's status for its code, never a
 *    crash, a hang, an empty body or a silently dropped connection, and the enclave keeps serving;
 *  - slow or idle connections are ended by a timeout;
 *  - the receipt counter: `seq` is spent only on an answer the caller receives, so a refused,
 *    failed or abandoned request never leaves a gap an auditor would blame on the operator.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { fromBase64, randomBytes, toHex } from '../../attestation/bytes';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { ERROR_REGISTRY, isErrorCode, type ErrorCode } from '../../attestation/errors';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { sealRequest } from '../../attestation/sealed-request';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { defaultModelConfigs, type ModelConfig } from '../../enclave/models/model-config';
import { addInt64Model } from '../../enclave/models/testing/tiny-onnx';
import { DEMO_MODEL, DEMO_TEXT, demoRequest } from '../support/demo';
import { myModelBytes, startTestEnclave } from '../support/gateway-harness';
import { PNG_SIGNATURE, pngChunk } from '../support/png';
import { affineRequest, tinyModelConfigs } from '../support/tiny-models';

jest.setTimeout(120_000);

const MIB = 1024 * 1024;

let enclave: RunningEnclave;

/** Every socket a test opened: destroyed after the tests so the enclave closes and nothing lingers. */
const sockets = new Set<Socket>();

function modelConfigs(): ModelConfig[] {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-hostile-parent-'));
  const [affine] = tinyModelConfigs(dir);
  const file = (name: string, bytes: Uint8Array): { path: string; sha256: string } => {
    const path = join(dir, `${name}.onnx`);
    writeFileSync(path, bytes);
    return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
  };
  return [
    ...defaultModelConfigs(),
    affine!,
    // A second version of the same file: `affine` without a version runs version 2 (the last configured).
    { ...affine!, version: '2' },
    { name: 'mymodel', version: '1', kind: 'onnx', ...file('mymodel', myModelBytes()) },
    // a + b, INT64 [N] each: dynamic dimensions that may disagree (onnxruntime refuses the run).
    { name: 'add', version: '1', kind: 'onnx', ...file('add', addInt64Model()) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP helpers
// ---------------------------------------------------------------------------------------------

interface RawAnswer {
  status: number;
  /** Status line and headers, lower-cased. */
  head: string;
  /** The body, decoded as UTF-8. */
  body: string;
}

interface Exchange {
  answers: RawAnswer[];
  /** The connection was closed by the enclave (not by this side giving up). */
  closedByServer: boolean;
  ms: number;
}

/** The complete HTTP/1.1 answers in `text` (latin1, one character per byte); an incomplete tail is left out. */
function parseAnswers(text: string): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const head = text.slice(at, headEnd).toLowerCase();
    const status = /^http\/1\.1 (\d{3})/.exec(head);
    if (!status) throw new Error(`not an HTTP/1.1 answer: ${JSON.stringify(text.slice(at, at + 200))}`);
    const start = headEnd + 4;
    const code = Number(status[1]);
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    let body: string;
    if (code === 100) {
      body = '';
      at = start;
    } else if (length) {
      const end = start + Number(length[1]);
      if (end > text.length) break;
      body = text.slice(start, end);
      at = end;
    } else if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      let p = start;
      body = '';
      let complete = false;
      for (;;) {
        const lineEnd = text.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n', lineEnd + 2);
          if (trailerEnd < 0) break;
          p = trailerEnd + 2;
          complete = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > text.length) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      at = p;
    } else {
      body = text.slice(start);
      at = text.length;
    }
    answers.push({ status: code, head, body: Buffer.from(body, 'latin1').toString('utf8') });
  }
  return answers;
}

interface ExchangeOptions {
  /** Wait this long between parts. */
  gapMs?: number;
  /** Half-close (FIN) once everything is written; keep reading. */
  halfClose?: boolean;
  /** Give up (and destroy the socket) after this long. */
  maxMs?: number;
  /** Stop (and destroy the socket) once this many final (non-100) answers arrived. */
  answers?: number;
  /** Called with the socket once connected. */
  onSocket?: (socket: Socket) => void;
  /** The enclave to talk to (default: the file's). */
  url?: string;
}

/** Writes `parts` to the enclave on one connection and reads what comes back. */
function exchange(parts: readonly (string | Buffer)[], options: ExchangeOptions = {}): Promise<Exchange> {
  const { port } = new URL(options.url ?? enclave.url);
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let giveUp: NodeJS.Timeout | undefined;
    let closedByUs = false;
    const socket = connect(Number(port), '127.0.0.1');
    sockets.add(socket);
    const finals = (): RawAnswer[] => parseAnswers(Buffer.concat(chunks).toString('latin1')).filter((a) => a.status !== 100);
    const stop = (): void => {
      closedByUs = true;
      socket.destroy();
    };
    socket.on('connect', () => {
      options.onSocket?.(socket);
      void (async () => {
        for (const [i, part] of parts.entries()) {
          if (i > 0 && options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
          if (socket.destroyed || !socket.writable) return;
          socket.write(part);
        }
        if (options.halfClose && !socket.destroyed) socket.end();
      })();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.answers !== undefined && finals().length >= options.answers) stop();
    });
    socket.on('error', () => undefined); // EPIPE or a reset after the answer: the answer is what counts
    socket.on('close', () => {
      clearTimeout(giveUp);
      sockets.delete(socket);
      resolve({ answers: parseAnswers(Buffer.concat(chunks).toString('latin1')), closedByServer: !closedByUs, ms: Date.now() - started });
    });
    giveUp = setTimeout(stop, options.maxMs ?? 20_000);
  });
}

/** Status, code (or the raw body if it is not JSON) and whether the answer says it is JSON. */
function typed(answer: RawAnswer | undefined): { status: number | undefined; code: unknown; json: boolean } {
  if (answer === undefined) return { status: undefined, code: 'no answer at all', json: false };
  let code: unknown = answer.body;
  try {
    const parsed = JSON.parse(answer.body) as { code?: unknown };
    code = typeof parsed.code === 'string' ? parsed.code : 'JSON without a code';
  } catch {
    code = `not JSON: ${JSON.stringify(answer.body)}`;
  }
  return { status: answer.status, code, json: /\r\ncontent-type: application\/json/.test(answer.head) };
}

/** What `typed` must give for a refusal with `code`: the registry's status, JSON. */
function refusal(code: ErrorCode): { status: number; code: ErrorCode; json: boolean } {
  return { status: ERROR_REGISTRY[code].status, code, json: true };
}

function request(method: string, target: string, headers: readonly string[] = [], body = ''): string {
  return `${method} ${target} HTTP/1.1\r\nHost: enclave\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;
}

/** A POST with a JSON body and its Content-Length. */
function postText(target: string, body: string, extra: readonly string[] = [], type = 'application/json'): string {
  return request('POST', target, [`Content-Type: ${type}`, `Content-Length: ${Buffer.byteLength(body)}`, ...extra], body);
}

// ---------------------------------------------------------------------------------------------
// fetch helpers
// ---------------------------------------------------------------------------------------------

interface Health {
  status: string;
  receipts_issued: number;
  in_flight: number;
}

async function health(): Promise<Health> {
  return (await (await fetch(`${enclave.url}/health`)).json()) as Health;
}

async function issued(): Promise<number> {
  return (await health()).receipts_issued;
}

/** Waits until the enclave has no inference in flight (every receipt it will sign is signed). */
async function settled(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await health()).in_flight > 0) {
    if (Date.now() > deadline) throw new Error('inferences still in flight after 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Posted {
  status: number;
  body: string;
  receipt: string | null;
  type: string | null;
}

async function post(path: string, body: string, type = 'application/json'): Promise<Posted> {
  const res = await fetch(`${enclave.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: res.status, body: await res.text(), receipt: res.headers.get('teegate-receipt'), type: res.headers.get('content-type') };
}

function typedPosted(res: Posted): { status: number | undefined; code: unknown; json: boolean } {
  return typed({ status: res.status, head: `\r\ncontent-type: ${res.type ?? ''}`, body: res.body });
}

interface Claims {
  seq: number;
  model: { name: string; version: string; sha256: string };
  nonce?: string;
}

function claimsOf(receipt: string): Claims {
  return JSON.parse(Buffer.from(receipt.split('.')[1]!, 'base64url').toString('utf8')) as Claims;
}

const AFFINE = JSON.stringify(affineRequest());
const DEMO = JSON.stringify(demoRequest());
const DEMO_PNG = Buffer.from(demoRequest().inputs[0]!.data[0]!, 'base64');

/** An 8-bit gray PNG of `width` x `height` zero pixels (a few KB however large it decodes). */
function blankPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // gray
  const raw = Buffer.alloc(height * (width + 1)); // filter 0, zero samples
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw, { level: 9 })), pngChunk('IEND', new Uint8Array(0))]);
}

function ocrBody(image: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [image] }], ...extra });
}

beforeAll(async () => {
  enclave = await startTestEnclave(await createDevCa(), modelConfigs());
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await enclave?.close();
});

// ---------------------------------------------------------------------------------------------

describe('HTTP framing a hostile parent sends: JSON 4xx from the registry, connection closed, no receipt spent', () => {
  const body = AFFINE;
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const infer = (headers: string[], payload: string): string =>
    `POST /v2/models/affine/infer HTTP/1.1\r\nHost: enclave\r\nContent-Type: application/json\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${payload}`;
  const cases: [string, string, ErrorCode][] = [
    ['two identical Content-Length headers', infer([`Content-Length: ${body.length}`, `Content-Length: ${body.length}`], body), 'REQUEST_INVALID'],
    ['a Content-Length list "n, n"', infer([`Content-Length: ${body.length}, ${body.length}`], body), 'REQUEST_INVALID'],
    ['a negative Content-Length', infer(['Content-Length: -1'], body), 'REQUEST_INVALID'],
    ['a Content-Length with a plus sign', infer([`Content-Length: +${body.length}`], body), 'REQUEST_INVALID'],
    ['a Content-Length in exponent form', infer(['Content-Length: 1e2'], body), 'REQUEST_INVALID'],
    ['a Content-Length past 64 bits', infer(['Content-Length: 99999999999999999999999'], body), 'REQUEST_INVALID'],
    ['a Content-Length past 2^53 (no exact double)', infer(['Content-Length: 9007199254740993'], body), 'BODY_TOO_LARGE'],
    ['Transfer-Encoding chunked in two headers', infer(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], chunked), 'REQUEST_INVALID'],
    ['Transfer-Encoding "chunked, chunked"', infer(['Transfer-Encoding: chunked, chunked'], chunked), 'REQUEST_INVALID'],
    ['Transfer-Encoding gzip alone (no framing)', infer(['Transfer-Encoding: gzip'], body), 'TRANSFER_CODING_UNSUPPORTED'],
    ['Transfer-Encoding "gzip, chunked" (a coding the enclave does not read)', infer(['Transfer-Encoding: gzip, chunked'], chunked), 'TRANSFER_CODING_UNSUPPORTED'],
    ['Transfer-Encoding identity with a Content-Length', infer(['Transfer-Encoding: identity', `Content-Length: ${body.length}`], body), 'REQUEST_INVALID'],
    ['a chunk size that is not hex', infer(['Transfer-Encoding: chunked'], 'zz\r\n'), 'REQUEST_INVALID'],
    ['a chunk size past 64 bits', infer(['Transfer-Encoding: chunked'], 'fffffffffffffffffff\r\n'), 'REQUEST_INVALID'],
    ['a negative chunk size', infer(['Transfer-Encoding: chunked'], '-5\r\nhello\r\n0\r\n\r\n'), 'REQUEST_INVALID'],
    ['chunk data not followed by CRLF', infer(['Transfer-Encoding: chunked'], `${body.length.toString(16)}\r\n${body}XX0\r\n\r\n`), 'REQUEST_INVALID'],
    ['chunk extensions of 20 KB', infer(['Transfer-Encoding: chunked'], `5;${'e'.repeat(20_000)}\r\n`), 'BODY_TOO_LARGE'],
    ['HTTP/1.2', 'GET /health HTTP/1.2\r\nHost: enclave\r\n\r\n', 'REQUEST_INVALID'],
    ['a lower-case method', 'get /health HTTP/1.1\r\nHost: enclave\r\n\r\n', 'REQUEST_INVALID'],
    ['bare LF line ends', 'GET /health HTTP/1.1\nHost: enclave\n\n', 'REQUEST_INVALID'],
    ['an obs-folded header', 'GET /health HTTP/1.1\r\nHost: enclave\r\nX-A: 1\r\n  2\r\n\r\n', 'REQUEST_INVALID'],
    ['a NUL in a header value', 'GET /health HTTP/1.1\r\nHost: enclave\r\nX-A: 1\u0000\r\n\r\n', 'REQUEST_INVALID'],
    ['a space before a header colon', 'GET /health HTTP/1.1\r\nHost : enclave\r\n\r\n', 'REQUEST_INVALID'],
    ['a space in the target', 'GET /hea lth HTTP/1.1\r\nHost: enclave\r\n\r\n', 'REQUEST_INVALID'],
    ['a target that is not a path', 'GET health HTTP/1.1\r\nHost: enclave\r\n\r\n', 'REQUEST_INVALID'],
    ['an HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'REQUEST_INVALID'],
    ['a 20 KB request target', `GET /health?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: enclave\r\n\r\n`, 'REQUEST_HEADERS_TOO_LARGE'],
    ['one 20 KB header', `GET /health HTTP/1.1\r\nHost: enclave\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 'REQUEST_HEADERS_TOO_LARGE'],
  ];

  let before: number;
  beforeAll(async () => {
    before = await issued();
  });

  it.each(cases)('%s', async (_what, text, code) => {
    const { answers, closedByServer } = await exchange([Buffer.from(text, 'latin1')]);
    expect(typed(answers[0])).toEqual(refusal(code));
    expect(answers[0]!.head).toContain('connection: close');
    expect({ answers: answers.length, closedByServer }).toEqual({ answers: 1, closedByServer: true });
  });

  it('spent no receipt number on any of them (the boot\'s first receipt is still seq 0), and still serves', async () => {
    expect(before).toBe(0);
    expect(await issued()).toBe(before);
    const res = await post('/v2/models/affine/infer', AFFINE);
    expect(res.status).toBe(200);
    expect(claimsOf(res.receipt!).seq).toBe(before);
  });
});

describe('HTTP framing the enclave accepts, answered as the request means it', () => {
  it('answers pipelined requests in order, the two inferences with the next two receipt numbers', async () => {
    const before = await issued();
    const pipeline = [
      postText('/v2/models/affine/infer', AFFINE),
      request('GET', '/health'),
      postText('/v2/models/affine/infer', '{"inputs": ['),
      postText('/v2/models/affine/versions/1/infer', JSON.stringify(affineRequest([5, 6, 7, 8])), ['Connection: close']),
    ].join('');
    const { answers } = await exchange([pipeline]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 200]);
    expect(typed(answers[2])).toEqual(refusal('REQUEST_INVALID'));
    // Node runs pipelined requests at once (only the answers are queued in order), and a number is
    // taken when an inference is signed: either may finish first, but no number is skipped or reused.
    const seqs = [answers[0]!, answers[3]!].map((a) => (JSON.parse(a.body) as { parameters: { seq: number } }).parameters.seq);
    expect(seqs.sort((a, b) => a - b)).toEqual([before, before + 1]);
    expect(await issued()).toBe(before + 2);
    expect((JSON.parse(answers[3]!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([11, 13, 15, 17]);
  });

  it('runs and answers an inference pipelined behind a slower request (its response has no socket until the first is sent)', async () => {
    const before = await issued();
    // A fresh attestation (the NSM's signature) is answered after the inference behind it has run.
    const pipeline = [request('GET', `/attestation?nonce=${toHex(randomBytes(32))}`), postText('/v2/models/affine/infer', AFFINE, ['Connection: close'])].join('');
    const { answers } = await exchange([pipeline]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect((JSON.parse(answers[1]!.body) as { parameters: { seq: number } }).parameters.seq).toBe(before);
    expect(await issued()).toBe(before + 1);
  });

  it('reads a chunked body in 1-byte chunks with extensions and a trailer as its data', async () => {
    const chunks = [...Buffer.from(AFFINE)].map((b) => `1;ext=v\r\n${String.fromCharCode(b)}\r\n`).join('');
    const { answers } = await exchange([
      request('POST', '/v2/models/affine/infer', ['Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close'], `${chunks}0\r\nX-Trailer: t\r\n\r\n`),
    ]);
    expect(answers[0]!.status).toBe(200);
    expect((JSON.parse(answers[0]!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([3, 5, 7, 9]);
  });

  it('answers HTTP/1.0 without a Host header, then closes', async () => {
    const { answers, closedByServer } = await exchange(['GET /manifest HTTP/1.0\r\n\r\n']);
    expect(answers[0]!.status).toBe(200);
    expect(JSON.parse(answers[0]!.body)).toEqual(enclave.manifest);
    expect(closedByServer).toBe(true);
  });

  it('routes an absolute-form target by its path alone: the authority it names is ignored', async () => {
    const { answers } = await exchange([request('GET', 'http://elsewhere.example:8443/manifest', ['Connection: close'])]);
    expect(answers[0]!.status).toBe(200);
    expect(JSON.parse(answers[0]!.body)).toEqual(enclave.manifest);
  });

  it('normalises dot segments before routing, and the receipt names the model that ran', async () => {
    const { answers } = await exchange([postText('/v2/models/mymodel/../affine/versions/1/infer', AFFINE, ['Connection: close'])]);
    expect(answers[0]!.status).toBe(200);
    const parsed = JSON.parse(answers[0]!.body) as { model_name: string; model_version: string; parameters: { receipt: string } };
    expect([parsed.model_name, parsed.model_version]).toEqual(['affine', '1']);
    expect(claimsOf(parsed.parameters.receipt).model).toEqual(enclave.manifest.models.find((m) => m.name === 'affine' && m.version === '1'));
  });

  it('reads a GET body as a body: a request hidden in it is never run (no smuggling), the next request is', async () => {
    const before = await issued();
    const hidden = postText('/v2/models/affine/infer', AFFINE);
    const { answers } = await exchange([request('GET', '/health', [`Content-Length: ${hidden.length}`], hidden) + request('GET', '/manifest', ['Connection: close'])]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(JSON.parse(answers[1]!.body)).toEqual(enclave.manifest);
    await settled();
    expect(await issued()).toBe(before);
  });

  it.each([
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: enclave\r\nConnection: close\r\n\r\n'],
    ['PATCH', 'PATCH /v2/models/affine/infer HTTP/1.1\r\nHost: enclave\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}'],
    ['TRACE', 'TRACE /health HTTP/1.1\r\nHost: enclave\r\nConnection: close\r\n\r\n'],
  ])('answers the method %s with 404 ROUTE_NOT_FOUND as JSON', async (_what, text) => {
    const { answers } = await exchange([text]);
    expect(typed(answers[0])).toEqual(refusal('ROUTE_NOT_FOUND'));
  });

  it('serves an Upgrade request as a plain one (no protocol switch)', async () => {
    const { answers } = await exchange([request('GET', '/health', ['Connection: Upgrade, close', 'Upgrade: websocket'])]);
    expect(answers[0]!.status).toBe(200);
    expect(answers[0]!.head).not.toContain('upgrade');
  });

  it('answers Expect: 100-continue with 100, then the inference once the body comes', async () => {
    const head = request('POST', '/v2/models/affine/infer', ['Content-Type: application/json', `Content-Length: ${AFFINE.length}`, 'Expect: 100-continue', 'Connection: close']);
    const { answers } = await exchange([head, AFFINE], { gapMs: 200 });
    expect(answers.map((a) => a.status)).toEqual([100, 200]);
  });

  // Node would send 100 Continue before any check ran, and the caller upload a body only to have
  // it refused; the enclave asks for the body only once it is going to read it.
  it.each([
    ['a declared body over the limit', ['Content-Type: application/json', `Content-Length: ${33 * MIB}`], 'BODY_TOO_LARGE'],
    ['a media type it does not take', ['Content-Type: text/plain', 'Content-Length: 2'], 'MEDIA_TYPE_UNSUPPORTED'],
  ] as const)('answers Expect: 100-continue with %s with its refusal, never 100 Continue', async (_what, headers, code) => {
    const head = request('POST', '/v2/models/affine/infer', [...headers, 'Expect: 100-continue', 'Connection: close']);
    const { answers } = await exchange([head], { answers: 1, maxMs: 5_000 });
    expect(answers.map((a) => a.status)).toEqual([ERROR_REGISTRY[code].status]);
    expect(typed(answers[0])).toEqual(refusal(code));
  });

  it('answers a request behind 2,500 short headers (within 16 KiB) with JSON, and keeps serving', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => `a${i % 10}:b`);
    const { answers } = await exchange([postText('/v2/models/affine/infer', AFFINE, [...many, 'Connection: close'])]);
    // Node keeps the first 2,000 headers: the Content-Type after them is not seen.
    const answer = typed(answers[0]);
    expect(answer.json).toBe(true);
    expect([200, 415]).toContain(answer.status);
    expect((await health()).status).toBe('ready');
  });

  // Node's HTTP server would answer these by itself with an empty body (417, 400) or drop the
  // connection (CONNECT); the enclave answers them in JSON, as the gateway does
  // (enclave/http-server.ts listenEnclaveHttp, attestation/http-error-answer.ts).
  it.each([
    ['Expect other than 100-continue', request('GET', '/health', ['Expect: 200-ok', 'Connection: close']), 'EXPECTATION_UNSUPPORTED'],
    ['an HTTP/1.1 request without Host', 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', 'REQUEST_INVALID'],
    ['CONNECT', 'CONNECT enclave:443 HTTP/1.1\r\nHost: enclave:443\r\n\r\n', 'ROUTE_NOT_FOUND'],
  ] as [string, string, ErrorCode][])('%s: a JSON refusal from the registry, not Node\'s empty answer', async (_what, text, code) => {
    const { answers } = await exchange([text], { maxMs: 5_000 });
    expect(typed(answers[0])).toEqual(refusal(code));
  });

  it('a request it does not read as sent (no Host, or a transfer coding besides chunked) closes its kept-alive connection', async () => {
    for (const [text, code] of [
      ['GET /health HTTP/1.1\r\n\r\n', 'REQUEST_INVALID'],
      [request('POST', '/v2/models/affine/infer', ['Content-Type: application/json', 'Transfer-Encoding: gzip, chunked'], '2\r\n{}\r\n0\r\n\r\n'), 'TRANSFER_CODING_UNSUPPORTED'],
    ] as [string, ErrorCode][]) {
      const { answers, closedByServer } = await exchange([text], { maxMs: 5_000 });
      expect({ ...typed(answers[0]), closedByServer, close: answers[0]!.head.includes('connection: close') }).toEqual({ ...refusal(code), closedByServer: true, close: true });
    }
  });
});

describe('body limits on every route (32 MiB)', () => {
  const GIB = 1024 * MIB;

  it('refuses a declared inference body over 32 MiB, plain or sealed, before reading it: 413 and the connection closed', async () => {
    for (const type of ['application/json', 'application/jose']) {
      const head = request('POST', '/v2/models/affine/infer', [`Content-Type: ${type}`, `Content-Length: ${32 * MIB + 1}`]);
      const { answers, closedByServer } = await exchange([head], { maxMs: 15_000 });
      expect({ type, ...typed(answers[0]), closedByServer }).toEqual({ type, ...refusal('BODY_TOO_LARGE'), closedByServer: true });
    }
  });

  it('runs an inference whose body is exactly 32 MiB (the default limit)', async () => {
    const res = await fetch(`${enclave.url}/v2/models/affine/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: AFFINE.padEnd(32 * MIB, ' ') });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { outputs: unknown[] }).outputs).toHaveLength(1);
  });

  it('refuses a chunked inference body as it grows past 32 MiB: 413, and closes without reading the rest', async () => {
    const before = await issued();
    const chunk = `${MIB.toString(16)}\r\n${' '.repeat(MIB)}\r\n`;
    const head = request('POST', '/v2/models/affine/infer', ['Content-Type: application/json', 'Transfer-Encoding: chunked']);
    // 64 MiB offered; the enclave must stop at 32.
    const { answers, closedByServer } = await exchange([head, ...Array.from({ length: 64 }, () => chunk)], { maxMs: 60_000 });
    expect({ ...typed(answers[0]), closedByServer }).toEqual({ ...refusal('BODY_TOO_LARGE'), closedByServer: true });
    expect(await issued()).toBe(before);
  });

  it.each([
    ['POST /health', 'POST', '/health', 'application/json', 'ROUTE_NOT_FOUND'],
    ['POST /attestation', 'POST', '/attestation', 'application/json', 'ROUTE_NOT_FOUND'],
    ['POST /v2/models/affine (metadata)', 'POST', '/v2/models/affine', 'application/json', 'ROUTE_NOT_FOUND'],
    ['an inference with Content-Type text/plain', 'POST', '/v2/models/affine/infer', 'text/plain', 'MEDIA_TYPE_UNSUPPORTED'],
    ['an inference with Content-Type application/json-patch+json', 'POST', '/v2/models/affine/infer', 'application/json-patch+json', 'MEDIA_TYPE_UNSUPPORTED'],
  ] as [string, string, string, string, ErrorCode][])('%s with a declared 1 GiB body: refused at once, without waiting for the body', async (_what, method, path, type, code) => {
    const { answers } = await exchange([request(method, path, [`Content-Type: ${type}`, `Content-Length: ${GIB}`])], { answers: 1, maxMs: 15_000 });
    expect(typed(answers[0])).toEqual(refusal(code));
  });

  it('refuses an inference with no Content-Type: 415', async () => {
    const { answers } = await exchange([request('POST', '/v2/models/affine/infer', [`Content-Length: ${AFFINE.length}`, 'Connection: close'], AFFINE)]);
    expect(typed(answers[0])).toEqual(refusal('MEDIA_TYPE_UNSUPPORTED'));
  });

  it('answers a GET that declares a 1 GiB body without buffering it (the answer comes before the body)', async () => {
    const { answers } = await exchange([request('GET', `/attestation?nonce=${'ab'.repeat(32)}`, [`Content-Length: ${GIB}`])], { answers: 1, maxMs: 15_000 });
    expect(answers[0]!.status).toBe(200);
  });

  it('takes the media type case-insensitively and with parameters', async () => {
    const res = await post('/v2/models/affine/infer', AFFINE, 'Application/JSON; charset=utf-8');
    expect(res.status).toBe(200);
  });
});

describe('/attestation nonce forms', () => {
  const nonce = randomBytes(32);
  const hex = toHex(nonce);
  const attestedNonce = async (query: string): Promise<string | undefined> => {
    const res = await fetch(`${enclave.url}/attestation?${query}`);
    expect(res.status).toBe(200);
    const { document } = (await res.json()) as { document: string };
    const verified = await verifyAttestation(fromBase64(document), { rootCertificates: [enclave.devRootPem!] });
    return verified.nonce ? toHex(verified.nonce) : undefined;
  };

  it.each([
    ['lower-case hex', `nonce=${hex}`],
    ['upper-case hex', `nonce=${hex.toUpperCase()}`],
    ['mixed case', `nonce=${hex.slice(0, 32).toUpperCase()}${hex.slice(32)}`],
    ['hex digits %-escaped (URL decoding comes first)', `nonce=${[...hex].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')}`],
  ])('accepts %s: the document carries exactly the 32 bytes', async (_what, query) => {
    expect(await attestedNonce(query)).toBe(hex);
  });

  it('gives the boot document (no nonce) when the parameter is absent or named otherwise', async () => {
    expect(await attestedNonce(`NONCE=${hex}`)).toBeUndefined();
  });

  it.each([
    ['63 hex characters', hex.slice(1)],
    ['65 hex characters', `${hex}a`],
    ['an empty nonce', ''],
    ['a 0x prefix', `0x${hex.slice(2)}`],
    ['a leading space (%20)', `%20${hex.slice(1)}`],
    ['a plus sign (a space in a query)', `+${hex.slice(1)}`],
    ['a trailing NUL (%00)', `${hex.slice(1)}%00`],
    ['a non-hex letter', `g${hex.slice(1)}`],
    ['a full-width digit (U+FF11)', `%EF%BC%91${hex.slice(1)}`],
    ['base64 of 32 bytes (44 characters)', Buffer.from(nonce).toString('base64url')],
    ['128 hex characters (64 bytes, the NSM maximum)', hex.repeat(2)],
  ])('refuses %s: 400 NONCE_INVALID', async (_what, value) => {
    const res = await fetch(`${enclave.url}/attestation?nonce=${value}`);
    expect(typed({ status: res.status, head: `\r\ncontent-type: ${res.headers.get('content-type') ?? ''}`, body: await res.text() })).toEqual(refusal('NONCE_INVALID'));
  });

  // `?nonce=A&nonce=B` is ambiguous: refused, as the gateway refuses it, not attested with A.
  it('refuses a repeated nonce parameter: 400 NONCE_INVALID', async () => {
    const other = toHex(randomBytes(32));
    const res = await fetch(`${enclave.url}/attestation?nonce=${hex}&nonce=${other}`);
    expect(typed({ status: res.status, head: `\r\ncontent-type: ${res.headers.get('content-type') ?? ''}`, body: await res.text() })).toEqual(refusal('NONCE_INVALID'));
  });
});

describe('OIP requests a hostile parent shapes: typed refusals, no receipt number spent', () => {
  const affine = '/v2/models/affine/infer';
  const x = (fields: Record<string, unknown>): Record<string, unknown> => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...fields });
  const inputs = (...tensors: unknown[]): string => JSON.stringify({ inputs: tensors });
  const my = (input0: unknown[], input1: unknown[]): string =>
    JSON.stringify({ inputs: [{ name: 'input0', datatype: 'UINT32', shape: [2, 2], data: input0 }, { name: 'input1', datatype: 'BOOL', shape: [3], data: input1 }] });
  const ocr = `/v2/models/${DEMO_MODEL}/infer`;
  const demoB64 = DEMO_PNG.toString('base64');

  const cases: [string, string, string, ErrorCode][] = [
    // The body as a whole
    ['an empty body', affine, '', 'REQUEST_INVALID'],
    ['a JSON array', affine, '[]', 'REQUEST_INVALID'],
    ['JSON null', affine, 'null', 'REQUEST_INVALID'],
    ['a JSON string', affine, '"inputs"', 'REQUEST_INVALID'],
    ['a byte order mark before the JSON', affine, `\ufeff${AFFINE}`, 'REQUEST_INVALID'],
    ['trailing bytes after the JSON', affine, `${AFFINE} {}`, 'REQUEST_INVALID'],
    ['no inputs member', affine, '{}', 'TENSOR_INVALID'],
    ['inputs an object', affine, '{"inputs": {"x": [1, 2, 3, 4]}}', 'TENSOR_INVALID'],
    ['inputs empty', affine, '{"inputs": []}', 'TENSOR_MISSING'],
    ['65 input tensors', affine, inputs(...Array.from({ length: 65 }, (_, i) => x({ name: `x${i}` }))), 'TENSOR_INVALID'],
    // Shapes
    ['shape and data length differing', affine, inputs(x({ shape: [2, 4] })), 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['a nested row one element short', affine, inputs(x({ shape: [2, 4], data: [[1, 2, 3, 4], [1, 2, 3]] })), 'TENSOR_DATA_LENGTH_MISMATCH'],
    ['data nested deeper than the shape', affine, inputs(x({ data: [[[1], [2], [3], [4]]] })), 'TENSOR_INVALID'],
    ['nested and flat elements mixed', affine, inputs(x({ shape: [2, 4], data: [[1, 2, 3, 4], 5] })), 'TENSOR_INVALID'],
    ['a shape whose element product overflows (2^26 x 2^26 x 4) with no data', affine, inputs(x({ shape: [2 ** 26, 2 ** 26, 4], data: [] })), 'TENSOR_TOO_LARGE'],
    ['a shape of 2^53-1 rows with no data', affine, inputs(x({ shape: [Number.MAX_SAFE_INTEGER, 4], data: [] })), 'TENSOR_TOO_LARGE'],
    ['a huge dimension beside a zero one', affine, inputs(x({ shape: [Number.MAX_SAFE_INTEGER, 0], data: [] })), 'TENSOR_SHAPE_MISMATCH'],
    ['a dimension past 2^53', affine, '{"inputs":[{"name":"x","datatype":"FP32","shape":[9007199254740993,4],"data":[]}]}', 'TENSOR_INVALID'],
    ['a negative dimension', affine, inputs(x({ shape: [-1, 4] })), 'TENSOR_INVALID'],
    ['a fractional dimension', affine, inputs(x({ shape: [1.5, 4] })), 'TENSOR_INVALID'],
    ['a dimension as a string', affine, inputs(x({ shape: ['1', 4] })), 'TENSOR_INVALID'],
    ['a shape that is not an array', affine, inputs(x({ shape: '1,4' })), 'TENSOR_INVALID'],
    ['rank 9', affine, inputs(x({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 4] })), 'TENSOR_INVALID'],
    ['rank 1 for a rank 2 input', affine, inputs(x({ shape: [4] })), 'TENSOR_SHAPE_MISMATCH'],
    // Datatypes and elements
    ['a datatype in lower case', affine, inputs(x({ datatype: 'fp32' })), 'TENSOR_INVALID'],
    ['FP64 for an FP32 input', affine, inputs(x({ datatype: 'FP64' })), 'TENSOR_DATATYPE_MISMATCH'],
    ['BYTES for an FP32 input', affine, inputs(x({ datatype: 'BYTES', data: ['1', '2', '3', '4'] })), 'TENSOR_DATATYPE_MISMATCH'],
    ['a number as a string', affine, inputs(x({ data: [1, 2, 3, '4'] })), 'TENSOR_INVALID'],
    ['a null element', affine, inputs(x({ data: [1, 2, 3, null] })), 'TENSOR_INVALID'],
    ['a boolean element in FP32', affine, inputs(x({ data: [1, 2, 3, true] })), 'TENSOR_INVALID'],
    ['an FP32 element out of range (1e39)', affine, inputs(x({ data: [1, 2, 3, 1e39] })), 'TENSOR_INVALID'],
    ['1e400 (JSON.parse makes it Infinity)', affine, '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,1e400]}]}', 'TENSOR_INVALID'],
    ['UINT32 -1', '/v2/models/mymodel/infer', my([1, 2, 3, -1], [true, false, true]), 'TENSOR_INVALID'],
    ['UINT32 2^32', '/v2/models/mymodel/infer', my([1, 2, 3, 2 ** 32], [true, false, true]), 'TENSOR_INVALID'],
    ['UINT32 1.5', '/v2/models/mymodel/infer', my([1, 2, 3, 1.5], [true, false, true]), 'TENSOR_INVALID'],
    ['BOOL as 1', '/v2/models/mymodel/infer', my([1, 2, 3, 4], [1, 0, 1]), 'TENSOR_INVALID'],
    // Names
    ['two inputs with one name', affine, inputs(x({}), x({})), 'TENSOR_INVALID'],
    ['an unknown input beside the right one', affine, inputs(x({}), x({ name: 'z' })), 'TENSOR_NAME_UNKNOWN'],
    ['a missing input', '/v2/models/mymodel/infer', JSON.stringify({ inputs: [{ name: 'input0', datatype: 'UINT32', shape: [2, 2], data: [1, 2, 3, 4] }] }), 'TENSOR_MISSING'],
    ['an empty name', affine, inputs(x({ name: '' })), 'TENSOR_INVALID'],
    ['a name of 257 bytes', affine, inputs(x({ name: 'n'.repeat(257) })), 'TENSOR_INVALID'],
    ['a name with a lone surrogate', affine, '{"inputs":[{"name":"x\\ud800","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}', 'TENSOR_INVALID'],
    ['a name that is a number', affine, inputs(x({ name: 7 })), 'TENSOR_INVALID'],
    // Parameters, id, model_version, outputs
    ['tensor parameters holding an object', affine, inputs(x({ parameters: { a: {} } })), 'TENSOR_INVALID'],
    ['tensor parameters as a string', affine, inputs(x({ parameters: 'p' })), 'TENSOR_INVALID'],
    ['request parameters as a string', affine, JSON.stringify({ ...affineRequest(), parameters: 'p' }), 'REQUEST_INVALID'],
    ['request parameters as an array', affine, JSON.stringify({ ...affineRequest(), parameters: [] }), 'REQUEST_INVALID'],
    ['request parameters null', affine, JSON.stringify({ ...affineRequest(), parameters: null }), 'REQUEST_INVALID'],
    ['request parameters a number', affine, JSON.stringify({ ...affineRequest(), parameters: 5 }), 'REQUEST_INVALID'],
    ['a null nonce', affine, JSON.stringify({ ...affineRequest(), parameters: { nonce: null } }), 'NONCE_INVALID'],
    ['a nonce object', affine, JSON.stringify({ ...affineRequest(), parameters: { nonce: { hex: 'ab' } } }), 'NONCE_INVALID'],
    ['an id that is a number', affine, JSON.stringify({ ...affineRequest(), id: 5 }), 'REQUEST_INVALID'],
    ['an id that is null', affine, JSON.stringify({ ...affineRequest(), id: null }), 'REQUEST_INVALID'],
    ['an id of 257 characters', affine, JSON.stringify({ ...affineRequest(), id: 'i'.repeat(257) }), 'REQUEST_INVALID'],
    ['an empty model_version', affine, JSON.stringify({ ...affineRequest(), model_version: '' }), 'REQUEST_INVALID'],
    ['a model_version that is a number', affine, JSON.stringify({ ...affineRequest(), model_version: 1 }), 'REQUEST_INVALID'],
    ['a model_version of 65 characters', affine, JSON.stringify({ ...affineRequest(), model_version: 'v'.repeat(65) }), 'REQUEST_INVALID'],
    ['a model_version contradicting the path', '/v2/models/affine/versions/1/infer', JSON.stringify({ ...affineRequest(), model_version: '2' }), 'REQUEST_INVALID'],
    ['a model_version not served', affine, JSON.stringify({ ...affineRequest(), model_version: '9' }), 'MODEL_NOT_FOUND'],
    ['outputs naming an unknown output', affine, JSON.stringify({ ...affineRequest(), outputs: [{ name: 'z' }] }), 'TENSOR_NAME_UNKNOWN'],
    ['outputs null', affine, JSON.stringify({ ...affineRequest(), outputs: null }), 'REQUEST_INVALID'],
    ['outputs with an object lacking a name', affine, JSON.stringify({ ...affineRequest(), outputs: [{}] }), 'REQUEST_INVALID'],
    ['outputs a list of strings', affine, JSON.stringify({ ...affineRequest(), outputs: ['y'] }), 'REQUEST_INVALID'],
    ['deep JSON inside parameters', affine, `{"inputs":${JSON.stringify(affineRequest().inputs)},"parameters":{"a":${'['.repeat(40)}${']'.repeat(40)}}}`, 'REQUEST_INVALID'],
    // The OCR model's image input: BYTES [1], a PNG as base64
    ['the image as FP32', ocr, JSON.stringify({ inputs: [{ name: 'image', datatype: 'FP32', shape: [1], data: [1] }] }), 'TENSOR_DATATYPE_MISMATCH'],
    ['two images', ocr, JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: [demoB64, demoB64] }] }), 'TENSOR_SHAPE_MISMATCH'],
    ['the image as a number', ocr, ocrBody(5), 'TENSOR_INVALID'],
    ['an empty image string', ocr, ocrBody(''), 'INPUT_IMAGE_INVALID'],
    ['base64 of a length that is 1 mod 4', ocr, ocrBody('A'.repeat(41)), 'INPUT_IMAGE_INVALID'],
    ['base64 padding alone', ocr, ocrBody('===='), 'INPUT_IMAGE_INVALID'],
    ['padding in the middle', ocr, ocrBody(`${demoB64.slice(0, 8)}==${demoB64.slice(8)}`), 'INPUT_IMAGE_INVALID'],
    ['MIME base64 with line breaks', ocr, ocrBody(demoB64.replace(/(.{76})/g, '$1\r\n')), 'INPUT_IMAGE_INVALID'],
    ['a data: URL', ocr, ocrBody(`data:image/png;base64,${demoB64}`), 'INPUT_IMAGE_INVALID'],
    ['base64 of text, not a PNG', ocr, ocrBody(Buffer.from('hello, enclave').toString('base64')), 'INPUT_IMAGE_INVALID'],
    ['a truncated PNG', ocr, ocrBody(DEMO_PNG.subarray(0, DEMO_PNG.length - 20).toString('base64')), 'INPUT_IMAGE_INVALID'],
    ['a PNG decoding past 16 MiB (4097 x 4096, a few KB compressed)', ocr, ocrBody(blankPng(4097, 4096).toString('base64')), 'INPUT_IMAGE_INVALID'],
  ];

  let before: number;
  beforeAll(async () => {
    before = await issued();
  });

  it.each(cases)('%s', async (_what, path, body, code) => {
    const res = await post(path, body);
    expect(typedPosted(res)).toEqual(refusal(code));
    expect(res.receipt).toBeNull();
  });

  it('spent no receipt number on any of them', async () => {
    await settled();
    expect(await issued()).toBe(before);
  });

  it('answers MODEL_RUN_FAILED (dynamic dimensions that disagree) and MODEL_OUTPUT_UNREPRESENTABLE (INT64 past 2^53) without spending a number', async () => {
    const start = await issued();
    const add = (a: number[], b: number[]): string => JSON.stringify({ inputs: [{ name: 'a', datatype: 'INT64', shape: [a.length], data: a }, { name: 'b', datatype: 'INT64', shape: [b.length], data: b }] });
    expect(typedPosted(await post('/v2/models/add/infer', add([1, 2], [1, 2, 3])))).toEqual(refusal('MODEL_RUN_FAILED'));
    expect(typedPosted(await post('/v2/models/add/infer', add([Number.MAX_SAFE_INTEGER], [Number.MAX_SAFE_INTEGER])))).toEqual(refusal('MODEL_OUTPUT_UNREPRESENTABLE'));
    const ok = await post('/v2/models/add/infer', add([1, 2], [3, 4]));
    expect(ok.status).toBe(200);
    expect(claimsOf(ok.receipt!).seq).toBe(start);
  });

  it('refuses sealed requests that replay or carry bad tensors without spending a number', async () => {
    const start = await issued();
    const good = await sealRequest(enclave.manifest, affineRequest(), { model: { name: 'affine' } });
    expect((await post(affine, good.jwe, 'application/jose')).status).toBe(200);
    expect(typedPosted(await post(affine, good.jwe, 'application/jose'))).toEqual(refusal('JWE_REPLAYED'));
    const bad = await sealRequest(enclave.manifest, { inputs: [x({ shape: [-1, 4] })] }, { model: { name: 'affine' } });
    expect(typedPosted(await post(affine, bad.jwe, 'application/jose'))).toEqual(refusal('TENSOR_INVALID'));
    const elsewhere = await sealRequest(enclave.manifest, affineRequest(), { model: { name: 'affine' } });
    expect(typedPosted(await post('/v2/models/mymodel/infer', elsewhere.jwe, 'application/jose'))).toEqual(refusal('REQUEST_INVALID'));
    expect(typedPosted(await post(affine, 'not.a.jwe', 'application/jose'))).toEqual(refusal('JWE_INVALID'));
    await settled();
    expect(await issued()).toBe(start + 1);
  });
});

describe('OIP requests at the edges that the enclave runs (one number each, delivered)', () => {
  const run = async (path: string, body: string): Promise<{ outputs: { name: string; shape: number[]; data: unknown[] }[]; parameters: { seq: number } }> => {
    const res = await post(path, body);
    expect({ status: res.status, body: res.status === 200 ? 'ok' : res.body }).toEqual({ status: 200, body: 'ok' });
    return JSON.parse(res.body) as { outputs: { name: string; shape: number[]; data: unknown[] }[]; parameters: { seq: number } };
  };

  it('a tensor with no rows ([0, 4], no data)', async () => {
    const answer = await run('/v2/models/affine/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [0, 4], data: [] }] }));
    expect(answer.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [0, 4], data: [] }]);
  });

  it('a request for no outputs at all (outputs: []): the model runs and the answer carries none', async () => {
    const answer = await run('/v2/models/affine/infer', JSON.stringify({ ...affineRequest(), outputs: [] }));
    expect(answer.outputs).toEqual([]);
  });

  it('a JSON object with a member twice: the last one counts (as JSON.parse reads it), and the receipt covers what ran', async () => {
    const answer = await run('/v2/models/affine/infer', `{"inputs": [{"name":"x","datatype":"FP32","shape":[1,4],"data":[9,9,9,9]}], "inputs": ${JSON.stringify(affineRequest().inputs)}}`);
    expect(answer.outputs[0]!.data).toEqual([3, 5, 7, 9]);
  });

  it('the demo PNG in the base64url alphabet, unpadded', async () => {
    const answer = await run(`/v2/models/${DEMO_MODEL}/infer`, ocrBody(DEMO_PNG.toString('base64url')));
    expect(answer.outputs.find((o) => o.name === 'text')!.data).toEqual([DEMO_TEXT]);
  });

  it('a PNG at the decoded-size limit (4096 x 4096 gray, a few KB compressed): bounded work, blank text', async () => {
    const answer = await run(`/v2/models/${DEMO_MODEL}/infer`, ocrBody(blankPng(4096, 4096).toString('base64')));
    expect(answer.outputs.find((o) => o.name === 'text')!.data).toEqual(['']);
  });
});

describe('model paths', () => {
  const cases: [string, string, number, ErrorCode | { name: string; version: string }][] = [
    ['POST', '/v2/models/affine/infer', 200, { name: 'affine', version: '2' }],
    ['POST', '/v2/models/affine/versions/1/infer', 200, { name: 'affine', version: '1' }],
    ['POST', '/v2/models/affine/versions/2/infer?version=1', 200, { name: 'affine', version: '2' }],
    ['POST', '/v2/models/affine/versions/3/infer', 404, 'MODEL_NOT_FOUND'],
    ['POST', '/v2/models/AFFINE/infer', 404, 'MODEL_NOT_FOUND'],
    ['POST', '/v2/models/affine/versions//infer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/affine/versions/1/versions/2/infer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/affine/infer/', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/%61ffine/infer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/affine%2Finfer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/affine/versions/1%2F..%2F2/infer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/-affine/infer', 404, 'ROUTE_NOT_FOUND'],
    ['POST', `/v2/models/${'a'.repeat(65)}/infer`, 404, 'ROUTE_NOT_FOUND'],
    ['POST', '/v2/models/affine/versions/1/../2/infer', 200, { name: 'affine', version: '2' }],
    ['POST', '/v2/models/mymodel/infer', 400, 'TENSOR_NAME_UNKNOWN'], // the path picks the model; the body cannot
    ['GET', '/v2/models/affine/versions/1', 200, { name: 'affine', version: '1' }],
    ['GET', '/v2/models/affine/versions/9', 404, 'MODEL_NOT_FOUND'],
    ['GET', '/v2/models/nope', 404, 'MODEL_NOT_FOUND'],
  ];

  it.each(cases)('%s %s: %d', async (method, path, status, expected) => {
    const { answers } = await exchange([method === 'POST' ? postText(path, AFFINE, ['Connection: close']) : request('GET', path, ['Connection: close'])]);
    const answer = answers[0]!;
    if (typeof expected === 'string') {
      expect(typed(answer)).toEqual({ status, code: expected, json: true });
      return;
    }
    expect(answer.status).toBe(status);
    const parsed = JSON.parse(answer.body) as { model_name?: string; model_version?: string; name?: string; versions?: string[]; parameters?: { receipt: string } };
    if (method === 'GET') {
      expect(parsed.name).toBe(expected.name);
      return;
    }
    expect([parsed.model_name, parsed.model_version]).toEqual([expected.name, expected.version]);
    expect(claimsOf(parsed.parameters!.receipt).model).toEqual(enclave.manifest.models.find((m) => m.name === expected.name && m.version === expected.version));
  });
});

describe('receipt numbers when the caller goes away', () => {
  it('a client that hangs up mid-body, or right after its headers, spends no number, and the enclave keeps serving', async () => {
    const before = await issued();
    const head = request('POST', '/v2/models/affine/infer', ['Content-Type: application/json', `Content-Length: ${AFFINE.length}`]);
    for (const parts of [[head], [head, AFFINE.slice(0, 10)]]) {
      const { answers } = await exchange(parts, { gapMs: 20, maxMs: 300 });
      expect(answers).toEqual([]);
    }
    await settled();
    expect(await issued()).toBe(before);
    expect((await post('/v2/models/affine/infer', AFFINE)).status).toBe(200);
  });

  // Node ends an HTTP/1.1 connection on the caller's FIN, so the answer cannot go out: the enclave
  // checks, just before it signs, that the caller can still receive the answer, and otherwise
  // spends no number (REQUEST_ABANDONED; enclave-service.ts `answerable`).
  it('a client that half-closes after its request either gets the answer or spends no number', async () => {
    const before = await issued();
    const { answers } = await exchange([postText('/v2/models/affine/infer', AFFINE)], { halfClose: true, maxMs: 10_000 });
    await settled();
    const delivered = answers.filter((a) => /\r\nteegate-receipt: /.test(a.head)).length;
    expect({ receiptsDelivered: delivered, receiptsSpent: (await issued()) - before }).toEqual({ receiptsDelivered: delivered, receiptsSpent: delivered });
  });

  // What the gateway's upstream timeout does (gateway/pool/enclave-client.ts `outgoing.destroy()`):
  // a caller gone while its request waits for or runs in the model gets no receipt signed, so an
  // honest operator behind a slow model never shows gaps in the log.
  it('a client that disconnects while the model runs spends no number', async () => {
    const before = await issued();
    // Blockers queue on the OCR model's single worker, so the victim's run waits behind them.
    const BLOCKERS = 40;
    let pending = BLOCKERS;
    const blockers = Array.from({ length: BLOCKERS }, () =>
      post(`/v2/models/${DEMO_MODEL}/infer`, DEMO).then((res) => {
        pending--;
        return res;
      }),
    );
    const deadline = Date.now() + 60_000;
    while ((await health()).in_flight < BLOCKERS / 2) {
      if (Date.now() > deadline) throw new Error('the blockers never got in flight');
      await new Promise((r) => setTimeout(r, 5));
    }
    let victim: Socket | undefined;
    const victimDone = exchange([postText(`/v2/models/${DEMO_MODEL}/infer`, DEMO)], { maxMs: 60_000, onSocket: (s) => (victim = s) });
    // In flight on the enclave beyond every blocker not yet answered: the victim's body is read and its run queued.
    let pendingAtDisconnect = 0;
    for (;;) {
      const h = await health();
      if (h.in_flight > pending) {
        pendingAtDisconnect = pending;
        break;
      }
      if (Date.now() > deadline) throw new Error('the victim never got in flight');
      await new Promise((r) => setTimeout(r, 2));
    }
    victim!.destroy(); // what the gateway's upstream timeout does
    const victimAnswers = (await victimDone).answers;
    const answered = await Promise.all(blockers);
    await settled();
    expect(victimAnswers).toEqual([]);
    // The premise: the victim still had blockers ahead of it when it went away.
    expect(pendingAtDisconnect).toBeGreaterThan(3);
    const delivered = answered.filter((r) => r.status === 200 && r.receipt !== null).length;
    expect(delivered).toBe(BLOCKERS);
    expect({ receiptsDelivered: delivered, receiptsSpent: (await issued()) - before }).toEqual({ receiptsDelivered: BLOCKERS, receiptsSpent: BLOCKERS });
  });
});

describe('many requests at once', () => {
  it('answers a burst of 300 mixed requests (valid, refused, sealed, OCR) each with 200 or a typed error; the numbers delivered are exactly the numbers spent, without gaps', async () => {
    const before = await issued();
    const kinds = [
      () => post('/v2/models/affine/infer', AFFINE),
      () => post('/v2/models/affine/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] }] })),
      async () => post('/v2/models/affine/infer', (await sealRequest(enclave.manifest, affineRequest())).jwe, 'application/jose'),
      () => post(`/v2/models/${DEMO_MODEL}/infer`, DEMO),
      () => post(`/v2/models/${DEMO_MODEL}/infer`, ocrBody('AAAA')),
      () => post('/v2/models/add/infer', JSON.stringify({ inputs: [{ name: 'a', datatype: 'INT64', shape: [2], data: [1, 2] }, { name: 'b', datatype: 'INT64', shape: [3], data: [1, 2, 3] }] })),
    ];
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => kinds[i % kinds.length]!()));
    await settled();
    const bad = results.filter((r) => r.status !== 200 && !(isErrorCode(typedPosted(r).code) && typedPosted(r).json && ERROR_REGISTRY[typedPosted(r).code as ErrorCode].status === r.status));
    expect(bad).toEqual([]);
    const seqs = results.flatMap((r) => (r.receipt ? [claimsOf(r.receipt).seq] : [])).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 150 }, (_, i) => before + i));
    expect(await issued()).toBe(before + 150);
    expect((await post('/v2/models/affine/infer', AFFINE)).status).toBe(200);
  });
});

describe('slow and idle connections', () => {
  // An enclave of its own with short timeouts (the defaults are 120 s, 66 s and 65 s), so that
  // the same code paths end these connections within seconds.
  const TIMEOUTS = { requestMs: 4_000, headersMs: 2_000, keepAliveMs: 1_500 };
  let timed: RunningEnclave;
  beforeAll(async () => {
    timed = await startEnclave({ models: tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-hostile-timeouts-'))), devCa: await createDevCa(), host: '127.0.0.1', http: { timeouts: TIMEOUTS } });
  });
  afterAll(async () => {
    await timed?.close();
  });

  /** A connection that sends `head` and then one byte of `drip` every 250 ms, until it is ended. */
  function dripping(head: string, drip: string): Promise<Exchange> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = exchange(head ? [head] : [], {
      url: timed.url,
      maxMs: 30_000,
      onSocket: (socket) => {
        if (drip) timer = setInterval(() => socket.writable && socket.write(drip), 250);
      },
    });
    return outcome.finally(() => clearInterval(timer));
  }

  it('takes a request timeout below the headers timeout\'s default (the headers timeout is capped to it)', async () => {
    const short = await startEnclave({ models: tinyModelConfigs(mkdtempSync(join(tmpdir(), 'teegate-hostile-timeouts-'))), devCa: await createDevCa(), host: '127.0.0.1', http: { timeouts: { requestMs: 30_000 } } });
    try {
      expect((await fetch(`${short.url}/health`)).status).toBe(200);
    } finally {
      await short.close();
    }
  });

  it('ends each with 408 REQUEST_TIMEOUT as JSON, and the enclave keeps serving', async () => {
    const slow = [
      { name: 'a connection that never sends a byte', outcome: dripping('', '') },
      { name: 'request headers sent one byte every 250 ms', outcome: dripping('GET /health HTTP/1.1\r\nHost: enclave\r\n', 'X') },
      {
        name: 'an inference body sent one byte every 250 ms',
        outcome: dripping('POST /v2/models/affine/infer HTTP/1.1\r\nHost: enclave\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n', ' '),
      },
    ];
    const keptAlive = exchange([request('GET', '/health')], { url: timed.url, maxMs: 30_000 });
    const outcomes = await Promise.all(slow.map(async ({ name, outcome }) => ({ name, ...(await outcome) })));
    for (const o of outcomes) {
      expect({ name: o.name, closedByServer: o.closedByServer, ...typed(o.answers[0]) }).toEqual({ name: o.name, closedByServer: true, ...refusal('REQUEST_TIMEOUT') });
    }
    // Not before the timeout it was given (Node checks every quarter of the request timeout, at most 1 s).
    expect(outcomes.find((o) => o.name.startsWith('an inference body'))!.ms).toBeGreaterThanOrEqual(TIMEOUTS.requestMs - 50);
    const kept = await keptAlive;
    // An idle kept-alive connection is closed by the server too (keepAliveTimeout).
    expect({ status: kept.answers[0]?.status, closedByServer: kept.closedByServer }).toEqual({ status: 200, closedByServer: true });
    const res = await fetch(`${timed.url}/health`);
    expect(res.status).toBe(200);
  });
});
