/**
 * The sealed model file format (enclave/kms/sealed-model.ts, docs/key-release.md): round trip,
 * header bound as GCM additional data, and every malformed case rejected with a typed error.
 * Data keys here are random local bytes; the KMS side is in test/integration/key-release.test.ts.
 */
import { errorCodeOf as codeOf, refusalOfSync } from '../support/error-code';
import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { releaseDataKey, sealedModelReader } from '../../enclave/kms/key-release';
import type { ModelConfig } from '../../enclave/models/model-config';
import type { Nsm } from '../../enclave/nsm/nsm';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { concatBytes, fromUtf8, randomBytes, toBase64, utf8 } from '../../attestation/bytes';
import {
  GCM_TAG_BYTES,
  SEALED_MODEL_MAX_HEADER_BYTES,
  SEALED_MODEL_PREFIX_BYTES,
  decryptSealedModel,
  encryptSealedModel,
  expectSealedModel,
  modelEncryptionContext,
  parseSealedModel,
  sealModel,
  type SealedModelHeader,
} from '../../enclave/kms/sealed-model';

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const dataKey = randomBytes(32);
const encryptedDataKey = randomBytes(180);
const plaintext = new Uint8Array(nodeRandomBytes(3000));

function seal(bytes: Uint8Array = plaintext, name = 'ocr', version = '3'): Uint8Array {
  return sealModel({ plaintext: bytes, name, version, dataKey, encryptedDataKey, keyId: KEY_ARN });
}


/** A file with this header text and body (ciphertext || tag), framed like the real thing. */
function frame(headerText: string, body: Uint8Array, version = 1, declaredLength?: number): Uint8Array {
  const header = utf8(headerText);
  const prefix = new Uint8Array(SEALED_MODEL_PREFIX_BYTES);
  prefix.set(utf8('TGSM'));
  prefix[4] = version;
  new DataView(prefix.buffer).setUint32(5, declaredLength ?? header.length, false);
  return concatBytes(prefix, header, body);
}

/** The header object of a sealed file, and its body. */
function split(file: Uint8Array): { header: Record<string, Record<string, unknown>>; body: Uint8Array } {
  const length = new DataView(file.buffer, file.byteOffset).getUint32(5, false);
  return {
    header: JSON.parse(fromUtf8(file.subarray(SEALED_MODEL_PREFIX_BYTES, SEALED_MODEL_PREFIX_BYTES + length))) as Record<string, Record<string, unknown>>,
    body: file.subarray(SEALED_MODEL_PREFIX_BYTES + length),
  };
}

/** `file` with its header changed by `edit` and re-framed canonically (body unchanged). */
function withHeader(file: Uint8Array, edit: (h: Record<string, Record<string, unknown>>) => void): Uint8Array {
  const { header, body } = split(file);
  edit(header);
  return frame(canonicalize(header)!, body);
}

