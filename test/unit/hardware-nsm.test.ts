/**
 * HardwareNsm's side of the helper contract, with scripted stand-ins for nsm-ioctl (small Node
 * programs) that record what they were sent and answer with given bytes, exit codes, signals,
 * floods or silence. The real helper is exercised in nsm-native.test.ts; the real device only
 * exists inside a Nitro enclave.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TeegateError, type ErrorCode } from '../../attestation/errors';
import { HardwareNsm, unframeNsmResponse } from '../../enclave/nsm/hardware-nsm';
import { encodeNsmRequest, encodeNsmResponse, type NsmResponse } from '../../enclave/nsm/nsm-protocol';

let dir: string;
let counter = 0;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hardware-nsm-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface FakeBehaviour {
  /** Bytes written to stdout (hex). */
  readonly stdoutHex?: string;
  readonly exit?: number;
  readonly stderr?: string;
  readonly mode?: 'answer' | 'hang' | 'signal' | 'flood';
}

/** Writes a fake helper; returns its path and where it records stdin and NSM_DEVICE. */
function fakeHelper(b: FakeBehaviour): { helperPath: string; captured: () => { stdin: Buffer; device: string | null } } {
  const id = ++counter;
  const helperPath = path.join(dir, `fake-${id}`);
  const capture = path.join(dir, `capture-${id}`);
  const script = `#!${process.execPath}
const fs = require('fs');
const b = ${JSON.stringify(b)};
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  fs.writeFileSync(${JSON.stringify(capture)}, JSON.stringify({ stdin: Buffer.concat(chunks).toString('hex'), device: process.env.NSM_DEVICE ?? null }));
  if (b.mode === 'hang') return setInterval(() => {}, 1000);
  if (b.mode === 'signal') return process.kill(process.pid, 'SIGTERM');
  if (b.stderr) process.stderr.write(b.stderr);
  const out = b.mode === 'flood' ? Buffer.alloc(1 << 16, 1) : Buffer.from(b.stdoutHex ?? '', 'hex');
  process.stdout.write(out, () => process.exit(b.exit ?? 0));
});
`;
  writeFileSync(helperPath, script);
  chmodSync(helperPath, 0o755);
  return {
    helperPath,
    captured: () => {
      const j = JSON.parse(readFileSync(capture, 'utf8')) as { stdin: string; device: string | null };
      return { stdin: Buffer.from(j.stdin, 'hex'), device: j.device };
    },
  };
}

function framed(bytes: Uint8Array): string {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length);
  return Buffer.concat([head, Buffer.from(bytes)]).toString('hex');
}
const answer = (res: NsmResponse): string => framed(encodeNsmResponse(res));

async function failure(p: Promise<unknown>): Promise<{ code: ErrorCode; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TeegateError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a TeegateError');
}

const pcr = new Uint8Array(48).fill(0x5a);

