/**
 * The dev attester (simulated NSM) and its dev CA: documents in the AWS Nitro wire format that the
 * project's verifier, openssl and an independent verifier (@0xsequence/tee-verifier) accept under the
 * dev root only. The real AWS document used for shape comparison is
 * shared/vectors/nitro/base_nitro-validator_2024-11-30.hex (from base/nitro-validator, see its README).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex, utf8 } from '../../attestation/bytes';
import { decodeCbor, type CborMap, type CborValue } from '../../attestation/cbor';
import { DevAttester } from '../../attestation/dev/dev-attester';
import { createDevCa, exportDevCa, importDevCa, type DevCa, type DevCaJson } from '../../attestation/dev/dev-ca';
import { ecdsaRawToDer } from '../../attestation/dev/certificate-builder';
import { extendPcr, measureImage } from '../../attestation/dev/measure';
import { isTeegateError, type ErrorCode } from '../../attestation/errors';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { ecdsaDerToRaw, parseCertificate } from '../../attestation/x509/certificate';
import { derInteger, derNamedBits, derOid, derTime } from '../../attestation/x509/der-writer';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const REAL_DOC = join(__dirname, '../../../shared/vectors/nitro/base_nitro-validator_2024-11-30.hex');

async function rejects(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    expect(err.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

function pcrMap(entries: [number, number][]): Map<number, Uint8Array> {
  return new Map(entries.map(([i, fill]) => [i, new Uint8Array(48).fill(fill)]));
}

/** [protected, unprotected, payload, signature] and the decoded payload map. */
function splitDocument(doc: Uint8Array): { sign1: CborValue[]; payload: Uint8Array; map: CborMap } {
  const sign1 = decodeCbor(doc) as CborValue[];
  const payload = sign1[2] as Uint8Array;
  return { sign1, payload, map: decodeCbor(payload) as CborMap };
}

let ca: DevCa;
beforeAll(async () => {
  ca = await createDevCa({ now: T0 });
});

describe('dev attester documents verify under the dev root', () => {
  it('verifies with nonce, user_data and public_key bound, and reports the dev chain', async () => {
    const pcrs = pcrMap([[0, 1], [1, 2], [2, 3], [4, 4]]);
    const attester = await DevAttester.create({ ca, pcrs, moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', now: () => T0 });
    const nonce = fromHex('aa'.repeat(32));
    const userData = utf8('manifest digest');
    const publicKey = fromHex('04' + '11'.repeat(64));
    const doc = await attester.attest({ nonce, userData, publicKey });
    const v = await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem], nonce, userData, publicKey });
    expect(v.moduleId).toBe('i-0123456789abcdef0-enc0123456789abcdef');
    expect(v.timestamp).toBe(T0);
    expect(v.digest).toBe('SHA384');
    expect(v.debug).toBe(false);
    expect(v.rootFingerprint).toBe(ca.rootFingerprint);
    expect(v.chain).toHaveLength(5);
    expect(v.pcrs.size).toBe(16);
    expect(toHex(v.pcrs.get(0)!)).toBe('01'.repeat(48));
    expect(toHex(v.pcrs.get(4)!)).toBe('04'.repeat(48));
    expect(toHex(v.pcrs.get(3)!)).toBe('00'.repeat(48));
    expect(toHex(v.nonce!)).toBe(toHex(nonce));
    expect(new Date(v.certificate.notAfter).getTime()).toBe(T0 + 3 * HOUR);
  });

  it('rejects a wrong nonce, user_data or public_key with the binding codes', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const doc = await attester.attest({ nonce: Uint8Array.of(1), userData: Uint8Array.of(2), publicKey: Uint8Array.of(3) });
    const base = { at: T0, rootCertificates: [ca.rootPem] };
    await rejects(verifyAttestation(doc, { ...base, nonce: Uint8Array.of(9) }), 'NONCE_MISMATCH');
    await rejects(verifyAttestation(doc, { ...base, userData: Uint8Array.of(9) }), 'USER_DATA_MISMATCH');
    await rejects(verifyAttestation(doc, { ...base, publicKey: Uint8Array.of(9) }), 'PUBLIC_KEY_MISMATCH');
  });

  it('is not trusted under the default (AWS) root', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    await rejects(verifyAttestation(await attester.attest({}), { at: T0 }), 'CHAIN_UNTRUSTED_ROOT');
  });

  it('fails with CERT_EXPIRED once the 3-hour leaf has expired', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 - 4 * HOUR });
    const doc = await attester.attest({});
    await rejects(verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem] }), 'CERT_EXPIRED');
    await verifyAttestation(doc, { at: T0 - 4 * HOUR + 60_000, rootCertificates: [ca.rootPem] });
  });

  it('debug mode zeroes PCR0-2: DEBUG_MODE unless allowDebug', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1], [1, 2], [2, 3], [3, 7]]), debug: true, now: () => T0 });
    const doc = await attester.attest({});
    await rejects(verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem] }), 'DEBUG_MODE');
    const v = await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem], policy: { allowDebug: true } });
    expect(v.debug).toBe(true);
    expect([0, 1, 2].map((i) => toHex(v.pcrs.get(i)!))).toEqual(['00'.repeat(48), '00'.repeat(48), '00'.repeat(48)]);
    expect(toHex(v.pcrs.get(3)!)).toBe('07'.repeat(48));
  });

  it('issues a fresh leaf per document by default, and reuses one within leafReuseMs', async () => {
    let now = T0;
    const fresh = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => now });
    const a = splitDocument(await fresh.attest({})).map.get('certificate') as Uint8Array;
    now += 1000;
    const b = splitDocument(await fresh.attest({})).map.get('certificate') as Uint8Array;
    expect(toHex(a)).not.toBe(toHex(b));
    const reuse = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => now, leafReuseMs: 5 * 60_000 });
    const c = splitDocument(await reuse.attest({})).map.get('certificate') as Uint8Array;
    now += 60_000;
    const d = splitDocument(await reuse.attest({})).map.get('certificate') as Uint8Array;
    expect(toHex(c)).toBe(toHex(d));
    now += 5 * 60_000;
    const e = await reuse.attest({});
    expect(toHex(splitDocument(e).map.get('certificate') as Uint8Array)).not.toBe(toHex(c));
    await verifyAttestation(e, { at: now, rootCertificates: [ca.rootPem] });
  });

  it('serves concurrent requests, each verifying', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const docs = await Promise.all(Array.from({ length: 12 }, (_, i) => attester.attest({ nonce: Uint8Array.of(i) })));
    await Promise.all(docs.map((d, i) => verifyAttestation(d, { at: T0, rootCertificates: [ca.rootPem], nonce: Uint8Array.of(i) })));
  });
});

