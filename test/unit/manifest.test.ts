/**
 * The enclave manifest as a client, the gateway and an auditor receive it (untrusted JSON):
 * parseManifest refuses every malformed or unexpected member with MANIFEST_INVALID, and
 * verifyManifestBinding ties a manifest to a dev attester document (user_data = SHA-256 of its
 * canonical JSON, public_key = its receipt key, kids = RFC 7638 thumbprints).
 */
import { randomUUID } from 'node:crypto';
import { DevAttester } from '../../attestation/dev/dev-attester';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { canonicalJson, manifestDigest, parseManifest, verifyManifestBinding, type EnclaveManifest } from '../../attestation/manifest';
import { verifyAttestation, type VerifiedAttestation } from '../../attestation/nitro/verify';
import { generateEnclaveKeys, type EnclaveKeys } from '../../enclave/keys';
import { refusalOf } from '../support/error-code';
import { enclaveManifest } from '../support/manifest';

type Json = Record<string, unknown>;

let ca: DevCa;
let attester: DevAttester;
let keys: EnclaveKeys;
let manifest: EnclaveManifest;

beforeAll(async () => {
  ca = await createDevCa();
  attester = await DevAttester.create({ ca, pcrs: new Map([[0, new Uint8Array(48).fill(1)]]) });
  keys = await generateEnclaveKeys();
  manifest = enclaveManifest(keys, [
    { name: 'ocr', version: '1', sha256: 'ab'.repeat(32) },
    { name: 'ocr', version: '2', sha256: 'cd'.repeat(32) },
  ]);
});

/** A deep copy of the valid manifest with `edit` applied. */
function edited(edit: (m: Json) => void): Json {
  const copy = JSON.parse(JSON.stringify(manifest)) as Json;
  edit(copy);
  return copy;
}

const at = (m: Json, ...path: string[]): Json => path.reduce((o, k) => o[k] as Json, m);

