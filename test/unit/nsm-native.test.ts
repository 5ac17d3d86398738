/**
 * The native /dev/nsm helper (enclave/nsm/native/nsm_ioctl.c): compiled here with the machine's C
 * compiler exactly as its Makefile and the issue ask (cc -O2 -Wall -Wextra -Werror), then run.
 * There is no Nitro hardware on this machine, so the ioctl itself cannot succeed: these tests pin
 * the helper's contract (framing, exit codes, messages), the ioctl number and layout it sends
 * (through strace where strace exists), and HardwareNsm's mapping of its failures to typed errors.
 */
import { errorCodeOfAsync as codeOf } from '../support/error-code';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HardwareNsm } from '../../enclave/nsm/hardware-nsm';
import { encodeNsmRequest } from '../../enclave/nsm/nsm-protocol';

const SOURCE_DIR = path.join(__dirname, '../../enclave/nsm/native');
const hasCc = spawnSync('cc', ['--version']).status === 0;
const hasMake = spawnSync('make', ['--version']).status === 0;
const hasStrace = spawnSync('strace', ['-V']).status === 0;
if (!hasCc) {
  // eslint-disable-next-line no-console
  console.warn('nsm-native tests SKIPPED: no C compiler (`cc`) on this machine, the helper cannot be built');
}
const describeWithCc = hasCc ? describe : describe.skip;

function frame(body: Uint8Array, declared = body.length): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(declared);
  return Buffer.concat([head, Buffer.from(body)]);
}