describe('wire format', () => {
  it('matches a real AWS document: COSE layout, protected header, payload key order and field types', async () => {
    const real = splitDocument(fromHex(readFileSync(REAL_DOC, 'utf8').trim()));
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const doc = await attester.attest({ nonce: Uint8Array.of(1), userData: Uint8Array.of(2), publicKey: Uint8Array.of(3) });
    const dev = splitDocument(doc);
    expect(doc[0]).toBe(0x84); // untagged array of 4, as the NSM sends it
    expect(toHex(dev.sign1[0] as Uint8Array)).toBe('a1013822');
    expect(toHex(dev.sign1[0] as Uint8Array)).toBe(toHex(real.sign1[0] as Uint8Array));
    expect((dev.sign1[1] as CborMap).size).toBe(0);
    expect((dev.sign1[3] as Uint8Array).length).toBe(96);
    expect([...dev.map.keys()]).toEqual([...real.map.keys()]);
    const shape = (v: CborValue) => (v instanceof Uint8Array ? 'bytes' : v instanceof Map ? `map${v.size}` : Array.isArray(v) ? `array${v.length}` : typeof v);
    for (const key of ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key']) {
      expect([key, shape(dev.map.get(key)!)]).toEqual([key, shape(real.map.get(key)!)]);
    }
    const pcrs = dev.map.get('pcrs') as CborMap;
    expect([...pcrs.keys()]).toEqual([...(real.map.get('pcrs') as CborMap).keys()]);
    for (const v of pcrs.values()) expect((v as Uint8Array).length).toBe(48);
  });

  it('writes a definite payload map by default and an indefinite one (0xbf ... 0xff) on request; both verify', async () => {
    const definite = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const indefinite = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0, encoding: 'indefinite' });
    const d = await definite.attest({});
    const i = await indefinite.attest({});
    expect(splitDocument(d).payload[0]).toBe(0xa9);
    const ip = splitDocument(i).payload;
    expect(ip[0]).toBe(0xbf);
    expect(ip[ip.length - 1]).toBe(0xff);
    for (const doc of [d, i]) await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem] });
  });

  it('can wrap the COSE_Sign1 in tag 18', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0, tagged: true });
    const doc = await attester.attest({});
    expect(toHex(doc.subarray(0, 2))).toBe('d284');
    await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem] });
  });

  it('writes absent optional fields as CBOR null (0xf6)', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const { payload, map } = splitDocument(await attester.attest({ userData: Uint8Array.of(0xab) }));
    const after = (name: string) => {
      const key = Uint8Array.from([0x60 + name.length, ...utf8(name)]);
      const at = Buffer.from(payload).indexOf(Buffer.from(key));
      expect(at).toBeGreaterThan(0);
      return toHex(payload.subarray(at + key.length, at + key.length + 2));
    };
    expect(after('public_key').slice(0, 2)).toBe('f6');
    expect(after('nonce').slice(0, 2)).toBe('f6');
    expect(after('user_data')).toBe('41ab');
    expect(map.get('public_key')).toBeNull();
    expect(map.get('nonce')).toBeNull();
  });

  it('accepts 1024-byte fields and rejects 1025 bytes or non-bytes with NSM_REQUEST_INVALID', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const max = new Uint8Array(1024).fill(7);
    const doc = await attester.attest({ publicKey: max, userData: max, nonce: max });
    await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem], nonce: max, userData: max, publicKey: max });
    const over = new Uint8Array(1025);
    await rejects(attester.attest({ publicKey: over }), 'NSM_REQUEST_INVALID');
    await rejects(attester.attest({ userData: over }), 'NSM_REQUEST_INVALID');
    await rejects(attester.attest({ nonce: over }), 'NSM_REQUEST_INVALID');
    await rejects(attester.attest({ nonce: 'abc' as unknown as Uint8Array }), 'NSM_REQUEST_INVALID');
  });

  it('rejects bad attester options with NSM_REQUEST_INVALID', async () => {
    await rejects(DevAttester.create({ ca, pcrs: pcrMap([[16, 1]]) }), 'NSM_REQUEST_INVALID');
    await rejects(DevAttester.create({ ca, pcrs: new Map([[0, new Uint8Array(32)]]) }), 'NSM_REQUEST_INVALID');
    await rejects(DevAttester.create({ ca, pcrs: {} as unknown as Map<number, Uint8Array> }), 'NSM_REQUEST_INVALID');
    await rejects(DevAttester.create({ ca, pcrs: pcrMap([]), moduleId: 'bad id/with space' }), 'NSM_REQUEST_INVALID');
    await rejects(DevAttester.create({ ca, pcrs: pcrMap([]), encoding: 'chunked' as 'definite' }), 'NSM_REQUEST_INVALID');
    await rejects(DevAttester.create({ ca, pcrs: pcrMap([]), leafReuseMs: 4 * HOUR }), 'NSM_REQUEST_INVALID');
    const badClock = await DevAttester.create({ ca, pcrs: pcrMap([]), now: () => Number.NaN });
    await rejects(badClock.attest({}), 'NSM_REQUEST_INVALID');
  });
});