describe('parseManifest', () => {
  it('accepts what an enclave publishes, several versions of one model included, and returns it unchanged', () => {
    expect(parseManifest(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
  });

  it('accepts RFC 3339 times with an offset and without fractional seconds', () => {
    for (const t of ['2026-11-24T12:00:00Z', '2026-11-24T12:00:00.123456+01:00']) {
      expect(parseManifest(edited((m) => (m.issued_at = t))).issued_at).toBe(t);
    }
  });

  const cases: [string, (m: Json) => unknown, string][] = [
    ['null', () => null, 'must be a JSON object'],
    ['an array', () => [], 'must be a JSON object'],
    ['a string', () => 'manifest', 'must be a JSON object'],
    ['version 2', (m) => ({ ...m, version: 2 }), 'version must be 1'],
    ['version "1"', (m) => ({ ...m, version: '1' }), 'version must be 1'],
    ['an unknown top-level member', (m) => ({ ...m, policy: 'trust me' }), 'unexpected member "policy"'],
    ['no software', (m) => ({ ...m, software: undefined }), 'software must be an object'],
    ['software as an array', (m) => ({ ...m, software: ['teegate-enclave', '0.1.0'] }), 'software must be an object'],
    ['an unknown software member', () => edited((c) => (at(c, 'software').build = 'dirty')), 'software has an unexpected member "build"'],
    ['an empty software name', () => edited((c) => (at(c, 'software').name = '')), 'software.name must be a non-empty string'],
    ['a software version of 257 characters', () => edited((c) => (at(c, 'software').version = 'v'.repeat(257))), 'software.version must be a non-empty string'],
    ['no keys', (m) => ({ ...m, keys: null }), 'keys must be an object'],
    ['a third key', () => edited((c) => (at(c, 'keys').backup = at(c, 'keys', 'receipt'))), 'keys has an unexpected member "backup"'],
    ['models not an array', (m) => ({ ...m, models: {} }), 'models must be an array'],
    ['257 models', (m) => ({ ...m, models: Array.from({ length: 257 }, (_, i) => ({ name: `m${i}`, version: '1', sha256: 'ab'.repeat(32) })) }), 'at most 256 entries'],
    ['no issued_at', (m) => ({ ...m, issued_at: undefined }), 'issued_at must be a non-empty string'],
    ['issued_at a number', (m) => ({ ...m, issued_at: 1764000000 }), 'issued_at must be a non-empty string'],
    ['issued_at that Date.parse reads but is not RFC 3339', (m) => ({ ...m, issued_at: 'Tue, 24 Nov 2026 12:00:00 GMT' }), 'issued_at must be an RFC 3339 time'],
    ['issued_at a date only', (m) => ({ ...m, issued_at: '2026-11-24' }), 'issued_at must be an RFC 3339 time'],
    ['issued_at on the 32nd', (m) => ({ ...m, issued_at: '2026-11-32T12:00:00Z' }), 'issued_at must be an RFC 3339 time'],
    ['a model that is not an object', (m) => ({ ...m, models: ['ocr'] }), 'models[0] must be an object'],
    ['a model that is an array', (m) => ({ ...m, models: [['ocr', '1']] }), 'models[0] must be an object'],
    ['an unknown model member', () => edited((c) => ((c.models as Json[])[1]!.path = '/models/ocr.onnx')), 'models[1] has an unexpected member "path"'],
    ['a model without a name', () => edited((c) => delete (c.models as Json[])[0]!.name), 'models[0].name must be a non-empty string'],
    ['a model name of 129 characters', () => edited((c) => ((c.models as Json[])[0]!.name = 'n'.repeat(129))), 'models[0].name must be a non-empty string'],
    ['a model without a version', () => edited((c) => delete (c.models as Json[])[1]!.version), 'models[1].version must be a non-empty string'],
    ['the same model version twice', () => edited((c) => ((c.models as Json[])[1]!.version = '1')), 'model ocr version 1 is listed twice'],
    ['an upper-case model digest', () => edited((c) => ((c.models as Json[])[0]!.sha256 = 'AB'.repeat(32))), 'models[0].sha256 must be 64 lowercase hex'],
    ['a short model digest', () => edited((c) => ((c.models as Json[])[0]!.sha256 = 'ab'.repeat(31))), 'models[0].sha256 must be 64 lowercase hex'],
    ['no boot_id', (m) => ({ ...m, boot_id: undefined }), 'boot_id must be a non-empty string'],
    ['a boot_id of 129 characters', (m) => ({ ...m, boot_id: 'b'.repeat(129) }), 'boot_id must be a non-empty string'],
    ['a receipt key that is not an object', () => edited((c) => (at(c, 'keys').receipt = 'key')), 'keys.receipt must be a JWK object'],
    ['a receipt key with its private part', () => edited((c) => (at(c, 'keys', 'receipt').d = 'A'.repeat(43))), 'keys.receipt has an unexpected member "d" (private keys are never published)'],
    ['an RSA seal key', () => edited((c) => (at(c, 'keys', 'seal').kty = 'RSA')), 'keys.seal must be an EC P-256 key'],
    ['a P-384 receipt key', () => edited((c) => (at(c, 'keys', 'receipt').crv = 'P-384')), 'keys.receipt must be an EC P-256 key'],
    ['the seal key in the receipt key\'s place', () => edited((c) => (at(c, 'keys').receipt = at(c, 'keys', 'seal'))), 'keys.receipt must have alg ES256 and use sig'],
    ['a receipt key for encryption', () => edited((c) => (at(c, 'keys', 'receipt').use = 'enc')), 'keys.receipt must have alg ES256 and use sig'],
    ['a coordinate of 31 bytes', () => edited((c) => (at(c, 'keys', 'seal').x = 'A'.repeat(42))), 'keys.seal coordinates must be 32-byte base64url'],
    ['a coordinate in standard base64', () => edited((c) => (at(c, 'keys', 'receipt').y = '+'.repeat(43))), 'keys.receipt coordinates must be 32-byte base64url'],
    ['a key without kid', () => edited((c) => delete at(c, 'keys', 'seal').kid), 'keys.seal.kid must be a non-empty string'],
  ];
  it.each(cases)('refuses %s: MANIFEST_INVALID', async (_name, make, message) => {
    const value = make(JSON.parse(JSON.stringify(manifest)) as Json);
    const refused = await refusalOf(() => parseManifest(value));
    expect(refused.code).toBe('MANIFEST_INVALID');
    expect(refused.message).toContain(message);
  });
});

describe('canonicalJson', () => {
  it('refuses a value with no JSON form: MANIFEST_INVALID', async () => {
    expect(await refusalOf(() => canonicalJson(undefined))).toEqual({ code: 'MANIFEST_INVALID', message: 'value has no JSON form' });
  });
});

describe('verifyManifestBinding', () => {
  /** A dev document with `public_key` and `user_data` as given, verified under the dev root. */
  async function documentWith(request: { publicKey?: Uint8Array; userData?: Uint8Array }): Promise<VerifiedAttestation> {
    return verifyAttestation(await attester.attest(request), { rootCertificates: [ca.rootPem] });
  }

  it('returns the manifest the document is bound to', async () => {
    const doc = await documentWith({ publicKey: keys.receiptSpki, userData: await manifestDigest(manifest) });
    await expect(verifyManifestBinding(doc, JSON.parse(JSON.stringify(manifest)))).resolves.toEqual(manifest);
  });

  it('refuses a manifest whose digest is not the document\'s user_data: MANIFEST_BINDING_MISMATCH', async () => {
    const doc = await documentWith({ publicKey: keys.receiptSpki, userData: await manifestDigest(manifest) });
    const other = edited((m) => (m.boot_id = randomUUID()));
    expect(await refusalOf(() => verifyManifestBinding(doc, other))).toEqual({ code: 'MANIFEST_BINDING_MISMATCH', message: 'document user_data is not SHA-256 of the canonical manifest' });
  });

  it('refuses a document without user_data: MANIFEST_BINDING_MISMATCH', async () => {
    const doc = await documentWith({ publicKey: keys.receiptSpki });
    expect((await refusalOf(() => verifyManifestBinding(doc, manifest))).code).toBe('MANIFEST_BINDING_MISMATCH');
  });

  it('refuses a document whose public_key is another key than the manifest\'s receipt key: MANIFEST_BINDING_MISMATCH', async () => {
    const other = await generateEnclaveKeys();
    const doc = await documentWith({ publicKey: other.receiptSpki, userData: await manifestDigest(manifest) });
    expect(await refusalOf(() => verifyManifestBinding(doc, manifest))).toEqual({ code: 'MANIFEST_BINDING_MISMATCH', message: 'document public_key is not the manifest receipt key' });
  });

  it('refuses a bound manifest whose key ids are not the keys\' thumbprints: MANIFEST_INVALID', async () => {
    for (const use of ['receipt', 'seal'] as const) {
      const wrongKid = edited((m) => (at(m, 'keys', use).kid = at(m, 'keys', use === 'receipt' ? 'seal' : 'receipt').kid));
      const doc = await documentWith({ publicKey: keys.receiptSpki, userData: await manifestDigest(wrongKid as unknown as EnclaveManifest) });
      const refused = await refusalOf(() => verifyManifestBinding(doc, wrongKid));
      expect(refused).toEqual({ code: 'MANIFEST_INVALID', message: `kid of the ${use === 'receipt' ? 'sig' : 'enc'} key is not its RFC 7638 thumbprint` });
    }
  });

  it('refuses a bound manifest whose receipt or seal key is not a P-256 point: MANIFEST_INVALID, not a WebCrypto error later', async () => {
    for (const use of ['receipt', 'seal'] as const) {
      const offCurve = edited((m) => (at(m, 'keys', use).y = at(m, 'keys', use).x));
      const doc = await documentWith({ publicKey: keys.receiptSpki, userData: await manifestDigest(offCurve as unknown as EnclaveManifest) });
      expect(await refusalOf(() => verifyManifestBinding(doc, offCurve))).toEqual({ code: 'MANIFEST_INVALID', message: `the ${use} key is not a P-256 public key` });
    }
  });

  it('checks the schema before the binding: an unexpected member is MANIFEST_INVALID even when the document commits to it', async () => {
    const extended = edited((m) => (m.note = 'attested, but no client knows what it means'));
    const doc = await documentWith({ publicKey: keys.receiptSpki, userData: await manifestDigest(extended as unknown as EnclaveManifest) });
    expect(await refusalOf(() => verifyManifestBinding(doc, extended))).toEqual({ code: 'MANIFEST_INVALID', message: 'manifest has an unexpected member "note"' });
  });
});