describe('HardwareNsm request/response over the helper', () => {
  it('sends the framed CBOR request and returns the decoded GetRandom bytes', async () => {
    const random = new Uint8Array(256).map((_, i) => i);
    const fake = fakeHelper({ stdoutHex: answer({ type: 'GetRandom', random }) });
    const nsm = new HardwareNsm({ helperPath: fake.helperPath, devicePath: '/dev/nsm-test' });
    expect(await nsm.getRandom()).toEqual(random);
    const seen = fake.captured();
    expect(seen.stdin.toString('hex')).toBe(framed(encodeNsmRequest({ type: 'GetRandom' })));
    expect(seen.device).toBe('/dev/nsm-test');
  });

  it('passes no NSM_DEVICE unless asked (the helper then opens /dev/nsm)', async () => {
    const fake = fakeHelper({ stdoutHex: answer({ type: 'GetRandom', random: new Uint8Array([1]) }) });
    await new HardwareNsm({ helperPath: fake.helperPath }).getRandom();
    expect(fake.captured().device).toBeNull();
  });

  it('attest sends user_data, nonce and public_key and returns the document', async () => {
    const document = new Uint8Array(4000).fill(0x84);
    const fake = fakeHelper({ stdoutHex: answer({ type: 'Attestation', document }) });
    const req = { publicKey: new Uint8Array(91).fill(1), userData: new Uint8Array(32).fill(2), nonce: new Uint8Array(32).fill(3) };
    expect(await new HardwareNsm({ helperPath: fake.helperPath }).attest(req)).toEqual(document);
    expect(fake.captured().stdin.toString('hex')).toBe(framed(encodeNsmRequest({ type: 'Attestation', ...req })));
  });

  it('describePcr and extendPcr return the NSM values', async () => {
    const d = fakeHelper({ stdoutHex: answer({ type: 'DescribePCR', lock: true, data: pcr }) });
    expect(await new HardwareNsm({ helperPath: d.helperPath }).describePcr(4)).toEqual({ lock: true, data: pcr });
    expect(d.captured().stdin.toString('hex')).toBe(framed(encodeNsmRequest({ type: 'DescribePCR', index: 4 })));
    const e = fakeHelper({ stdoutHex: answer({ type: 'ExtendPCR', data: pcr }) });
    expect(await new HardwareNsm({ helperPath: e.helperPath }).extendPcr(16, new Uint8Array([9]))).toEqual(pcr);
    expect(e.captured().stdin.toString('hex')).toBe(framed(encodeNsmRequest({ type: 'ExtendPCR', index: 16, data: new Uint8Array([9]) })));
  });

  it('turns an NSM error answer into its typed error', async () => {
    const fake = fakeHelper({ stdoutHex: answer({ type: 'Error', error: 'ReadOnlyIndex' }) });
    expect(await failure(new HardwareNsm({ helperPath: fake.helperPath }).extendPcr(0, new Uint8Array(1)))).toEqual({
      code: 'NSM_PCR_LOCKED',
      message: 'the NSM answered ExtendPCR with Error(ReadOnlyIndex)',
    });
  });

  it('rejects an answer to another request', async () => {
    const fake = fakeHelper({ stdoutHex: answer({ type: 'GetRandom', random: new Uint8Array([1]) }) });
    expect((await failure(new HardwareNsm({ helperPath: fake.helperPath }).attest({}))).code).toBe('NSM_RESPONSE_MALFORMED');
  });
});

