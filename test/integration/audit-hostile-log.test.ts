/**
 * The auditor against a hostile log server on loopback: a proxy in front of a real log that
 * answers chosen paths itself (an error status, bytes that are not UTF-8, an answer that is not
 * JSON, a tile of the wrong size, a consistency proof without a proof array or with elements that
 * are not base64). Fetch failures reject the audit (AUDIT_FETCH_FAILED); a proof that is not one is
 * a failed audit (LOG_PROOF_INVALID); a log key that is not one is AUDIT_STATE_INVALID.
 */
import { toBase64 } from '../../attestation/bytes';
import { auditLog } from '../../attestation/audit/audit-log';
import type { AuditState } from '../../attestation/audit/audit-state';
import { LogClient } from '../../attestation/audit/log-client';
import { openCheckpoint } from '../../attestation/log/checkpoint';
import { encodeEntryBundle, parseEntryBundle } from '../../attestation/log/entry-bundle';
import { MAX_PROOF_ELEMENTS } from '../../attestation/log/merkle';
import { generateNoteKey, parseVerifierKey } from '../../attestation/log/signed-note';
import type { TransparencyLog } from '../../gateway/log/transparency-log';
import { serveHttp, type LoopbackServer } from '../support/loopback';
import { openFileLog, serveLog, tempDir, type ServedLog } from './log-fixtures';

jest.setTimeout(60_000);

const ORIGIN = 'hostile.teegate/log';

interface Answer {
  readonly status?: number;
  readonly body: string | Uint8Array;
}

let log: TransparencyLog;
let real: ServedLog;
let hostile: LoopbackServer;
let verifierKey: string;
/** The log at size 3: what an earlier audit run kept. The log now has 5 entries. */
let state: AuditState;
/** Answers the hostile server gives itself, by request path (query included, below /v1/log/). */
let answers: Map<string, Answer>;

beforeAll(async () => {
  const keys = await generateNoteKey(ORIGIN);
  verifierKey = keys.verifierKey;
  log = await openFileLog(tempDir(), ORIGIN, keys.signerKey);
  for (let i = 0; i < 3; i++) await log.appendReceipt(`r.${i}.s`);
  const note = await log.flush();
  const { checkpoint } = await openCheckpoint(note, await parseVerifierKey(verifierKey));
  state = { version: 1, origin: ORIGIN, verifierKey, checkpoint: { size: checkpoint.size, rootHash: toBase64(checkpoint.rootHash), note } };
  for (let i = 3; i < 5; i++) await log.appendReceipt(`r.${i}.s`);
  await log.flush();
  real = await serveLog(log);
  hostile = await serveHttp((req, res) => {
    const path = (req.url ?? '').replace(/^\/v1\/log\//, '');
    const own = answers.get(path);
    if (own) {
      res.writeHead(own.status ?? 200, { 'content-type': 'application/octet-stream' });
      res.end(typeof own.body === 'string' ? own.body : Buffer.from(own.body));
      return;
    }
    void fetch(`${real.url}${req.url ?? ''}`).then(
      async (upstream) => {
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' });
        res.end(Buffer.from(await upstream.arrayBuffer()));
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
});

beforeEach(() => {
  answers = new Map();
});

afterAll(async () => {
  await hostile.close();
  await real.close();
  await log.close();
});

function audit(options: { verifierKey?: string; state?: AuditState } = {}) {
  return auditLog({ client: new LogClient(hostile.url), ...options });
}

test('the proxy passes the log through: without its own answers the audit reaches the entries', async () => {
  const report = await audit({ state });
  expect(report.checkpoint).toEqual({ size: 5, rootHash: expect.any(String) });
  expect(report.previous).toEqual({ size: 3, rootHash: state.checkpoint.rootHash });
  // The entries are not receipts, and nothing else fails.
  expect(report.failures.map((f) => [f.index, f.code])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 'RECEIPT_INVALID']));
});

test('an answer with an error status is AUDIT_FETCH_FAILED naming the status', async () => {
  answers.set('checkpoint', { status: 503, body: 'try later' });
  await expect(audit({ verifierKey })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: `GET ${hostile.url}/v1/log/checkpoint answered HTTP 503` });
  answers.clear();
  answers.set('key', { status: 404, body: 'no key here' });
  await expect(audit()).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: `GET ${hostile.url}/v1/log/key answered HTTP 404` });
});