describeWithCc('nsm-ioctl native helper', () => {
  let dir: string;
  let helper: string;
  const request = encodeNsmRequest({ type: 'GetRandom' });

  function run(input: Buffer, env: Record<string, string> = {}, args: string[] = []) {
    const r = spawnSync(helper, args, { input, env });
    return { status: r.status, stderr: r.stderr.toString('utf8'), stdout: r.stdout };
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'nsm-native-'));
    helper = path.join(dir, 'nsm-ioctl');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', helper, path.join(SOURCE_DIR, 'nsm_ioctl.c')]);
    if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr.toString()}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  (hasMake ? it : it.skip)('builds warning-free with the Makefile (its stricter flags, and static)', () => {
    const out = path.join(dir, 'make');
    for (const extra of [[], ['STATIC=1']]) {
      rmSync(out, { recursive: true, force: true });
      spawnSync('mkdir', ['-p', out]);
      const r = spawnSync('make', ['-s', '-C', SOURCE_DIR, `OUT=${out}`, ...extra]);
      expect({ status: r.status, stderr: r.stderr.toString() }).toEqual({ status: 0, stderr: '' });
      expect(existsSync(path.join(out, 'nsm-ioctl'))).toBe(true);
    }
  });

  it('exits 4 with a clear message when the NSM device does not exist', () => {
    const r = run(frame(request), { NSM_DEVICE: path.join(dir, 'no-such-nsm') });
    expect(r.status).toBe(4);
    expect(r.stderr).toBe(`nsm-ioctl: cannot open ${path.join(dir, 'no-such-nsm')}: No such file or directory\n`);
    expect(r.stdout.length).toBe(0);
  });

  (existsSync('/dev/nsm') ? it.skip : it)('defaults to /dev/nsm (absent on this machine: exit 4)', () => {
    const r = run(frame(request));
    expect(r.status).toBe(4);
    expect(r.stderr).toBe('nsm-ioctl: cannot open /dev/nsm: No such file or directory\n');
  });

  it('exits 7 when the ioctl is refused by a device that is not the NSM (/dev/null)', () => {
    const r = run(frame(request), { NSM_DEVICE: '/dev/null' });
    expect(r.status).toBe(7);
    expect(r.stderr).toBe('nsm-ioctl: /dev/null is not an NSM device: Inappropriate ioctl for device\n');
    expect(r.stdout.length).toBe(0);
  });

  it('exits 7 when the ioctl is refused on a regular file', () => {
    const file = path.join(dir, 'regular');
    writeFileSync(file, 'not a device');
    const r = run(frame(request), { NSM_DEVICE: file });
    expect(r.status).toBe(7);
    expect(r.stderr).toBe(`nsm-ioctl: ${file} is not an NSM device: Inappropriate ioctl for device\n`);
  });

  it('exits 5 when the ioctl fails otherwise (/dev/urandom answers an unknown ioctl with EINVAL)', () => {
    const r = run(frame(request), { NSM_DEVICE: '/dev/urandom' });
    expect(r.status).toBe(5);
    expect(r.stderr).toBe('nsm-ioctl: ioctl on /dev/urandom failed: Invalid argument\n');
    expect(r.stdout.length).toBe(0);
  });

  it('exits 3 for a request over NSM_REQUEST_MAX_SIZE (4096), before touching the device', () => {
    const r = run(frame(new Uint8Array(4097)), { NSM_DEVICE: '/dev/null' });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe('nsm-ioctl: request is larger than NSM_REQUEST_MAX_SIZE (4096 bytes)\n');
    // 4096 itself is accepted and reaches the ioctl.
    expect(run(frame(new Uint8Array(4096)), { NSM_DEVICE: '/dev/null' }).status).toBe(7);
  });

  it.each([
    ['empty stdin', Buffer.alloc(0), 'stdin ended before the 4-byte request length'],
    ['a short length prefix', Buffer.from([0, 0, 1]), 'stdin ended before the 4-byte request length'],
    ['a zero length', frame(new Uint8Array(0)), 'request length is 0'],
    ['a truncated request', frame(request, request.length + 5), 'stdin ended before the whole request'],
    ['bytes after the request', Buffer.concat([frame(request), Buffer.from([0])]), 'bytes after the request on stdin'],
  ])('exits 2 for %s', (_name, input, message) => {
    const r = run(input, { NSM_DEVICE: '/dev/null' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`nsm-ioctl: ${message}\n`);
  });

  it('exits 2 when given arguments', () => {
    const r = run(frame(request), {}, ['--device', '/dev/nsm']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('nsm-ioctl: takes no arguments; the request comes on stdin\n');
  });

  (hasStrace ? it : it.skip)('issues exactly one ioctl, numbered _IOWR(0x0A, 0, struct nsm_message) = 0xc0200a00', () => {
    const log = path.join(dir, 'strace.log');
    const r = spawnSync('strace', ['-e', 'trace=ioctl', '-e', 'raw=ioctl', '-X', 'raw', '-o', log, helper], {
      input: frame(request),
      env: { NSM_DEVICE: '/dev/null' },
    });
    expect(r.status).toBe(7);
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('ioctl('));
    // dir 3 (read|write) << 30 | size 0x20 (two 16-byte iovecs) << 16 | magic 0x0A << 8 | nr 0
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^ioctl\((?:0x)?\d+, 0xc0200a00, 0x[0-9a-f]+\)\s+= -1 ENOTTY/);
  });

  describe('HardwareNsm over the real helper', () => {
    it('maps a missing device to NSM_UNAVAILABLE with the helper message', async () => {
      const nsm = new HardwareNsm({ helperPath: helper, devicePath: path.join(dir, 'absent') });
      expect(nsm.kind).toBe('hardware');
      await expect(nsm.getRandom()).rejects.toMatchObject({
        code: 'NSM_UNAVAILABLE',
        message: `nsm-ioctl cannot open the NSM device: nsm-ioctl: cannot open ${path.join(dir, 'absent')}: No such file or directory`,
      });
    });

    it('maps an ioctl the device refuses to NSM_UNAVAILABLE for every operation', async () => {
      const nsm = new HardwareNsm({ helperPath: helper, devicePath: '/dev/null' });
      await expect(nsm.getRandom()).rejects.toMatchObject({
        code: 'NSM_UNAVAILABLE',
        message: 'nsm-ioctl was refused the NSM ioctl: nsm-ioctl: /dev/null is not an NSM device: Inappropriate ioctl for device',
      });
      expect(await codeOf(nsm.attest({ nonce: new Uint8Array(32) }))).toBe('NSM_UNAVAILABLE');
      expect(await codeOf(nsm.describePcr(0))).toBe('NSM_UNAVAILABLE');
      expect(await codeOf(nsm.extendPcr(16, new Uint8Array(48)))).toBe('NSM_UNAVAILABLE');
    });

    it('maps a failed ioctl to NSM_FAILED (retry)', async () => {
      const nsm = new HardwareNsm({ helperPath: helper, devicePath: '/dev/urandom' });
      await expect(nsm.extendPcr(16, new Uint8Array(48))).rejects.toMatchObject({
        code: 'NSM_FAILED',
        message: 'nsm-ioctl reported the ioctl failed: nsm-ioctl: ioctl on /dev/urandom failed: Invalid argument',
      });
    });

    it('refuses an invalid request before running the helper', async () => {
      const nsm = new HardwareNsm({ helperPath: path.join(dir, 'never-run'), devicePath: '/dev/null' });
      expect(await codeOf(nsm.attest({ userData: new Uint8Array(1025) }))).toBe('NSM_REQUEST_INVALID');
      expect(await codeOf(nsm.describePcr(70000))).toBe('NSM_REQUEST_INVALID');
    });

    it('maps a missing helper to NSM_UNAVAILABLE', async () => {
      const nsm = new HardwareNsm({ helperPath: path.join(dir, 'missing-helper') });
      expect(await codeOf(nsm.getRandom())).toBe('NSM_UNAVAILABLE');
    });
  });
});