const OPENSSL = spawnSync('openssl', ['version']).status === 0;

(OPENSSL ? describe : describe.skip)('openssl reads the certificates', () => {
  it('parses every certificate, shows the AWS-shaped extensions and verifies the chain', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => Date.now() });
    const { map } = splitDocument(await attester.attest({}));
    const bundle = map.get('cabundle') as Uint8Array[];
    const leaf = map.get('certificate') as Uint8Array;
    const dir = mkdtempSync(join(tmpdir(), 'dev-attester-'));
    try {
      const texts = [...bundle, leaf].map((der, i) => {
        const file = join(dir, `c${i}.der`);
        writeFileSync(file, der);
        return execFileSync('openssl', ['x509', '-inform', 'der', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
      });
      const [root, regional, zonal, instance, leafText] = texts as [string, string, string, string, string];
      for (const t of texts) expect(t).toMatch(/Signature Algorithm: ecdsa-with-SHA384/);
      for (const t of texts) expect(t).toMatch(/NIST CURVE: P-384/);
      expect(root).toMatch(/Basic Constraints: critical\s+CA:TRUE\s/);
      expect(regional).toMatch(/CA:TRUE, pathlen:2/);
      expect(zonal).toMatch(/CA:TRUE, pathlen:1/);
      expect(instance).toMatch(/CA:TRUE, pathlen:0/);
      expect(instance).toMatch(/Key Usage: critical\s+Certificate Sign\s/);
      expect(leafText).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      expect(leafText).toMatch(/Key Usage: \s*Digital Signature, Non Repudiation/);
      const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
      writeFileSync(join(dir, 'root.pem'), pem(bundle[0]!));
      writeFileSync(join(dir, 'chain.pem'), bundle.slice(1).map(pem).join(''));
      writeFileSync(join(dir, 'leaf.pem'), pem(leaf));
      const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
      expect(out.trim()).toMatch(/: OK$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('independent verifier: @0xsequence/tee-verifier', () => {
  // The peer library is ESM: run it in a child node process. It trusts cabundle[0] (pinning is the
  // caller's job through rootCertFingerprint), so we compare that fingerprint with the dev root's.
  const script = `
    import { SignedAttestation } from '@0xsequence/tee-verifier';
    import * as pkijs from 'pkijs';
    globalThis.window ??= globalThis;
    pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: globalThis.crypto }));
    const input = JSON.parse(process.env.DOC_JSON);
    const att = SignedAttestation.fromDocument(input.doc);
    const out = {
      signature: await att.verifySignature(),
      rootOfTrust: await att.verifyRootOfTrust(new Date(input.at)),
      expiredLater: await att.verifyRootOfTrust(new Date(input.at + 4 * 3600000)),
      rootFingerprint: await att.rootCertFingerprint(),
      pcr0: att.pcrs.get(0),
      // Its userData getter throws on a null user_data (the real document below has none).
      userData: input.readUserData ? att.userData : null,
    };
    console.log(JSON.stringify(out));
  `;
  function peer(doc: Uint8Array, at: number, readUserData = true): Record<string, unknown> {
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(__dirname, '../..'),
      env: { ...process.env, DOC_JSON: JSON.stringify({ doc: Buffer.from(doc).toString('base64'), at, readUserData }) },
      encoding: 'utf8',
    });
    if (res.status !== 0) throw new Error(`peer verifier failed: ${res.stderr}`);
    return JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  }

  it('accepts a dev document (signature, chain to its root at the document time) and rejects a tampered one', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 0x5a]]), now: () => T0, encoding: 'indefinite' });
    const doc = await attester.attest({ userData: utf8('hello') });
    const out = peer(doc, T0);
    expect(out).toEqual({
      signature: true,
      rootOfTrust: true,
      expiredLater: false,
      rootFingerprint: ca.rootFingerprint,
      pcr0: '5a'.repeat(48),
      userData: 'hello',
    });
    const tampered = doc.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(peer(tampered, T0).signature).toBe(false);
  });

  it('agrees on the real AWS document at its own time (control)', () => {
    const real = fromHex(readFileSync(REAL_DOC, 'utf8').trim());
    const out = peer(real, Date.UTC(2024, 10, 30, 16, 22, 48, 387), false);
    expect(out.signature).toBe(true);
    expect(out.rootOfTrust).toBe(true);
    expect(out.rootFingerprint).toBe('641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b');
  });
});