describe('sealed model: round trip', () => {
  it('seals and opens a model; the header names the model, its digest, the key and the context', () => {
    const file = seal();
    expect(fromUtf8(file.subarray(0, 4))).toBe('TGSM');
    expect(file[4]).toBe(1);
    const sealed = parseSealedModel(file);
    expect(sealed.header.model).toEqual({ name: 'ocr', version: '3', sha256: createHash('sha256').update(plaintext).digest('hex'), size: 3000 });
    expect(sealed.header.kms.keyId).toBe(KEY_ARN);
    expect(sealed.header.kms.encryptedDataKey).toEqual(encryptedDataKey);
    expect(sealed.header.kms.encryptionContext).toEqual({ 'teegate:model': 'ocr', 'teegate:version': '3' });
    expect(sealed.header.iv).toHaveLength(12);
    expect(sealed.ciphertext).toHaveLength(3000);
    expect(Buffer.from(sealed.ciphertext).equals(Buffer.from(plaintext))).toBe(false);
    expect(file).toHaveLength(sealed.aad.length + 3000 + GCM_TAG_BYTES);
    expect(Buffer.from(decryptSealedModel(sealed, dataKey)).equals(Buffer.from(plaintext))).toBe(true);
    expect(() => expectSealedModel(sealed, { name: 'ocr', version: '3', sha256: sealed.header.model.sha256 })).not.toThrow();
  });

  it('uses a fresh IV per seal, and seals an empty model', () => {
    expect(parseSealedModel(seal()).header.iv).not.toEqual(parseSealedModel(seal()).header.iv);
    const empty = parseSealedModel(seal(new Uint8Array(0)));
    expect(empty.header.model.size).toBe(0);
    expect(decryptSealedModel(empty, dataKey)).toHaveLength(0);
  });

  it('modelEncryptionContext names the model and version', () => {
    expect(modelEncryptionContext('m', '7')).toEqual({ 'teegate:model': 'm', 'teegate:version': '7' });
  });

  it('refuses to seal under a key that is not 32 bytes or for an invalid name', () => {
    expect(codeOf(() => sealModel({ plaintext, name: 'ocr', version: '1', dataKey: randomBytes(16), encryptedDataKey, keyId: KEY_ARN }))).toBe('SEALED_MODEL_INVALID');
    expect(codeOf(() => seal(plaintext, '../etc', '1'))).toBe('SEALED_MODEL_INVALID');
    expect(codeOf(() => seal(plaintext, 'ocr', 'v 1'))).toBe('SEALED_MODEL_INVALID');
  });

  it('refuses to seal with an IV that is not 12 bytes (encryptSealedModel, given a header)', () => {
    const header: SealedModelHeader = {
      model: { name: 'ocr', version: '3', sha256: createHash('sha256').update(plaintext).digest('hex'), size: plaintext.length },
      kms: { keyId: KEY_ARN, encryptedDataKey, encryptionContext: modelEncryptionContext('ocr', '3') },
      iv: randomBytes(12),
    };
    expect(parseSealedModel(encryptSealedModel(header, plaintext, dataKey)).header.iv).toEqual(header.iv);
    for (const n of [0, 11, 13, 16]) {
      expect(() => encryptSealedModel({ ...header, iv: randomBytes(n) }, plaintext, dataKey)).toThrow(expect.objectContaining({ code: 'SEALED_MODEL_INVALID', message: 'sealed model: iv must be 12 bytes' }));
    }
  });
});

describe('sealed model: reading at boot (sealedModelReader)', () => {
  it('a sealed file that cannot be read is MODEL_LOAD_FAILED naming the model and the path, before any NSM or KMS call', async () => {
    const calls: string[] = [];
    const kms = { send: async () => calls.push('kms') } as unknown as KMSClient;
    const nsm = { attest: async () => calls.push('nsm') } as unknown as Nsm;
    const missing = join(mkdtempSync(join(tmpdir(), 'teegate-sealed-')), 'ocr.onnx.sealed');
    const config: ModelConfig = { name: 'ocr', version: '3', kind: 'onnx', path: '/models/ocr.onnx', sha256: '0'.repeat(64), sealed: { path: missing } };
    const events: Record<string, unknown>[] = [];
    const read = sealedModelReader(kms, nsm, [config], { log: (e) => events.push(e) });
    await expect(read('/models/ocr.onnx')).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED', message: `model ocr@3: cannot read sealed model ${missing}: ENOENT` });
    expect(calls).toEqual([]);
    expect(events).toEqual([expect.objectContaining({ level: 'error', msg: 'model key release failed', model: 'ocr@3', code: 'MODEL_LOAD_FAILED' })]);
  });
});

describe('sealed model: the Decrypt answer (releaseDataKey)', () => {
  it('wipes a data key KMS answered in plaintext before refusing it: KEY_RELEASE_REJECTED', async () => {
    const leaked = new Uint8Array(32).fill(7);
    const kms = { send: async () => ({ Plaintext: leaked }) } as unknown as KMSClient;
    const nsm = { attest: async () => new Uint8Array(8) } as unknown as Nsm;
    await expect(releaseDataKey(kms, nsm, parseSealedModel(seal()))).rejects.toMatchObject({
      code: 'KEY_RELEASE_REJECTED',
      message: 'KMS Decrypt answered with the data key in plaintext instead of CiphertextForRecipient; refusing it',
    });
    expect(leaked).toEqual(new Uint8Array(32));
  });
});

