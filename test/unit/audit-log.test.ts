/**
 * The auditor against a real log (file store, express router on loopback) holding real dev
 * evidence: boot attestations under a throwaway dev CA and receipts signed by the enclave's
 * receipt signer. Each tampering the issue names is detected with its own code and entry index.
 */
import { createHash } from 'node:crypto';
import { fromBase64, toBase64 } from '../../attestation/bytes';
import { auditLog, type AuditOptions } from '../../attestation/audit/audit-log';
import { LogClient, type FetchLike } from '../../attestation/audit/log-client';
import { formatAuditState, parseAuditState, type AuditState } from '../../attestation/audit/audit-state';
import { encodeEntry } from '../../attestation/log/entry';
import { encodeEntryBundle, parseEntryBundle } from '../../attestation/log/entry-bundle';
import type { DevCa } from '../../attestation/dev/dev-ca';
import { generateNoteKey, parseSignerKey } from '../../attestation/log/signed-note';
import { signCheckpoint } from '../../attestation/log/checkpoint';
import type { TransparencyLog } from '../../gateway/log/transparency-log';
import { bootEnclave, devCa, openFileLog, serveLog, tempDir, type BootedEnclave, type ServedLog } from '../integration/log-fixtures';

jest.setTimeout(60000);

type Item = { kind: 'att'; enclave: BootedEnclave } | { kind: 'receipt'; jws: string };

let ca: DevCa;
let a: BootedEnclave;
let b: BootedEnclave;
let items: Item[];
let signerKey: string;
const open: { log: TransparencyLog; served: ServedLog }[] = [];

beforeAll(async () => {
  ca = await devCa();
  a = await bootEnclave(ca, 0x11);
  b = await bootEnclave(ca, 0x22);
  items = [{ kind: 'att', enclave: a }];
  for (let i = 0; i < 5; i++) items.push({ kind: 'receipt', jws: await a.receipt() });
  items.push({ kind: 'att', enclave: b });
  for (let i = 0; i < 3; i++) items.push({ kind: 'receipt', jws: await b.receipt() });
  for (let i = 0; i < 2; i++) items.push({ kind: 'receipt', jws: await a.receipt() });
  signerKey = (await generateNoteKey('test.teegate/log')).signerKey;
});

afterAll(async () => {
  for (const { log, served } of open) {
    await served.close();
    await log.close();
  }
});

/** A log (same key each time: the same operator) holding `list`, published, served. */
async function logOf(list: readonly Item[]): Promise<{ log: TransparencyLog; url: string }> {
  const log = await openFileLog(tempDir(), 'test.teegate/log', signerKey);
  for (const it of list) {
    if (it.kind === 'att') await log.appendAttestation(it.enclave.document, it.enclave.manifest);
    else await log.appendReceipt(it.jws);
  }
  await log.flush();
  const served = await serveLog(log);
  open.push({ log, served });
  return { log, url: served.url };
}

const roots = () => [ca.rootPem];

function audit(url: string, extra: Partial<AuditOptions> = {}, fetchFn?: FetchLike) {
  return auditLog({ client: new LogClient(url, fetchFn), rootCertificates: roots(), ...extra });
}

test('a clean log passes, with per-image boots, receipts and no gaps', async () => {
  const { url } = await logOf(items);
  const progress: number[] = [];
  const report = await audit(url, { policy: { pcrs: { 0: a.pcr0 } } }).catch((e) => e);
  // PCR0 policy for image A rejects image B's boot, naming its index.
  expect(report.ok).toBe(false);
  expect(report.failures[0]).toMatchObject({ index: 6, code: 'PCR_MISMATCH' });
  // B's receipts name the refused attestation as such, not as one never logged.
  expect(report.failures.slice(1).map((f: { index: number; code: string; message: string }) => [f.index, f.code, f.message.replace(/[0-9a-f]{16}…/, 'ATT…')])).toEqual(
    [7, 8, 9].map((i) => [i, 'AUDIT_ATTESTATION_MISSING', `receipt at entry ${i} names boot attestation ATT… which was logged at entry 6 but refused (PCR_MISMATCH)`]),
  );

  const ok = await audit(url, { onProgress: (d) => progress.push(d) });
  expect(ok.failures).toEqual([]);
  expect(ok.ok).toBe(true);
  expect(ok.keySource).toBe('fetched');
  expect(ok.entries).toBe(12);
  expect(ok.attestations).toBe(2);
  expect(ok.receipts).toBe(10);
  expect(progress).toEqual([12]);
  const byPcr = new Map(ok.images.map((i) => [i.pcr0, i]));
  expect(byPcr.get(a.pcr0)).toMatchObject({ boots: 1, receipts: 7, gaps: [] });
  expect(byPcr.get(b.pcr0)).toMatchObject({ boots: 1, receipts: 3, gaps: [] });
  expect(byPcr.get(a.pcr0)!.firstSeen).toMatch(/^\d{4}-/);
  // The state round-trips and a second run against it passes.
  const state = parseAuditState(formatAuditState(ok.state!));
  const again = await audit(url, { state });
  expect(again.ok).toBe(true);
  expect(again.keySource).toBe('state');
});