describe('dev CA', () => {
  it('has the AWS chain shape: root without pathLen, then pathLen 2, 1, 0, all P-384 and under 1024 bytes', async () => {
    const attester = await DevAttester.create({ ca, pcrs: pcrMap([[0, 1]]), now: () => T0 });
    const { map } = splitDocument(await attester.attest({}));
    const certs = [...(map.get('cabundle') as Uint8Array[]), map.get('certificate') as Uint8Array].map((d) => parseCertificate(d));
    expect(certs.map((c) => c.basicConstraints)).toEqual([{ ca: true }, { ca: true, pathLen: 2 }, { ca: true, pathLen: 1 }, { ca: true, pathLen: 0 }, { ca: false }]);
    expect(certs.map((c) => c.keyUsage)).toEqual([0x86, 0x86, 0x86, 0x04, 0xc0]);
    for (const c of certs) expect(c.der.length).toBeLessThanOrEqual(1024);
    expect(toHex(certs[0]!.der)).toBe(toHex(ca.rootDer));
    expect(certs[4]!.notAfter - certs[4]!.notBefore).toBe(3 * HOUR + 3000);
  });

  it('round-trips through export/import (JSON text) keeping the root, and the imported CA issues verifiable documents', async () => {
    const json = JSON.parse(JSON.stringify(await exportDevCa(ca))) as DevCaJson;
    expect(json.format).toBe('teegate-dev-ca');
    expect(json.intermediates).toHaveLength(3);
    const restored = await importDevCa(json);
    expect(restored.rootFingerprint).toBe(ca.rootFingerprint);
    expect(restored.rootPem).toBe(ca.rootPem);
    const attester = await DevAttester.create({ ca: restored, pcrs: pcrMap([[0, 1]]), now: () => T0 + HOUR });
    const v = await verifyAttestation(await attester.attest({}), { at: T0 + HOUR, rootCertificates: [ca.rootPem] });
    expect(v.rootFingerprint).toBe(ca.rootFingerprint);
    expect(v.chain[3]!.serialNumber).toBe(parseCertificate(ca.intermediateDers[2]!).serialNumberHex);
  });

  it('rejects a malformed or mismatched export with DEV_CA_INVALID', async () => {
    const json = (await exportDevCa(ca)) as DevCaJson;
    const [regional, zonal, instance] = json.intermediates as [DevCaJson['root'], DevCaJson['root'], DevCaJson['root']];
    await rejects(importDevCa({ ...json, version: 2 } as unknown as DevCaJson), 'DEV_CA_INVALID');
    await rejects(importDevCa(null as unknown as DevCaJson), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, intermediates: [regional, zonal] }), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, intermediates: [regional, instance, zonal] }), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, root: { ...json.root, privateKey: regional.privateKey } }), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, root: { ...json.root, certificate: 'not base64!' } }), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, root: { ...json.root, certificate: json.root.certificate.slice(0, 40) } }), 'DEV_CA_INVALID');
    await rejects(importDevCa({ ...json, root: { ...json.root, privateKey: { kty: 'EC', crv: 'P-256', d: 'AA' } } }), 'DEV_CA_INVALID');
    const other = await exportDevCa(await createDevCa({ now: T0 }));
    await rejects(importDevCa({ ...json, intermediates: [other.intermediates[0]!, zonal, instance] }), 'DEV_CA_INVALID');
  });

  it('re-issues the intermediates that a leaf would outlive, keeping the root', async () => {
    const local = await createDevCa({ now: T0, rootValidityDays: 90 });
    const before = local.intermediateDers.map(toHex);
    const doc = async (at: number) => {
      const attester = await DevAttester.create({ ca: local, pcrs: pcrMap([[0, 1]]), now: () => at });
      const d = await attester.attest({});
      await verifyAttestation(d, { at: at + 2 * HOUR, rootCertificates: [local.rootPem] });
      return (splitDocument(d).map.get('cabundle') as Uint8Array[]).map(toHex);
    };
    expect((await doc(T0 + HOUR)).slice(1)).toEqual(before);
    const twoDays = await doc(T0 + 2 * DAY);
    expect(twoDays[0]).toBe(toHex(local.rootDer));
    expect(twoDays.slice(1, 3)).toEqual(before.slice(0, 2));
    expect(twoDays[3]).not.toBe(before[2]);
    const month = await doc(T0 + 30 * DAY);
    expect(month.slice(1).some((c) => twoDays.includes(c))).toBe(false);
    const attester = await DevAttester.create({ ca: local, pcrs: pcrMap([[0, 1]]), now: () => T0 + 91 * DAY });
    await rejects(attester.attest({}), 'DEV_CA_INVALID');
  });

  it('rejects bad creation options with DEV_CA_INVALID', async () => {
    await rejects(createDevCa({ rootValidityDays: 0 }), 'DEV_CA_INVALID');
    await rejects(createDevCa({ now: Number.NaN }), 'DEV_CA_INVALID');
  });
});