describe('sealed model: authentication and digests', () => {
  it('a wrong data key is SEALED_MODEL_DECRYPT_FAILED', () => {
    expect(codeOf(() => decryptSealedModel(parseSealedModel(seal()), randomBytes(32)))).toBe('SEALED_MODEL_DECRYPT_FAILED');
    expect(refusalOfSync(() => decryptSealedModel(parseSealedModel(seal()), randomBytes(31)))).toEqual({ code: 'SEALED_MODEL_DECRYPT_FAILED', message: 'data key is 31 bytes, expected 32' });
  });

  it('a changed ciphertext or tag byte is SEALED_MODEL_DECRYPT_FAILED', () => {
    const file = seal();
    for (const index of [file.length - 3000 - GCM_TAG_BYTES, file.length - 1000, file.length - GCM_TAG_BYTES - 1, file.length - GCM_TAG_BYTES, file.length - 1]) {
      const bad = Uint8Array.from(file);
      bad[index]! ^= 0x40;
      expect(codeOf(() => decryptSealedModel(parseSealedModel(bad), dataKey))).toBe('SEALED_MODEL_DECRYPT_FAILED');
    }
  });

  it('a header rewritten to other valid values fails GCM: the header is the additional data', () => {
    const file = seal();
    const edits: ((h: Record<string, Record<string, unknown>>) => void)[] = [
      (h) => (h.kms!.keyId = 'arn:aws:kms:us-east-1:111122223333:key/other'),
      (h) => (h.kms!.encryptedDataKey = toBase64(randomBytes(180))),
      (h) => (h.cipher!.iv = toBase64(randomBytes(12))),
      (h) => (h.model!.sha256 = 'ab'.repeat(32)),
      (h) => {
        h.model!.version = '4';
        h.kms!.encryptionContext = modelEncryptionContext('ocr', '4');
      },
    ];
    for (const edit of edits) {
      const changed = parseSealedModel(withHeader(file, edit));
      expect(codeOf(() => decryptSealedModel(changed, dataKey))).toBe('SEALED_MODEL_DECRYPT_FAILED');
    }
  });

  it('every single-byte change anywhere in the file is rejected with a typed error', () => {
    const file = seal(randomBytes(20));
    const codes = new Set<string>();
    for (let i = 0; i < file.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Uint8Array.from(file);
        bad[i]! ^= bit;
        const code = codeOf(() => decryptSealedModel(parseSealedModel(bad), dataKey));
        expect(['SEALED_MODEL_INVALID', 'SEALED_MODEL_DECRYPT_FAILED']).toContain(code);
        codes.add(code);
      }
    }
    expect(codes.size).toBe(2);
  });

  it('a sealer that lied about the digest: the plaintext check is SEALED_MODEL_DIGEST_MISMATCH', () => {
    const header: SealedModelHeader = {
      model: { name: 'ocr', version: '3', sha256: '00'.repeat(32), size: plaintext.length },
      kms: { keyId: KEY_ARN, encryptedDataKey, encryptionContext: modelEncryptionContext('ocr', '3') },
      iv: randomBytes(12),
    };
    const sealed = parseSealedModel(encryptSealedModel(header, plaintext, dataKey));
    expect(codeOf(() => decryptSealedModel(sealed, dataKey))).toBe('SEALED_MODEL_DIGEST_MISMATCH');
  });

  it('expectSealedModel: another model or version is SEALED_MODEL_INVALID, another digest SEALED_MODEL_DIGEST_MISMATCH', () => {
    const sealed = parseSealedModel(seal());
    const { sha256 } = sealed.header.model;
    expect(codeOf(() => expectSealedModel(sealed, { name: 'other', version: '3', sha256 }))).toBe('SEALED_MODEL_INVALID');
    expect(codeOf(() => expectSealedModel(sealed, { name: 'ocr', version: '2', sha256 }))).toBe('SEALED_MODEL_INVALID');
    expect(codeOf(() => expectSealedModel(sealed, { name: 'ocr', version: '3', sha256: 'ff'.repeat(32) }))).toBe('SEALED_MODEL_DIGEST_MISMATCH');
  });
});