test('an entry rewritten in transit or in storage is named by index (AUDIT_ENTRY_MISMATCH)', async () => {
  const { url } = await logOf(items);
  const forged = encodeEntry({ type: 'receipt', jws: (items[3] as { jws: string }).jws });
  const rewrite: FetchLike = async (u) => {
    const res = await fetch(u);
    if (!u.includes('/tile/entries/')) return res;
    const entries = parseEntryBundle(new Uint8Array(await res.arrayBuffer()));
    entries[2] = forged; // entry 2 replaced by a copy of entry 3
    const body = encodeEntryBundle(entries);
    return { ok: true, status: 200, arrayBuffer: async () => body.buffer.slice(body.byteOffset, body.byteOffset + body.length) as ArrayBuffer };
  };
  const report = await audit(url, {}, rewrite);
  expect(report.ok).toBe(false);
  expect(report.failures).toContainEqual(expect.objectContaining({ index: 2, code: 'AUDIT_ENTRY_MISMATCH' }));
});

/** A fetch that passes the log's answers through, with `edit` applied to the bytes of the paths it names. */
function editing(edit: (url: string, body: Uint8Array) => Uint8Array | undefined): FetchLike {
  return async (u) => {
    const res = await fetch(u);
    const original = new Uint8Array(await res.arrayBuffer());
    const body = edit(u, original) ?? original;
    return { ok: res.ok, status: res.status, arrayBuffer: async () => body.buffer.slice(body.byteOffset, body.byteOffset + body.length) as ArrayBuffer };
  };
}

/** A log server that serves entry 2 as a copy of entry 3, with its level-0 tile hash rewritten to match. */
function entryTwoForged(): FetchLike {
  const forged = encodeEntry({ type: 'receipt', jws: (items[3] as { jws: string }).jws });
  const leaf = createHash('sha256').update(Uint8Array.of(0)).update(forged).digest();
  return editing((u, body) => {
    if (u.includes('/tile/entries/')) {
      const entries = parseEntryBundle(body);
      entries[2] = forged;
      return encodeEntryBundle(entries);
    }
    if (/\/tile\/0\/[^e]/.test(u)) {
      const tile = body.slice();
      tile.set(leaf, 2 * 32); // the level-0 hash of entry 2
      return tile;
    }
    return undefined;
  });
}

test('an entry rewritten together with its tile hash does not lead to the signed root (AUDIT_ENTRY_MISMATCH)', async () => {
  const { url } = await logOf(items);
  const report = await audit(url, {}, entryTwoForged());
  expect(report.ok).toBe(false);
  // Entry and tile agree (no per-entry mismatch), so the root the checkpoint signs tells; the
  // forged copy also repeats a receipt seq and leaves a gap.
  const mismatches = report.failures.filter((f: { code: string }) => f.code === 'AUDIT_ENTRY_MISMATCH');
  expect(mismatches).toEqual([expect.objectContaining({ message: `the log's tiles do not lead to the root of checkpoint ${items.length}: entries were rewritten or removed` })]);
  expect(report.failures.map((f: { code: string }) => f.code).sort()).toEqual(['AUDIT_ENTRY_MISMATCH', 'AUDIT_SEQUENCE_GAP', 'AUDIT_SEQUENCE_GAP']);
});