describe('measureImage', () => {
  const kernel = [utf8('bzImage kernel bytes'), utf8('console=ttyS0')];
  const app = [utf8('ramdisk: init'), utf8('ramdisk: app and model')];
  const sha384 = (...parts: Uint8Array[]) => {
    const h = createHash('sha384');
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };

  it('computes PCR = SHA-384(0^48 || SHA-384(files)) per part, as nitro-cli build-enclave does', async () => {
    const pcrs = await measureImage({ image: [...kernel, ...app], kernel, application: app });
    expect([...pcrs.keys()]).toEqual([0, 1, 2]);
    const expected = (files: Uint8Array[]) => toHex(sha384(new Uint8Array(48), sha384(...files)));
    expect(toHex(pcrs.get(0)!)).toBe(expected([...kernel, ...app]));
    expect(toHex(pcrs.get(1)!)).toBe(expected(kernel));
    expect(toHex(pcrs.get(2)!)).toBe(expected(app));
    expect(toHex(await extendPcr(pcrs.get(0)!, utf8('x')))).toBe(toHex(sha384(pcrs.get(0)!, utf8('x'))));
  });

  it('is deterministic and changes when one byte of one file changes', async () => {
    const a = await measureImage({ image: [...kernel, ...app], kernel, application: app });
    const b = await measureImage({ image: [...kernel, ...app], kernel, application: app });
    expect([...a.values()].map(toHex)).toEqual([...b.values()].map(toHex));
    const changed = app.map((f) => f.slice());
    changed[1]![3]! ^= 0x01;
    const c = await measureImage({ image: [...kernel, ...changed], kernel, application: changed });
    expect(toHex(c.get(0)!)).not.toBe(toHex(a.get(0)!));
    expect(toHex(c.get(1)!)).toBe(toHex(a.get(1)!));
    expect(toHex(c.get(2)!)).not.toBe(toHex(a.get(2)!));
  });

  it('feeds the attester: a policy on the measured PCRs passes, another image fails with PCR_MISMATCH', async () => {
    const pcrs = await measureImage({ image: [...kernel, ...app], kernel, application: app });
    const attester = await DevAttester.create({ ca, pcrs, now: () => T0 });
    const doc = await attester.attest({});
    const policy = { pcrs: Object.fromEntries([...pcrs].map(([i, v]) => [i, toHex(v)])) };
    await verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem], policy });
    const other = await measureImage({ image: [utf8('another image')] });
    await rejects(verifyAttestation(doc, { at: T0, rootCertificates: [ca.rootPem], policy: { pcrs: { 0: toHex(other.get(0)!) } } }), 'PCR_MISMATCH');
  });

  it('rejects missing or non-byte inputs with NSM_REQUEST_INVALID', async () => {
    await rejects(measureImage({ image: [] }), 'NSM_REQUEST_INVALID');
    await rejects(measureImage({ image: ['file.txt' as unknown as Uint8Array] }), 'NSM_REQUEST_INVALID');
    await rejects(measureImage({ image: [utf8('a')], kernel: [] }), 'NSM_REQUEST_INVALID');
    await rejects(measureImage(null as unknown as { image: Uint8Array[] }), 'NSM_REQUEST_INVALID');
    await rejects(extendPcr(new Uint8Array(32), utf8('x')), 'NSM_REQUEST_INVALID');
  });
});