test('a key or checkpoint that is not UTF-8 is AUDIT_FETCH_FAILED, not read with replacement characters', async () => {
  answers.set('key', { body: Uint8Array.of(...Buffer.from(`${verifierKey.slice(0, 10)}`), 0xff, 0xfe) });
  await expect(audit()).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: 'key is not UTF-8' });
  answers.clear();
  const note = await (await fetch(`${real.url}/v1/log/checkpoint`)).arrayBuffer();
  answers.set('checkpoint', { body: Uint8Array.of(0xc0, ...new Uint8Array(note)) });
  await expect(audit({ verifierKey })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: 'checkpoint is not UTF-8' });
});

test('a log key fetched on first use that is not a verifier key is AUDIT_STATE_INVALID', async () => {
  answers.set('key', { body: 'hostile.teegate/log+00000000+AAAA\n' });
  await expect(audit()).rejects.toMatchObject({ code: 'AUDIT_STATE_INVALID', message: expect.stringMatching(/^log key: /) });
});

test('a level-0 tile of the wrong size is AUDIT_FETCH_FAILED', async () => {
  answers.set('tile/0/000.p/5', { body: new Uint8Array(5 * 32 - 1) });
  await expect(audit({ verifierKey })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: 'tile 0/0 has 159 bytes, expected 160' });
  answers.set('tile/0/000.p/5', { body: new Uint8Array(6 * 32) });
  await expect(audit({ verifierKey })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: 'tile 0/0 has 192 bytes, expected 160' });
});

test('an entry bundle the server fails to give is AUDIT_FETCH_FAILED, not a per-entry failure', async () => {
  answers.set('tile/entries/000.p/5', { status: 500, body: '' });
  await expect(audit({ verifierKey })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: expect.stringMatching(/tile\/entries\/000\.p\/5 answered HTTP 500$/) });
});

test('an entry bundle holding fewer entries than the tile says is refused, and the audit names it, not skipping the missing entries', async () => {
  const full = new Uint8Array(await (await fetch(`${real.url}/v1/log/tile/entries/000.p/5`)).arrayBuffer());
  answers.set('tile/entries/000.p/5', { body: encodeEntryBundle(parseEntryBundle(full).slice(0, 4)) });
  await expect(new LogClient(hostile.url).entryBundle(0, 5)).rejects.toMatchObject({ code: 'LOG_ENTRY_MALFORMED' });
  const report = await audit({ verifierKey });
  expect(report.failures).toContainEqual(expect.objectContaining({ code: 'AUDIT_ENTRY_MISMATCH', index: 0, message: expect.stringMatching(/^entry bundle 0 \(entries 0\.\.4\): /) }));
});

describe('consistency proof answers', () => {
  const PROOF = 'proof/consistency?from=3&to=5';

  test('an answer that is not JSON is AUDIT_FETCH_FAILED', async () => {
    answers.set(PROOF, { body: 'proof: none' });
    await expect(audit({ state })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: `${PROOF} did not answer JSON` });
  });

  test.each([
    ['null', 'null'],
    ['an object without proof', '{"hashes":[]}'],
    ['a proof that is a string', '{"proof":"AAAA"}'],
    ['a proof of numbers', '{"proof":[1,2]}'],
    [`a proof of more than ${MAX_PROOF_ELEMENTS} elements`, JSON.stringify({ proof: Array.from({ length: MAX_PROOF_ELEMENTS + 1 }, () => toBase64(new Uint8Array(32))) })],
  ])('%s is AUDIT_FETCH_FAILED', async (_what, body) => {
    answers.set(PROOF, { body });
    await expect(audit({ state })).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED', message: 'consistency proof answer has no proof array' });
  });

  test.each([
    ['a character outside base64', '!!!!'],
    ['a length no base64 has', 'AAAAA'],
    ['padding at a wrong length', 'AA='],
  ])('an element with %s fails the audit with LOG_PROOF_INVALID', async (_what, element) => {
    answers.set(PROOF, { body: JSON.stringify({ proof: [element] }) });
    const report = await audit({ state });
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      { code: 'LOG_PROOF_INVALID', message: 'checkpoint of size 5 is not consistent with the last one seen (size 3): consistency proof element is not base64' },
    ]);
    expect(report.state).toBeUndefined();
  });
});