test('an entry bundle that is not one is named by its entries (AUDIT_ENTRY_MISMATCH)', async () => {
  const { url } = await logOf(items);
  const report = await audit(url, {}, editing((u, body) => (u.includes('/tile/entries/') ? body.subarray(0, body.length - 7) : undefined)));
  expect(report.ok).toBe(false);
  expect(report.failures[0]).toMatchObject({ index: 0, code: 'AUDIT_ENTRY_MISMATCH', message: expect.stringMatching(/^entry bundle 0 \(entries 0\.\.11\): /) });
});

test('an operator who rewrites an entry and rebuilds the tree forks from the checkpoint seen (LOG_INCONSISTENT)', async () => {
  const first = await logOf(items);
  const seen = await audit(first.url);
  expect(seen.ok).toBe(true);
  const rewritten = [...items];
  rewritten[2] = { kind: 'receipt', jws: (items[3] as { jws: string }).jws };
  const second = await logOf([...rewritten, { kind: 'receipt', jws: await a.receipt() }]);
  const report = await audit(second.url, { state: seen.state! });
  expect(report.ok).toBe(false);
  expect(report.failures[0]!.code).toBe('LOG_INCONSISTENT');
});

test('a receipt whose seq leaps to 2^40 is one gap, reported at once and as one run (AUDIT_SEQUENCE_GAP)', async () => {
  // A misbehaving enclave signs seq 0, 1, 5 and 2^40: the auditor's work and report must follow
  // the number of receipts, not the size of the numbers they claim.
  const c = await bootEnclave(ca, 0x33);
  const leap = 2 ** 40;
  const jws = [await c.receiptWithSeq(0), await c.receiptWithSeq(1), await c.receiptWithSeq(5), await c.receiptWithSeq(leap)];
  const { url } = await logOf([{ kind: 'att', enclave: c }, ...jws.map((j) => ({ kind: 'receipt' as const, jws: j }))]);
  const report = await audit(url);
  expect(report.ok).toBe(false);
  expect(report.failures).toEqual([
    { code: 'AUDIT_SEQUENCE_GAP', index: 3, message: `boot ${c.manifest.boot_id} has no logged receipt with seq 2 to 4 (3 receipts) (the log continues with seq 5 at entry 3)` },
    { code: 'AUDIT_SEQUENCE_GAP', index: 4, message: `boot ${c.manifest.boot_id} has no logged receipt with seq 6 to ${leap - 1} (${leap - 6} receipts) (the log continues with seq ${leap} at entry 4)` },
  ]);
  expect(report.images).toEqual([expect.objectContaining({ pcr0: c.pcr0, receipts: 4, gaps: [{ bootId: c.manifest.boot_id, missing: [[2, 4], [6, leap - 1]], count: 3 + leap - 6 }] })]);
});

test('an entry removed: a sequence gap names the next receipt, and a fork against the state', async () => {
  const removed = items.filter((_, i) => i !== 3); // a's receipt seq 2
  const { url } = await logOf(removed);
  const report = await audit(url);
  expect(report.ok).toBe(false);
  expect(report.failures).toEqual([expect.objectContaining({ code: 'AUDIT_SEQUENCE_GAP', index: 3 })]);
  expect(report.images.find((i) => i.pcr0 === a.pcr0)!.gaps).toEqual([{ bootId: a.manifest.boot_id, missing: [[2, 2]], count: 1 }]);

  const original = await logOf(items.slice(0, 5));
  const seen = await audit(original.url);
  expect(seen.ok).toBe(true);
  const forked = await audit(url, { state: seen.state! });
  expect(forked.failures[0]!.code).toBe('LOG_INCONSISTENT');
});

test('a forked checkpoint (same size, different root) is rejected', async () => {
  const one = await logOf(items.slice(0, 4));
  const two = await logOf([items[0]!, items[1]!, items[3]!, items[2]!]);
  const seen = await audit(one.url);
  const report = await audit(two.url, { state: seen.state! });
  expect(report.ok).toBe(false);
  expect(report.failures[0]!.code).toBe('LOG_INCONSISTENT');
  expect(report.failures[0]!.message).toMatch(/not consistent/);
});