describe('DER writer', () => {
  it('writes minimal INTEGERs, OIDs, RFC 5280 times and keyUsage bit strings as AWS certificates carry them', () => {
    expect(toHex(derInteger(0))).toBe('020100');
    expect(toHex(derInteger(0x80))).toBe('02020080');
    expect(toHex(derInteger(Uint8Array.of(0, 0, 0x7f)))).toBe('02017f');
    expect(toHex(derInteger(2n ** 64n))).toBe('0209010000000000000000');
    expect(toHex(derOid('1.2.840.10045.4.3.3'))).toBe('06082a8648ce3d040303');
    expect(toHex(derOid('1.3.132.0.34'))).toBe('06052b81040022');
    expect(Buffer.from(derTime(Date.UTC(2049, 11, 31, 23, 59, 59))).toString('latin1').slice(2)).toBe('491231235959Z');
    expect(derTime(Date.UTC(2049, 0, 1))[0]).toBe(0x17);
    expect(Buffer.from(derTime(Date.UTC(2050, 0, 1, 0, 0, 0))).toString('latin1').slice(2)).toBe('20500101000000Z');
    expect(derTime(Date.UTC(2050, 0, 1))[0]).toBe(0x18);
    // Bytes from the AWS certificates of the real document: leaf, root/intermediates, instance CA.
    expect(toHex(derNamedBits([0, 1]))).toBe('030206c0');
    expect(toHex(derNamedBits([0, 5, 6]))).toBe('03020186');
    expect(toHex(derNamedBits([5]))).toBe('03020204');
  });

  it('converts WebCrypto r||s to a DER ECDSA-Sig-Value and back', () => {
    const raw = new Uint8Array(96);
    raw[0] = 0x80; // r needs a sign octet
    raw[95] = 0x01; // s is mostly leading zeros
    const der = ecdsaRawToDer(raw);
    expect(toHex(der.subarray(0, 5))).toBe('3036023100'); // SEQUENCE, r = 49 octets with 00 prefix
    expect(toHex(der.subarray(der.length - 3))).toBe('020101');
    expect(toHex(ecdsaDerToRaw(der))).toBe(toHex(raw));
  });
});