describe('sealed model: strict parsing', () => {
  const file = seal(randomBytes(64));
  const { header, body } = split(file);
  const text = canonicalize(header)!;

  function invalid(bytes: Uint8Array): void {
    expect(codeOf(() => parseSealedModel(bytes))).toBe('SEALED_MODEL_INVALID');
  }
  function invalidHeader(edit: (h: Record<string, Record<string, unknown>>) => void): void {
    invalid(withHeader(file, edit));
  }

  it('accepts the canonical file as framed by the test helper (the helper is faithful)', () => {
    expect(Buffer.from(frame(text, body)).equals(Buffer.from(file))).toBe(true);
    expect(codeOf(() => parseSealedModel(frame(text, body)))).toBe('no error');
  });

  it('rejects short files, a wrong magic, another format version and bad header lengths', () => {
    invalid(new Uint8Array(0));
    invalid(file.subarray(0, SEALED_MODEL_PREFIX_BYTES + GCM_TAG_BYTES - 1));
    const magic = Uint8Array.from(file);
    magic[0] = 0x58;
    invalid(magic);
    invalid(frame(text, body, 2));
    invalid(frame(text, body, 0));
    invalid(frame(text, body, 1, 0));
    invalid(frame(text, body, 1, SEALED_MODEL_MAX_HEADER_BYTES + 1));
    invalid(frame(text, body, 1, text.length + body.length - GCM_TAG_BYTES + 1));
    invalid(frame(text, body, 1, 0xffffffff));
    invalid(frame(text, body, 1, text.length - 1));
  });

  it('names the framing limit a file breaks', () => {
    const oversized = 'x'.repeat(SEALED_MODEL_MAX_HEADER_BYTES + 1);
    expect(refusalOfSync(() => parseSealedModel(frame(oversized, new Uint8Array(GCM_TAG_BYTES))))).toEqual({
      code: 'SEALED_MODEL_INVALID',
      message: `sealed model: header length ${SEALED_MODEL_MAX_HEADER_BYTES + 1} is not between 1 and ${SEALED_MODEL_MAX_HEADER_BYTES}`,
    });
    expect(refusalOfSync(() => parseSealedModel(frame(text, body, 1, 0)))).toEqual({ code: 'SEALED_MODEL_INVALID', message: `sealed model: header length 0 is not between 1 and ${SEALED_MODEL_MAX_HEADER_BYTES}` });
    // A header that would end inside the last 16 bytes (the tag).
    const overlapping = frame(text, body, 1, text.length + body.length - GCM_TAG_BYTES + 1);
    expect(refusalOfSync(() => parseSealedModel(overlapping))).toEqual({
      code: 'SEALED_MODEL_INVALID',
      message: `sealed model: header length ${text.length + body.length - GCM_TAG_BYTES + 1} leaves no room for the tag in ${overlapping.length} bytes`,
    });
  });

  it('rejects a canonical header with an invalid UTF-8 byte inside a string (never read as U+FFFD)', () => {
    const bytes = utf8(text);
    const at = text.indexOf(KEY_ARN) + KEY_ARN.length; // inside the keyId string, which has no pattern
    const header = concatBytes(bytes.subarray(0, at), Uint8Array.of(0xff), bytes.subarray(at));
    const prefix = frame('', new Uint8Array(0)).subarray(0, 5);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, header.length, false);
    expect(refusalOfSync(() => parseSealedModel(concatBytes(prefix, length, header, body)))).toEqual({ code: 'SEALED_MODEL_INVALID', message: 'sealed model: header is not valid UTF-8' });
  });

  it('rejects a header that is not UTF-8, not JSON or not canonical', () => {
    invalid(concatBytes(frame('', new Uint8Array(0)).subarray(0, 5), Uint8Array.of(0, 0, 0, 2, 0xc3, 0x28), body));
    invalid(frame('{"cipher":', body));
    invalid(frame(JSON.stringify(header, null, 1), body));
    invalid(frame(text.replace('{"cipher":', '{ "cipher":'), body));
    invalid(frame(`{"kms":${canonicalize(header.kms)},"cipher":${canonicalize(header.cipher)},"model":${canonicalize(header.model)}}`, body));
    invalid(frame(text.replace('{"cipher":', `{"cipher":${canonicalize(header.cipher)},"cipher":`), body));
    invalid(frame('[]', body));
    invalid(frame('null', body));
    invalid(frame(`${text} `, body));
  });

  it('rejects missing, extra and mistyped members', () => {
    invalidHeader((h) => delete (h as Record<string, unknown>).cipher);
    invalidHeader((h) => ((h as Record<string, unknown>).extra = 1));
    invalidHeader((h) => delete h.model!.size);
    invalidHeader((h) => (h.model!.extra = 'x'));
    invalidHeader((h) => delete h.kms!.keyId);
    invalidHeader((h) => ((h as Record<string, unknown>).kms = 'x'));
    invalidHeader((h) => (h.cipher!.tag = toBase64(randomBytes(16))));
  });

  it('names the members an object lacks, even when they sort after all it has', () => {
    expect(refusalOfSync(() => parseSealedModel(withHeader(file, (h) => delete h.model!.version)))).toEqual({
      code: 'SEALED_MODEL_INVALID',
      message: 'sealed model: model must have exactly the members name, sha256, size, version; it has name, sha256, size',
    });
    expect(refusalOfSync(() => parseSealedModel(withHeader(file, (h) => delete h.cipher!.iv)))).toEqual({
      code: 'SEALED_MODEL_INVALID',
      message: 'sealed model: cipher must have exactly the members alg, iv; it has alg',
    });
  });

  it('rejects a wrong algorithm or IV', () => {
    invalidHeader((h) => (h.cipher!.alg = 'A128GCM'));
    invalidHeader((h) => (h.cipher!.iv = toBase64(randomBytes(16))));
    invalidHeader((h) => (h.cipher!.iv = ''));
    invalidHeader((h) => (h.cipher!.iv = 'not base64!'));
    invalidHeader((h) => (h.cipher!.iv = '____________AAAA')); // base64url alphabet: not the canonical form
    invalidHeader((h) => (h.kms!.encryptedDataKey = toBase64(randomBytes(10)).replace(/=+$/, '')));
    invalidHeader((h) => (h.cipher!.iv = 12));
  });

  it('rejects bad model names, versions, digests and sizes', () => {
    invalidHeader((h) => (h.model!.name = '../x'));
    invalidHeader((h) => (h.model!.version = ''));
    invalidHeader((h) => (h.model!.sha256 = (h.model!.sha256 as string).toUpperCase()));
    invalidHeader((h) => (h.model!.sha256 = 'ab'));
    invalidHeader((h) => (h.model!.size = -1));
    invalidHeader((h) => (h.model!.size = 1.5));
    invalidHeader((h) => (h.model!.size = '64'));
    invalidHeader((h) => (h.model!.size = 65));
    invalidHeader((h) => (h.model!.size = 63));
  });

  it('rejects a bad key id, encrypted data key or encryption context', () => {
    invalidHeader((h) => (h.kms!.keyId = ''));
    invalidHeader((h) => (h.kms!.keyId = 'k'.repeat(2049)));
    invalidHeader((h) => (h.kms!.encryptedDataKey = ''));
    invalidHeader((h) => (h.kms!.encryptedDataKey = toBase64(randomBytes(6145))));
    invalidHeader((h) => (h.kms!.encryptionContext = modelEncryptionContext('other', '3')));
    invalidHeader((h) => (h.kms!.encryptionContext = modelEncryptionContext('ocr', '4'))); // the model's name, another version
    invalidHeader((h) => (h.kms!.encryptionContext = { ...modelEncryptionContext('ocr', '3'), extra: 'x' }));
    invalidHeader((h) => (h.kms!.encryptionContext = { 'teegate:model': h.model!.name }));
    invalidHeader((h) => (h.kms!.encryptionContext = [] as unknown as Record<string, string>));
  });

  it('rejects a truncated file and trailing bytes (the sizes must add up)', () => {
    invalid(file.subarray(0, file.length - 1));
    invalid(concatBytes(file, Uint8Array.of(0)));
  });

  it('never throws anything but SEALED_MODEL_INVALID on arbitrary bytes, with or without the magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, withMagic) => {
        const input = withMagic ? concatBytes(utf8('TGSM'), Uint8Array.of(1), bytes) : bytes;
        expect(codeOf(() => parseSealedModel(input))).toBe('SEALED_MODEL_INVALID');
      }),
      { numRuns: 500 },
    );
  });
});