test('a receipt whose enclave attestation is not logged (AUDIT_ATTESTATION_MISSING)', async () => {
  const { url } = await logOf(items.filter((it) => !(it.kind === 'att' && it.enclave === b)));
  const report = await audit(url);
  expect(report.ok).toBe(false);
  expect(report.failures.map((f) => [f.index, f.code])).toEqual([
    [6, 'AUDIT_ATTESTATION_MISSING'],
    [7, 'AUDIT_ATTESTATION_MISSING'],
    [8, 'AUDIT_ATTESTATION_MISSING'],
  ]);
  expect(report.failures[0]!.message).toMatch(/^receipt at entry 6 names boot attestation [0-9a-f]{16}… which is not logged before it$/);
});

test('a checkpoint signed by another key, a tampered checkpoint, and a wrong pinned key are rejected', async () => {
  const { url } = await logOf(items.slice(0, 2));
  const other = await generateNoteKey('test.teegate/log');
  const wrongKey = await audit(url, { verifierKey: other.verifierKey });
  expect(wrongKey.failures[0]!.code).toBe('LOG_SIGNATURE_INVALID');

  const tamper: FetchLike = async (u) => {
    const res = await fetch(u);
    if (!u.endsWith('/checkpoint')) return res;
    const text = (await res.text()).replace(/\n2\n/, '\n3\n');
    const body = new TextEncoder().encode(text);
    return { ok: true, status: 200, arrayBuffer: async () => body.buffer as ArrayBuffer };
  };
  const tampered = await audit(url, {}, tamper);
  expect(tampered.failures[0]!.code).toBe('LOG_SIGNATURE_INVALID');

  const seen = await audit(url);
  await expect(audit(url, { state: seen.state!, verifierKey: other.verifierKey })).rejects.toMatchObject({ code: 'AUDIT_STATE_INVALID' });
});

