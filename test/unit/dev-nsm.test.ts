/**
 * DevNsm: the simulated NSM, reached through the same CBOR protocol as the real one. Documents are
 * checked with the project's verifier against the dev root; PCR arithmetic is checked against
 * node:crypto's SHA-384, independently of the code under test.
 */
import { errorCodeOfAsync as codeOf } from '../support/error-code';
import { createHash } from 'node:crypto';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { DEV_NSM_LAUNCH_LOCKED_PCRS, DEV_NSM_RANDOM_BYTES, DevNsm } from '../../enclave/nsm/dev-nsm';
import type { Nsm } from '../../enclave/nsm/nsm';
import { decodeNsmResponse, encodeNsmRequest } from '../../enclave/nsm/nsm-protocol';

const sha384 = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(createHash('sha384').update(Buffer.concat(parts)).digest());
const filled = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);


let ca: DevCa;
const launch = new Map<number, Uint8Array>([
  [0, sha384(filled(1, 0))],
  [1, sha384(filled(1, 1))],
  [2, sha384(filled(1, 2))],
  [8, sha384(filled(1, 8))],
]);

beforeAll(async () => {
  ca = await createDevCa();
});

async function devNsm(): Promise<DevNsm> {
  return DevNsm.create({ ca, pcrs: launch });
}

describe('DevNsm attestation', () => {
  it('produces a document the verifier accepts under the dev root, carrying nonce, public_key and user_data', async () => {
    const nsm: Nsm = await devNsm();
    expect(nsm.kind).toBe('dev');
    const nonce = filled(32, 0xa1);
    const publicKey = new Uint8Array(createHash('sha256').update('spki').digest()); // any bytes up to 1024
    const userData = filled(32, 0xb2);
    const document = await nsm.attest({ nonce, publicKey, userData });
    const verified = await verifyAttestation(document, { rootCertificates: [ca.rootPem], nonce, publicKey, userData });
    expect(verified.nonce).toEqual(nonce);
    expect(verified.publicKey).toEqual(publicKey);
    expect(verified.userData).toEqual(userData);
    expect(verified.rootFingerprint).toBe(ca.rootFingerprint);
    expect(verified.pcrs.get(0)).toEqual(launch.get(0));
    expect(verified.pcrs.get(8)).toEqual(launch.get(8));
    expect(verified.pcrs.get(5)).toEqual(new Uint8Array(48));
    await nsm.close();
  });

  it('leaves absent fields absent, and keeps one module id', async () => {
    const nsm = await devNsm();
    const a = await verifyAttestation(await nsm.attest({}), { rootCertificates: [ca.rootPem] });
    const b = await verifyAttestation(await nsm.attest({ nonce: filled(1, 1) }), { rootCertificates: [ca.rootPem] });
    expect([a.nonce, a.publicKey, a.userData]).toEqual([undefined, undefined, undefined]);
    expect(b.moduleId).toBe(a.moduleId);
  });

  it('is not trusted under the AWS root', async () => {
    const nsm = await devNsm();
    expect(await codeOf(verifyAttestation(await nsm.attest({})))).toBe('CHAIN_UNTRUSTED_ROOT');
  });

  it('refuses oversized fields before they reach the device', async () => {
    const nsm = await devNsm();
    expect(await codeOf(nsm.attest({ userData: filled(1025, 0) }))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(nsm.attest({ nonce: filled(1025, 0) }))).toBe('NSM_REQUEST_INVALID');
  });
});