describe('HardwareNsm failures', () => {
  it.each<[string, ErrorCode, FakeBehaviour, string]>([
    ['exit 2 (framing refused)', 'INTERNAL', { exit: 2, stderr: 'nsm-ioctl: request length is 0\n' }, 'nsm-ioctl rejected the framing of the request: nsm-ioctl: request length is 0'],
    ['exit 3 (too large)', 'NSM_REQUEST_INVALID', { exit: 3, stderr: 'nsm-ioctl: too big\n' }, 'nsm-ioctl reported the request too large: nsm-ioctl: too big'],
    ['exit 4 (no device)', 'NSM_UNAVAILABLE', { exit: 4, stderr: 'nsm-ioctl: cannot open /dev/nsm: No such file or directory\n' }, 'nsm-ioctl cannot open the NSM device: nsm-ioctl: cannot open /dev/nsm: No such file or directory'],
    ['exit 5 (ioctl failed)', 'NSM_FAILED', { exit: 5, stderr: 'nsm-ioctl: ioctl on /dev/nsm failed: Timer expired\n' }, 'nsm-ioctl reported the ioctl failed: nsm-ioctl: ioctl on /dev/nsm failed: Timer expired'],
    ['exit 7 (ioctl refused)', 'NSM_UNAVAILABLE', { exit: 7, stderr: 'nsm-ioctl: ioctl on /dev/nsm not permitted (the NSM ioctl needs CAP_SYS_ADMIN): Operation not permitted\n' }, 'nsm-ioctl was refused the NSM ioctl: nsm-ioctl: ioctl on /dev/nsm not permitted (the NSM ioctl needs CAP_SYS_ADMIN): Operation not permitted'],
    ['exit 6 (stdout failed)', 'NSM_FAILED', { exit: 6 }, 'nsm-ioctl could not write the response: (no message)'],
    ['an unknown exit status', 'NSM_FAILED', { exit: 9 }, 'nsm-ioctl exited with status 9: (no message)'],
    ['a signal', 'NSM_FAILED', { mode: 'signal' }, 'nsm-ioctl was killed by SIGTERM: (no message)'],
    ['no output on exit 0', 'NSM_RESPONSE_MALFORMED', { stdoutHex: '' }, 'nsm-ioctl wrote 0 bytes, less than a length prefix'],
    ['a short frame', 'NSM_RESPONSE_MALFORMED', { stdoutHex: '0000000a0102' }, 'nsm-ioctl framed 10 response bytes but wrote 2'],
    ['a flood of output', 'NSM_RESPONSE_MALFORMED', { mode: 'flood' }, 'nsm-ioctl wrote more than 12292 bytes'],
    ['CBOR that is not a response', 'NSM_RESPONSE_MALFORMED', { stdoutHex: '0000000100' }, 'NSM response must be a text string or a one-entry map (a serde enum)'],
  ])('%s → %s', async (_name, code, behaviour, message) => {
    const fake = fakeHelper(behaviour);
    expect(await failure(new HardwareNsm({ helperPath: fake.helperPath }).getRandom())).toEqual({ code, message });
  });

  it('kills a helper that does not answer within the timeout', async () => {
    const fake = fakeHelper({ mode: 'hang' });
    const started = Date.now();
    expect(await failure(new HardwareNsm({ helperPath: fake.helperPath, timeoutMs: 400 }).getRandom())).toEqual({
      code: 'NSM_FAILED',
      message: 'nsm-ioctl did not answer within 400 ms',
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a helper that is not executable is NSM_UNAVAILABLE', async () => {
    const file = path.join(dir, 'not-executable');
    writeFileSync(file, 'x');
    chmodSync(file, 0o644);
    // root may execute a file without x bits only if some x bit is set: none is here.
    expect((await failure(new HardwareNsm({ helperPath: file }).getRandom())).code).toBe('NSM_UNAVAILABLE');
  });

  it('rejects a non-positive timeout', () => {
    expect(() => new HardwareNsm({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'NSM_REQUEST_INVALID' }));
  });

  it('close() waits for calls in flight, then refuses new ones', async () => {
    const fake = fakeHelper({ stdoutHex: answer({ type: 'ExtendPCR', data: pcr }) });
    const nsm = new HardwareNsm({ helperPath: fake.helperPath });
    const inFlight = nsm.extendPcr(16, new Uint8Array([1]));
    await nsm.close();
    // The extend was not cut short: it completed before close() resolved.
    await expect(Promise.race([inFlight, Promise.resolve('pending')])).resolves.toEqual(pcr);
    expect(await failure(nsm.getRandom())).toEqual({ code: 'NSM_UNAVAILABLE', message: 'the hardware NSM is closed' });
  });
});

describe('unframeNsmResponse', () => {
  it('returns the framed bytes', () => {
    expect(unframeNsmResponse(new Uint8Array([0, 0, 0, 2, 7, 8]))).toEqual(new Uint8Array([7, 8]));
  });
  it.each([
    ['a zero length', [0, 0, 0, 0]],
    ['extra bytes', [0, 0, 0, 1, 7, 8]],
    ['a length over NSM_RESPONSE_MAX_SIZE', [0, 0, 0x30, 0x01]],
    ['three bytes', [0, 0, 1]],
  ])('rejects %s', (_name, bytes) => {
    expect(() => unframeNsmResponse(new Uint8Array(bytes))).toThrow(expect.objectContaining({ code: 'NSM_RESPONSE_MALFORMED' }));
  });
});