test('a receipt with a broken signature is named (RECEIPT_SIGNATURE_INVALID); a log server that is down is AUDIT_FETCH_FAILED', async () => {
  const jws = (items[1] as { jws: string }).jws;
  const sig = fromBase64(jws.split('.')[2]!.replace(/-/g, '+').replace(/_/g, '/'));
  sig[5] = sig[5]! ^ 1;
  const bad = `${jws.split('.').slice(0, 2).join('.')}.${toBase64(sig).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
  const { url } = await logOf([items[0]!, { kind: 'receipt', jws: bad }]);
  const report = await audit(url);
  expect(report.failures).toEqual([expect.objectContaining({ index: 1, code: 'RECEIPT_SIGNATURE_INVALID' })]);
  await expect(audit('http://127.0.0.1:9')).rejects.toMatchObject({ code: 'AUDIT_FETCH_FAILED' });
});

test('a state whose size, root or note was edited is AUDIT_STATE_INVALID, not a fork of the log', async () => {
  const { url } = await logOf(items);
  const seen = await audit(url);
  const good = seen.state!;
  expect((await audit(url, { state: good })).ok).toBe(true);
  const otherRoot = toBase64(createHash('sha256').update('x').digest());
  const edits: AuditState[] = [
    { ...good, checkpoint: { ...good.checkpoint, rootHash: otherRoot } },
    { ...good, checkpoint: { ...good.checkpoint, size: good.checkpoint.size - 1 } },
    { ...good, checkpoint: { ...good.checkpoint, note: good.checkpoint.note.replace(/\n\n/, '\nextra\n\n') } },
    { ...good, origin: 'other.teegate/log' },
  ];
  for (const state of edits) {
    await expect(audit(url, { state })).rejects.toMatchObject({ code: 'AUDIT_STATE_INVALID' });
  }
});

test('audit state files are checked strictly', () => {
  expect(() => parseAuditState('{')).toThrow(expect.objectContaining({ code: 'AUDIT_STATE_INVALID' }));
  expect(() => parseAuditState(JSON.stringify({ version: 1, origin: 'o', verifierKey: 'k', checkpoint: { size: 1, rootHash: 'AA==', note: '' } }))).toThrow(
    expect.objectContaining({ code: 'AUDIT_STATE_INVALID' }),
  );
  expect(() => parseAuditState(JSON.stringify({ version: 2 }))).toThrow(expect.objectContaining({ code: 'AUDIT_STATE_INVALID' }));
});

describe('rejection paths of the auditor', () => {
  const b64url = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url');

  test('a receipt entry that is not a compact JWS with a JSON payload, or names no att, is RECEIPT_INVALID at its index', async () => {
    const [header, , signature] = (await a.receipt()).split('.') as [string, string, string];
    const att = createHash('sha384').update(a.document).digest('hex');
    // The payload in the standard base64 alphabet (with '/' and '='): base64url (RFC 7515) has neither.
    const standard = Buffer.from(`{"att":"${att}","x":"???"}`).toString('base64');
    expect(standard).toMatch(/[+/=]/);
    const { url } = await logOf([
      { kind: 'att', enclave: a },
      { kind: 'receipt', jws: 'not-a-jws' },
      { kind: 'receipt', jws: `${header}.${standard}.${signature}` },
      { kind: 'receipt', jws: `${header}.${b64url({ iss: a.manifest.boot_id, seq: 0 })}.${signature}` },
    ]);
    const report = await audit(url);
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      { index: 1, code: 'RECEIPT_INVALID', message: 'entry 1: receipt is not a compact JWS with a JSON payload' },
      { index: 2, code: 'RECEIPT_INVALID', message: 'entry 2: receipt is not a compact JWS with a JSON payload' },
      { index: 3, code: 'RECEIPT_INVALID', message: 'entry 3: receipt has no att claim' },
    ]);
  });

  test('collecting stops at maxFailures', async () => {
    const { url } = await logOf([{ kind: 'receipt', jws: 'x' }, { kind: 'receipt', jws: 'y' }, { kind: 'receipt', jws: 'z' }]);
    const all = await audit(url);
    expect(all.failures.map((f) => f.index)).toEqual([0, 1, 2]);
    const report = await audit(url, { maxFailures: 2 });
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      expect.objectContaining({ index: 0, code: 'RECEIPT_INVALID' }),
      expect.objectContaining({ index: 1, code: 'RECEIPT_INVALID' }),
    ]);
    expect(report.state).toBeUndefined();
  });

  test('a given log key that is not a verifier key is AUDIT_STATE_INVALID', async () => {
    const { url } = await logOf(items.slice(0, 1));
    const { verifierKey } = await generateNoteKey('test.teegate/log');
    for (const bad of ['not a key', verifierKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'), verifierKey.slice(0, -4)]) {
      await expect(audit(url, { verifierKey: bad })).rejects.toMatchObject({ code: 'AUDIT_STATE_INVALID', message: expect.stringMatching(/^log key: /) });
    }
  });

  test('a state for another origin that the same key signed is LOG_INCONSISTENT, not a pass', async () => {
    const { url } = await logOf(items.slice(0, 2));
    const seen = (await audit(url)).state!;
    const signer = await parseSignerKey(signerKey);
    const { size, rootHash } = seen.checkpoint;
    const note = await signCheckpoint({ origin: 'other.teegate/log', size, rootHash: fromBase64(rootHash), extensions: [] }, [signer]);
    const state: AuditState = { ...seen, origin: 'other.teegate/log', checkpoint: { size, rootHash, note } };
    const report = await audit(url, { state });
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      { code: 'LOG_INCONSISTENT', message: `checkpoint of size ${size} is not consistent with the last one seen (size ${size}): the state is for log other.teegate/log, this is test.teegate/log` },
    ]);
    expect(report.state).toBeUndefined();
  });

  test('tiles rewritten below the size seen are a fork from the last checkpoint seen (LOG_INCONSISTENT), besides the root mismatch', async () => {
    const { url } = await logOf(items);
    const seen = (await audit(url)).state!;
    const report = await audit(url, { state: seen }, entryTwoForged());
    expect(report.ok).toBe(false);
    expect(report.failures).toContainEqual({ code: 'LOG_INCONSISTENT', message: `the replayed tree at size ${items.length} does not have the root of the last checkpoint seen` });
    expect(report.failures).toContainEqual(expect.objectContaining({ code: 'AUDIT_ENTRY_MISMATCH', message: `the log's tiles do not lead to the root of checkpoint ${items.length}: entries were rewritten or removed` }));
  });
});