describe('DevNsm PCRs', () => {
  it('extendPcr computes SHA-384(old || data), as the NSM does', async () => {
    const nsm = await devNsm();
    const d1 = new TextEncoder().encode('first');
    const d2 = filled(100, 7);
    const v1 = await nsm.extendPcr(16, d1);
    expect(v1).toEqual(sha384(new Uint8Array(48), d1));
    const v2 = await nsm.extendPcr(16, d2);
    expect(v2).toEqual(sha384(v1, d2));
    expect(await nsm.describePcr(16)).toEqual({ lock: false, data: v2 });
    // Other PCRs are untouched.
    expect(await nsm.describePcr(17)).toEqual({ lock: false, data: new Uint8Array(48) });
  });

  it('extends with empty data too', async () => {
    const nsm = await devNsm();
    expect(await nsm.extendPcr(20, new Uint8Array(0))).toEqual(sha384(new Uint8Array(48)));
  });

  it('documents report the current value of an extended PCR below 16', async () => {
    const nsm = await devNsm();
    const before = await verifyAttestation(await nsm.attest({}), { rootCertificates: [ca.rootPem] });
    expect(before.pcrs.get(7)).toEqual(new Uint8Array(48));
    const v = await nsm.extendPcr(7, filled(48, 3));
    const after = await verifyAttestation(await nsm.attest({}), { rootCertificates: [ca.rootPem] });
    expect(after.pcrs.get(7)).toEqual(v);
    expect(after.pcrs.get(0)).toEqual(launch.get(0));
  });

  it('serialises concurrent extends of one PCR in the order issued', async () => {
    const nsm = await devNsm();
    const data = Array.from({ length: 10 }, (_, i) => filled(4, i));
    const results = await Promise.all(data.map((d) => nsm.extendPcr(16, d)));
    const expected = data.reduce<Uint8Array[]>((acc, d) => [...acc, sha384(acc.at(-1) ?? new Uint8Array(48), d)], []);
    expect(results).toEqual(expected);
  });

  it('launch PCRs (0-4, 8) are locked: describe says so and extend is NSM_PCR_LOCKED', async () => {
    const nsm = await devNsm();
    expect(DEV_NSM_LAUNCH_LOCKED_PCRS).toEqual([0, 1, 2, 3, 4, 8]);
    for (const i of DEV_NSM_LAUNCH_LOCKED_PCRS) {
      expect(await nsm.describePcr(i)).toEqual({ lock: true, data: launch.get(i) ?? new Uint8Array(48) });
      expect(await codeOf(nsm.extendPcr(i, filled(1, 1)))).toBe('NSM_PCR_LOCKED');
      expect((await nsm.describePcr(i)).data).toEqual(launch.get(i) ?? new Uint8Array(48));
    }
  });

  it('LockPCR and LockPCRs make PCRs read-only; DescribeNSM lists them', async () => {
    const nsm = await devNsm();
    await nsm.extendPcr(16, filled(1, 1));
    await nsm.request({ type: 'LockPCR', index: 16 });
    expect((await nsm.describePcr(16)).lock).toBe(true);
    expect(await codeOf(nsm.extendPcr(16, filled(1, 1)))).toBe('NSM_PCR_LOCKED');
    await nsm.request({ type: 'LockPCRs', range: 10 });
    expect(await codeOf(nsm.extendPcr(9, filled(1, 1)))).toBe('NSM_PCR_LOCKED');
    expect(await codeOf(nsm.extendPcr(10, filled(1, 1)))).toBe('no error');
    const d = await nsm.request({ type: 'DescribeNSM' });
    expect(d).toMatchObject({ maxPcrs: 32, digest: 'SHA384', lockedPcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16] });
    expect(await codeOf(nsm.request({ type: 'LockPCRs', range: 33 }))).toBe('NSM_REQUEST_INVALID');
  });

  it('an index the NSM does not have is NSM_REQUEST_INVALID (InvalidIndex)', async () => {
    const nsm = await devNsm();
    expect(await codeOf(nsm.describePcr(32))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(nsm.extendPcr(32, filled(1, 1)))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(nsm.describePcr(65536))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(nsm.request({ type: 'LockPCR', index: 32 }))).toBe('NSM_REQUEST_INVALID');
    expect((await nsm.request({ type: 'DescribeNSM' })).lockedPcrs).toEqual([0, 1, 2, 3, 4, 8]);
    const raw = await nsm.exchange(encodeNsmRequest({ type: 'DescribePCR', index: 40 }));
    expect(decodeNsmResponse(raw)).toEqual({ type: 'Error', error: 'InvalidIndex' });
  });
});

describe('DevNsm device side', () => {
  it('answers bytes it cannot parse with Error(InvalidArgument), as the NSM does', async () => {
    const nsm = await devNsm();
    for (const bad of [new Uint8Array([0xff]), new Uint8Array(0), new TextEncoder().encode('hello')]) {
      expect(decodeNsmResponse(await nsm.exchange(bad))).toEqual({ type: 'Error', error: 'InvalidArgument' });
    }
  });

  it('getRandom returns fresh entropy', async () => {
    const nsm = await devNsm();
    const [a, b] = [await nsm.getRandom(), await nsm.getRandom()];
    expect(a.length).toBe(DEV_NSM_RANDOM_BYTES);
    expect(a).not.toEqual(b);
  });

  it('close() refuses later calls with NSM_UNAVAILABLE', async () => {
    const nsm = await devNsm();
    const pending = nsm.extendPcr(16, filled(1, 1));
    await nsm.close();
    await expect(pending).resolves.toHaveLength(48);
    expect(await codeOf(nsm.getRandom())).toBe('NSM_UNAVAILABLE');
    expect(await codeOf(nsm.attest({}))).toBe('NSM_UNAVAILABLE');
  });

  it('checks its options', async () => {
    expect(await codeOf(DevNsm.create({ ca, lockedPcrs: [32] }))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(DevNsm.create({ ca, lockedPcrs: [-1] }))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(DevNsm.create({ ca, lockedPcrs: [31] }))).toBe('no error');
    expect(await codeOf(DevNsm.create({ ca, pcrs: new Map([[16, filled(48, 0)]]) }))).toBe('NSM_REQUEST_INVALID');
    expect(await codeOf(DevNsm.create({ ca, pcrs: new Map([[3, filled(32, 0)]]) }))).toBe('NSM_REQUEST_INVALID');
  });
});
