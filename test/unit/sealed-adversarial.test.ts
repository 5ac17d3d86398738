/**
 * Adversarial review of sealed inference (enclave/sealed-channel.ts, attestation/sealed-request.ts)
 * and receipt verification (attestation/receipt.ts, enclave/receipt-signer.ts): JWE form and
 * header, the client's response key, replay and freshness, the client's side of the sealed answer,
 * the receipt's JWS header and claims, and the bindings verifyReceipt checks. Every refusal is a
 * TeegateError with a specific code, never a crash.
 *
 * JWEs and JWSs that jose refuses to produce (a `zip` or `crit` header, duplicate header members,
 * a 16-byte IV, a detached-payload JWS made attached) are built by hand below with node:crypto
 * (RFC 7518 ECDH-ES+A256KW: Concat KDF, AES key wrap; A256GCM with the protected header as AAD).
 */
import { CompactEncrypt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import fc from 'fast-check';
import {
  createCipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  KeyObject,
  randomBytes as nodeRandomBytes,
  randomUUID,
  sign as nodeSign,
  type JsonWebKey,
} from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { randomBytes, toHex } from '../../attestation/bytes';
import { isTeegateError } from '../../attestation/errors';
import type { EnclaveManifest } from '../../attestation/manifest';
import { RECEIPT_TYP, verifyReceipt, verifyReceiptReport, type ReceiptEvidence } from '../../attestation/receipt';
import { sealRequest } from '../../attestation/sealed-request';
import type { InferTensor } from '../../attestation/tensors';
import { receiptDigest } from '../../enclave/enclave-service';
import { generateEnclaveKeys, type EnclaveKeys } from '../../enclave/keys';
import { ReceiptSigner } from '../../enclave/receipt-signer';
import { SealedChannel } from '../../enclave/sealed-channel';
import { refusalOf } from '../support/error-code';
import { enclaveManifest } from '../support/manifest';

const NOW = 1_764_000_000;
const ALG = 'ECDH-ES+A256KW';
const ENC = 'A256GCM';

let keys: EnclaveKeys;
let sealPublic: KeyObject;
let responseKey: JWK;

beforeAll(async () => {
  keys = await generateEnclaveKeys();
  const { kty, crv, x, y } = keys.seal.publicJwk;
  sealPublic = createPublicKey({ key: { kty, crv, x, y }, format: 'jwk' });
  responseKey = await exportJWK((await generateKeyPair(ALG, { crv: 'P-256', extractable: true })).publicKey);
});

const b64u = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function channel(maxAgeSeconds = 300, now: () => number = () => NOW): SealedChannel {
  return new SealedChannel(keys.seal.privateKey, keys.seal.publicJwk.kid, maxAgeSeconds, now);
}

/** A well-formed sealed request body; `extra` changes or adds members. */
const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ id: randomUUID(), iat: NOW, request: { inputs: [] }, response_key: responseKey, ...extra });

/** A JWE made by jose (the client's way) to the enclave's seal key. */
async function joseJwe(plaintext: Record<string, unknown> | string, header: Record<string, unknown> = {}): Promise<string> {
  const { kty, crv, x, y } = keys.seal.publicJwk;
  const bytes = utf8(typeof plaintext === 'string' ? plaintext : JSON.stringify(plaintext));
  return new CompactEncrypt(bytes).setProtectedHeader({ alg: ALG, enc: ENC, kid: keys.seal.publicJwk.kid, ...header }).encrypt(await importJWK({ kty, crv, x, y }, ALG));
}

/**
 * A JWE (ECDH-ES+A256KW, A256GCM) built by hand: `header` gets the ephemeral public key and returns
 * the protected header's exact text, which can say anything (zip, crit, duplicate members...).
 * `ivBytes` other than 12 makes a GCM IV of that size.
 */
function handJwe(header: (epk: JsonWebKey) => string, plaintext: Uint8Array, options: { ivBytes?: number; recipient?: KeyObject } = {}): string {
  const recipient = options.recipient ?? sealPublic;
  const eph = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const epkFull = eph.publicKey.export({ format: 'jwk' });
  const epk: JsonWebKey = { kty: epkFull.kty, crv: epkFull.crv, x: epkFull.x, y: epkFull.y };
  const z = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient });
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  // RFC 7518 4.6.2: Concat KDF, one SHA-256 round for a 256-bit key.
  const otherInfo = Buffer.concat([u32(ALG.length), Buffer.from(ALG), u32(0), u32(0), u32(256)]);
  const kek = createHash('sha256').update(u32(1)).update(z).update(otherInfo).digest();
  const cek = nodeRandomBytes(32);
  const wrap = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  const encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
  const protectedB64 = b64u(header(epk));
  const iv = nodeRandomBytes(options.ivBytes ?? 12);
  const gcm = createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(protectedB64, 'ascii'));
  const ciphertext = Buffer.concat([gcm.update(plaintext), gcm.final()]);
  return [protectedB64, b64u(encryptedKey), b64u(iv), b64u(ciphertext), b64u(gcm.getAuthTag())].join('.');
}

/** The usual protected header with the epk, as JSON text, with `extra` members after it. */
const usualHeader = (extra: Record<string, unknown> = {}) => (epk: JsonWebKey): string => JSON.stringify({ alg: ALG, enc: ENC, kid: keys.seal.publicJwk.kid, epk, ...extra });

/** A JWE whose protected header is `header` and whose other four parts are junk (refused before any decryption). */
const headerOnly = (header: string): string => `${b64u(header)}.${b64u(nodeRandomBytes(40))}.${b64u(nodeRandomBytes(12))}.${b64u(nodeRandomBytes(16))}.${b64u(nodeRandomBytes(16))}`;

const sealedOk = async (jwe: string) => expect(channel().open(jwe)).resolves.toMatchObject({ request: { inputs: [] } });

describe('the hand-built fixtures are faithful', () => {
  it('a hand-built JWE with the usual header opens, like a jose one', async () => {
    const b = body();
    await expect(channel().open(handJwe(usualHeader(), utf8(JSON.stringify(b))))).resolves.toMatchObject({ id: b.id });
    await sealedOk(await joseJwe(body()));
  });
});

describe('JWE algorithms: only ECDH-ES+A256KW with A256GCM, refused before any key agreement (JWE_INVALID)', () => {
  const epk = { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' };
  const cases: [string, Record<string, unknown>][] = [
    ['AES-128 key wrap', { alg: 'ECDH-ES+A128KW', enc: ENC }],
    ['RSA-OAEP-256', { alg: 'RSA-OAEP-256', enc: ENC }],
    ['dir', { alg: 'dir', enc: ENC }],
    ['A256GCMKW', { alg: 'A256GCMKW', enc: ENC }],
    ['alg in lower case', { alg: ALG.toLowerCase(), enc: ENC }],
    ['alg as an array', { alg: [ALG], enc: ENC }],
    ['no alg', { enc: ENC }],
    ['A128GCM content encryption', { alg: ALG, enc: 'A128GCM' }],
    ['A256GCM in lower case', { alg: ALG, enc: 'a256gcm' }],
    ['no enc', { alg: ALG }],
  ];
  it.each(cases)('%s', async (_what, header) => {
    expect(await refusalOf(() => channel().open(headerOnly(JSON.stringify({ ...header, epk }))))).toEqual({ code: 'JWE_INVALID', message: `JWE must use alg ${ALG} and enc ${ENC}` });
  });

  it('PBES2 with 2^31 iterations: refused by its header members, without running them', async () => {
    const header = { alg: 'PBES2-HS512+A256KW', enc: ENC, p2s: 'AAAAAAAAAAAAAAAAAAAAAA', p2c: 2 ** 31 };
    expect(await refusalOf(() => channel().open(headerOnly(JSON.stringify(header))))).toEqual({ code: 'JWE_INVALID', message: expect.stringContaining('it has "p2s", "p2c"') });
  });
});

describe('JWE header members jose understands and the enclave must not honour', () => {
  it('refuses zip (a DEFLATE bomb would otherwise be inflated): JWE_INVALID', async () => {
    const plaintext = deflateRawSync(Buffer.from(JSON.stringify(body())));
    // Refused by the header check, before any decryption (not by jose's own refusal after the key agreement).
    expect(await refusalOf(() => channel().open(handJwe(usualHeader({ zip: 'DEF' }), plaintext)))).toEqual({ code: 'JWE_INVALID', message: 'not a sealed request JWE: protected header may have only alg, enc, kid, epk; it has "zip"' });
  });

  it.each([
    ['an unknown critical member', { crit: ['exp'], exp: NOW }],
    ['an empty crit', { crit: [] }],
    ['crit naming b64 (a JWS member)', { crit: ['b64'], b64: false }],
    ['crit that is not an array', { crit: 'exp', exp: NOW }],
  ])('refuses %s: JWE_INVALID', async (_what, extra) => {
    expect(await refusalOf(() => channel().open(handJwe(usualHeader(extra), utf8(JSON.stringify(body())))))).toEqual({ code: 'JWE_INVALID', message: expect.stringContaining('protected header may have only alg, enc, kid, epk; it has "crit"') });
  });

  it.each(['cty', 'typ'])('refuses a %s member jose would pass through: JWE_INVALID', async (member) => {
    expect(await refusalOf(() => channel().open(handJwe(usualHeader({ [member]: 'JWT' }), utf8(JSON.stringify(body())))))).toEqual({ code: 'JWE_INVALID', message: `not a sealed request JWE: protected header may have only alg, enc, kid, epk; it has "${member}"` });
  });

  it('a duplicate member: the lexically last value is the one checked, the same one jose decrypts with (no parser differential)', async () => {
    const kid = keys.seal.publicJwk.kid;
    const lastAlgBad = (epk: JsonWebKey) => `{"alg":"${ALG}","alg":"dir","enc":"${ENC}","kid":"${kid}","epk":${JSON.stringify(epk)}}`;
    expect(await refusalOf(() => channel().open(handJwe(lastAlgBad, utf8(JSON.stringify(body())))))).toEqual({ code: 'JWE_INVALID', message: `JWE must use alg ${ALG} and enc ${ENC}` });
    const lastKidForeign = (epk: JsonWebKey) => `{"alg":"${ALG}","enc":"${ENC}","kid":"${kid}","kid":"another-enclave","epk":${JSON.stringify(epk)}}`;
    expect((await refusalOf(() => channel().open(handJwe(lastKidForeign, utf8(JSON.stringify(body()))))))).toMatchObject({ code: 'JWE_KEY_MISMATCH' });
  });

  it.each([
    ['null', 'null'],
    ['an array', '[]'],
    ['a string', '"ECDH-ES+A256KW"'],
    ['not JSON', '{alg:ECDH-ES+A256KW}'],
    ['not UTF-8', '\u00ff\u00fe'],
  ])('refuses a protected header that is %s: JWE_INVALID', async (_what, header) => {
    const jwe = header === '\u00ff\u00fe' ? `${b64u(Uint8Array.of(0xff, 0xfe))}.a.b.c.d` : headerOnly(header);
    expect((await refusalOf(() => channel().open(jwe))).code).toBe('JWE_INVALID');
  });

  // The protected header is read before anything is authenticated: only alg, enc, kid and epk, and
  // at most 1 KiB of base64url, checked before it is decoded (enclave/sealed-channel.ts, sealedHeader).
  // Before, any member passed, and a 16 MB header of `[{},{},...]` cost the enclave about 2.5 s
  // and 680 MB before the refusal.
  it.each([
    ['an unknown member', { x: 1 }],
    ['a member of 1 MiB', { x: 'a'.repeat(1 << 20) }],
    ['1,000 nested arrays', { x: JSON.parse(`${'['.repeat(1000)}${']'.repeat(1000)}`) as unknown }],
  ])('refuses a protected header with %s: JWE_INVALID', async (_what, extra) => {
    expect((await refusalOf(() => channel().open(handJwe(usualHeader(extra), utf8(JSON.stringify(body())))))).code).toBe('JWE_INVALID');
  });
});

describe('the JWE ephemeral key (epk): invalid-curve and wrong-type keys are refused, never used (JWE_INVALID)', () => {
  const onCurve = () => {
    const { x, y } = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    return { x: x!, y: y! };
  };
  const cases: [string, () => unknown][] = [
    ['a point off the curve (y = x)', () => ({ kty: 'EC', crv: 'P-256', x: onCurve().x, y: onCurve().x })],
    ['a point off the curve (y + 1)', () => {
      const p = onCurve();
      const y = Buffer.from(p.y, 'base64url');
      y[31] = (y[31]! + 1) & 0xff;
      return { kty: 'EC', crv: 'P-256', x: p.x, y: b64u(y) };
    }],
    ['the all-zero point', () => ({ kty: 'EC', crv: 'P-256', x: b64u(new Uint8Array(32)), y: b64u(new Uint8Array(32)) })],
    ['a P-384 key', () => {
      const { kty, crv, x, y } = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
      return { kty, crv, x, y };
    }],
    ['a P-256 point labelled P-384', () => ({ kty: 'EC', crv: 'P-384', ...onCurve() })],
    ['an X25519 key', () => {
      const { kty, crv, x } = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
      return { kty, crv, x };
    }],
    ['a symmetric key', () => ({ kty: 'oct', k: b64u(new Uint8Array(32)) })],
    ['an RSA key', () => {
      const { kty, n, e } = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
      return { kty, n, e };
    }],
    ['a string', () => 'epk'],
    ['no epk', () => undefined],
  ];
  it.each(cases)('%s', async (_what, epk) => {
    const value = epk();
    const header = JSON.stringify({ alg: ALG, enc: ENC, kid: keys.seal.publicJwk.kid, ...(value !== undefined ? { epk: value } : {}) });
    expect((await refusalOf(() => channel().open(headerOnly(header)))).code).toBe('JWE_INVALID');
  });

  it('an epk that is a private key (d included) is at worst used as its public point: the JWE still has to decrypt', async () => {
    const header = (epk: JsonWebKey) => JSON.stringify({ alg: ALG, enc: ENC, kid: keys.seal.publicJwk.kid, epk: { ...epk, d: b64u(nodeRandomBytes(32)) } });
    // The d does not match the point: whatever jose derives from it, GCM refuses or the point is used as sent.
    const outcome = await channel().open(handJwe(header, utf8(JSON.stringify(body())))).then(() => 'opened', (err: unknown) => (isTeegateError(err) ? err.code : 'crash'));
    expect(['opened', 'JWE_INVALID']).toContain(outcome);
  });
});

describe('JWE serialization: compact only, five parts', () => {
  it.each([
    ['the JSON (flattened) serialization', async () => {
      const [p, k, iv, ct, tag] = (await joseJwe(body())).split('.');
      return JSON.stringify({ protected: p, encrypted_key: k, iv, ciphertext: ct, tag });
    }],
    ['a sixth part', async () => `${await joseJwe(body())}.`],
    ['an empty part in the middle', async () => (await joseJwe(body())).replace('.', '..')],
    ['three parts (JWS-shaped) with the right header', async () => (await joseJwe(body())).split('.').slice(0, 3).join('.')],
    ['the empty string', async () => ''],
    ['no encrypted key', async () => (await joseJwe(body())).split('.').map((p, i) => (i === 1 ? '' : p)).join('.')],
    ['a leading space', async () => ` ${await joseJwe(body())}`],
  ])('refuses %s: JWE_INVALID', async (_what, make) => {
    const jwe = await make();
    expect((await refusalOf(() => channel().open(jwe))).code).toBe('JWE_INVALID');
  });

  it.each([
    ['a GCM tag cut to 12 bytes', (p: string[]) => [p[0], p[1], p[2], p[3], b64u(Buffer.from(p[4]!, 'base64url').subarray(0, 12))]],
    ['a GCM tag cut to 1 byte', (p: string[]) => [p[0], p[1], p[2], p[3], b64u(Buffer.from(p[4]!, 'base64url').subarray(0, 1))]],
    ['no tag', (p: string[]) => [p[0], p[1], p[2], p[3], '']],
    ['no IV', (p: string[]) => [p[0], p[1], '', p[3], p[4]]],
    ['the encrypted key cut by 8 bytes', (p: string[]) => [p[0], b64u(Buffer.from(p[1]!, 'base64url').subarray(8)), p[2], p[3], p[4]]],
  ])('refuses %s: JWE_INVALID', async (_what, edit) => {
    const jwe = edit((await joseJwe(body())).split('.')).join('.');
    expect((await refusalOf(() => channel().open(jwe))).code).toBe('JWE_INVALID');
  });

  it('refuses a GCM IV of 16 bytes (it would decrypt under a lax check): JWE_INVALID', async () => {
    expect((await refusalOf(() => channel().open(handJwe(usualHeader(), utf8(JSON.stringify(body())), { ivBytes: 16 }))))).toMatchObject({ code: 'JWE_INVALID' });
  });

  // Each part is unpadded base64url in its one encoding (RFC 7515 section 2): jose's own decoding
  // takes padding, the standard alphabet and skips stray characters, so one JWE had many encodings.
  it.each([
    ['"=" padding on the tag', (p: string[]) => [p[0], p[1], p[2], p[3], `${p[4]}==`]],
    ['a "!" inside the ciphertext', (p: string[]) => [p[0], p[1], p[2], `${p[3]!.slice(0, 4)}!${p[3]!.slice(4)}`, p[4]]],
    ['a newline inside the encrypted key', (p: string[]) => [p[0], `${p[1]!.slice(0, 8)}\n${p[1]!.slice(8)}`, p[2], p[3], p[4]]],
  ])('refuses a non-canonical base64url part: %s: JWE_INVALID', async (_what, edit) => {
    const jwe = edit((await joseJwe(body())).split('.')).join('.');
    expect((await refusalOf(() => channel().open(jwe))).code).toBe('JWE_INVALID');
  });

  it('never fails with anything but a typed error on mutated JWEs (fast-check, fixed seed)', async () => {
    const base = await joseJwe(body());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/!{}" \n';
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: base.length }), fc.integer({ min: 0, max: 2 }), fc.constantFrom(...alphabet)), { minLength: 1, maxLength: 6 }), async (edits) => {
        let jwe = base;
        for (const [at, kind, ch] of edits) {
          const i = Math.min(at, jwe.length);
          jwe = kind === 0 ? jwe.slice(0, i) + ch + jwe.slice(i + 1) : kind === 1 ? jwe.slice(0, i) + ch + jwe.slice(i) : jwe.slice(0, i) + jwe.slice(i + 1);
        }
        const outcome = await channel().open(jwe).then(() => 'opened', (err: unknown) => (isTeegateError(err) ? err.code : `not a TeegateError: ${String(err)}`));
        expect(['opened', 'JWE_INVALID', 'JWE_KEY_MISMATCH', 'JWE_EXPIRED', 'REQUEST_INVALID']).toContain(outcome);
      }),
      { seed: 20_251_124, numRuns: 300 },
    );
  });
});

describe('the response key inside the request', () => {
  const cases: [string, () => unknown, string][] = [
    ['an array', () => [responseKey], 'response_key must be a JWK object'],
    ['a string (a PEM, say)', () => '-----BEGIN PUBLIC KEY-----', 'response_key must be a JWK object'],
    ['null', () => null, 'response_key must be a JWK object'],
    ['a symmetric key', () => ({ kty: 'oct', k: b64u(new Uint8Array(32)) }), 'response_key must be a public EC P-256 JWK'],
    ['an X25519 key', () => ({ kty: 'OKP', crv: 'X25519', x: b64u(new Uint8Array(32)) }), 'response_key must be a public EC P-256 JWK'],
    ['a secp256k1 key', () => ({ ...responseKey, crv: 'secp256k1' }), 'response_key must be a public EC P-256 JWK'],
    ['kty in lower case', () => ({ ...responseKey, kty: 'ec' }), 'response_key must be a public EC P-256 JWK'],
    ['no y', () => ({ kty: 'EC', crv: 'P-256', x: responseKey.x }), 'response_key must be a public EC P-256 JWK'],
    ['x as a number', () => ({ ...responseKey, x: 12 }), 'response_key must be a public EC P-256 JWK'],
    ['d as null (still private material named)', () => ({ ...responseKey, d: null }), 'response_key must not contain a private key'],
    ['the all-zero point', () => ({ kty: 'EC', crv: 'P-256', x: b64u(new Uint8Array(32)), y: b64u(new Uint8Array(32)) }), 'response_key is not a P-256 public key'],
    ['a P-384 point labelled P-256', () => {
      const { x, y } = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
      return { kty: 'EC', crv: 'P-256', x, y };
    }, 'response_key x and y must be 32 bytes each'],
    ['a kid that is a number', () => ({ ...responseKey, kid: 7 }), 'response_key kid must be a string of 1..128 characters'],
    ['a kid of 129 characters (echoed in the answer\'s header)', () => ({ ...responseKey, kid: 'k'.repeat(129) }), 'response_key kid must be a string of 1..128 characters'],
  ];
  it.each(cases)('refuses %s: JWE_INVALID', async (_what, key, message) => {
    expect(await refusalOf(async () => channel().open(await joseJwe(body({ response_key: key() }))))).toEqual({ code: 'JWE_INVALID', message: expect.stringContaining(message) });
  });

  it('keeps only kty, crv, x, y and the kid: other members (key_ops, use, alg, ext) never reach the answer', async () => {
    const opened = await channel().open(await joseJwe(body({ response_key: { ...responseKey, key_ops: ['sign'], use: 'sig', alg: 'ES256', ext: true, kid: 'mine' } })));
    expect(opened.responseKey).toEqual({ kty: 'EC', crv: 'P-256', x: responseKey.x, y: responseKey.y, kid: 'mine' });
    const kidless = await channel().open(await joseJwe(body({ response_key: { ...responseKey, kid: undefined } })));
    expect(kidless.responseKey).toEqual({ kty: 'EC', crv: 'P-256', x: responseKey.x, y: responseKey.y });
  });

  it('names the response key\'s kid in the sealed answer\'s header, and no kid when the key has none', async () => {
    const named = await channel().open(await joseJwe(body({ response_key: { ...responseKey, kid: 'client-1' } })));
    expect(decodeProtectedHeader(await channel().seal('{}', named))).toEqual({ alg: ALG, enc: ENC, kid: 'client-1', epk: expect.objectContaining({ kty: 'EC', crv: 'P-256' }) });
    const kidless = await channel().open(await joseJwe(body()));
    expect(decodeProtectedHeader(await channel().seal('{}', kidless))).not.toHaveProperty('kid');
  });

  // x and y are 32 bytes each in canonical base64url (43 characters): Node's JWK import also takes a
  // 33-byte x with a leading zero and padded standard base64, which the request would keep and echo.
  it.each([
    ['x with a leading zero byte (33 bytes)', () => ({ ...responseKey, x: b64u(Buffer.concat([Buffer.alloc(1), Buffer.from(responseKey.x!, 'base64url')])) })],
    ['x in padded standard base64', () => ({ ...responseKey, x: Buffer.from(responseKey.x!, 'base64url').toString('base64') })],
  ])('refuses a response key with %s: JWE_INVALID', async (_what, key) => {
    expect((await refusalOf(async () => channel().open(await joseJwe(body({ response_key: key() }))))).code).toBe('JWE_INVALID');
  });
});

describe('sealed plaintext, freshness and replay', () => {
  it('refuses an iat of 1e400 (JSON.parse makes it Infinity): JWE_INVALID', async () => {
    const text = JSON.stringify(body({ iat: 0 })).replace('"iat":0', '"iat":1e400');
    expect(await refusalOf(async () => channel().open(await joseJwe(text)))).toEqual({ code: 'JWE_INVALID', message: 'iat must be a number (seconds)' });
  });

  it('takes the window\'s edges exactly: iat = now - 300 and now + 60 open, a millisecond beyond is JWE_EXPIRED', async () => {
    await expect(channel().open(await joseJwe(body({ iat: NOW - 300 })))).resolves.toBeDefined();
    await expect(channel().open(await joseJwe(body({ iat: NOW + 60 })))).resolves.toBeDefined();
    expect((await refusalOf(async () => channel().open(await joseJwe(body({ iat: NOW - 300.001 }))))).code).toBe('JWE_EXPIRED');
    expect((await refusalOf(async () => channel().open(await joseJwe(body({ iat: NOW + 60.001 }))))).code).toBe('JWE_EXPIRED');
  });

  it('an id of 128 characters opens, one of 129 is JWE_INVALID', async () => {
    await expect(channel().open(await joseJwe(body({ id: 'i'.repeat(128) })))).resolves.toBeDefined();
    expect((await refusalOf(async () => channel().open(await joseJwe(body({ id: 'i'.repeat(129) }))))).code).toBe('JWE_INVALID');
  });

  it('never opens one JWE twice while the clock moves forward, whatever the order of the iats (fast-check, fixed seed)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: -300, max: 60 }), fc.integer({ min: 0, max: 240 })), { minLength: 2, maxLength: 7 }), async (steps) => {
        let now = NOW;
        const ch = channel(300, () => now);
        const sent: string[] = [];
        for (const [iatOffset, advance] of steps) {
          const jwe = await joseJwe(body({ iat: now + iatOffset }));
          await expect(ch.open(jwe)).resolves.toBeDefined();
          sent.push(jwe);
          now += advance;
          for (const old of sent) expect(['JWE_REPLAYED', 'JWE_EXPIRED']).toContain((await refusalOf(() => ch.open(old))).code);
        }
      }),
      { seed: 4242, numRuns: 20 },
    );
  });

  // Ids older than the window are forgotten; a request with an iat below what was forgotten is
  // refused, so a clock that steps back after a purge cannot make a forgotten JWE fresh again.
  it('refuses a replay after the clock stepped back past a purge', async () => {
    let now = NOW;
    const ch = channel(300, () => now);
    const first = await joseJwe(body({ iat: NOW }));
    await ch.open(first);
    now = NOW + 400; // the next request purges the first id (its iat is out of the window)
    await ch.open(await joseJwe(body({ iat: now })));
    now = NOW + 100; // the clock steps back 300 s
    const outcome = await ch.open(first).then(() => 'opened a second time', (err: unknown) => (isTeegateError(err) ? err.code : 'not a TeegateError'));
    expect(['JWE_REPLAYED', 'JWE_EXPIRED']).toContain(outcome);
  });
});

describe('replay memory: an id is kept until its own iat is 60 s past the window', () => {
  const replayOf = (jwe: string, ch: SealedChannel) => refusalOf(() => ch.open(jwe));

  it('keeps an id whose iat was ahead of the clock for as long as that iat could look fresh: JWE_REPLAYED after the clock steps back', async () => {
    let now = NOW;
    const ch = channel(300, () => now);
    const ahead = await joseJwe(body({ iat: NOW + 60 }));
    await ch.open(ahead);
    now = NOW + 400; // 400 s after it arrived, but its iat is only 340 s old: not yet forgotten
    await ch.open(await joseJwe(body({ iat: now })));
    now = NOW + 100; // the clock steps back: its iat is inside the window again
    expect(await replayOf(ahead, ch)).toEqual({ code: 'JWE_REPLAYED', message: expect.stringContaining('was already processed') });
  });

  it('keeps an id whose iat is exactly 360 s old: JWE_REPLAYED after the clock steps back', async () => {
    let now = NOW;
    const ch = channel(300, () => now);
    const first = await joseJwe(body({ iat: NOW }));
    await ch.open(first);
    now = NOW + 360; // the purge edge: iat = now - 300 - 60 is kept
    await ch.open(await joseJwe(body({ iat: now })));
    now = NOW + 10;
    expect(await replayOf(first, ch)).toEqual({ code: 'JWE_REPLAYED', message: expect.stringContaining('was already processed') });
  });

  it('refuses no fresh request when the clock steps back by less than 60 s after a purge', async () => {
    let now = NOW;
    const ch = channel(300, () => now);
    await ch.open(await joseJwe(body({ iat: NOW })));
    now = NOW + 400; // purges the first id (its iat is more than 360 s old)
    await ch.open(await joseJwe(body({ iat: now })));
    now = NOW + 370; // the clock steps back 30 s; the window is now NOW + 70 .. NOW + 430
    const fresh = body({ iat: NOW + 80 });
    await expect(ch.open(await joseJwe(fresh))).resolves.toMatchObject({ id: fresh.id });
  });
});

describe('the client opens only answers sealed as the format says (attestation/sealed-request.ts)', () => {
  /** A client request, opened by the enclave's channel to learn the response key. */
  async function clientRequest() {
    const manifest = enclaveManifest(keys, []);
    const sealed = await sealRequest(manifest, { inputs: [] }, { iat: NOW });
    const opened = await channel().open(sealed.jwe);
    return { sealed, opened };
  }

  it.each([
    ['direct ECDH-ES', 'ECDH-ES', ENC],
    ['ECDH-ES+A128KW', 'ECDH-ES+A128KW', ENC],
    ['A128GCM content encryption', ALG, 'A128GCM'],
    ['A256CBC-HS512 content encryption', ALG, 'A256CBC-HS512'],
  ])('refuses an answer to the right response key but with %s: CLIENT_RESPONSE_INVALID', async (_what, alg, enc) => {
    const { sealed, opened } = await clientRequest();
    const { kty, crv, x, y } = opened.responseKey;
    const answer = await new CompactEncrypt(utf8('{"outputs":[]}')).setProtectedHeader({ alg, enc }).encrypt(await importJWK({ kty, crv, x, y }, alg));
    expect(await refusalOf(() => sealed.open(answer))).toEqual({ code: 'CLIENT_RESPONSE_INVALID', message: expect.stringContaining('does not decrypt') });
  });

  it('refuses the enclave\'s own answer with its GCM tag cut, or with a ciphertext byte changed: CLIENT_RESPONSE_INVALID', async () => {
    const { sealed, opened } = await clientRequest();
    const answer = await channel().seal('{"outputs":[]}', opened);
    await expect(sealed.open(answer)).resolves.toEqual({ outputs: [] }); // the honest answer opens
    const p = answer.split('.');
    const cut = [p[0], p[1], p[2], p[3], b64u(Buffer.from(p[4]!, 'base64url').subarray(0, 12))].join('.');
    expect((await refusalOf(() => sealed.open(cut))).code).toBe('CLIENT_RESPONSE_INVALID');
    const ct = Buffer.from(p[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    expect((await refusalOf(() => sealed.open([p[0], p[1], p[2], b64u(ct), p[4]].join('.')))).code).toBe('CLIENT_RESPONSE_INVALID');
  });

  it('refuses an answer that decrypts to something that is not JSON: CLIENT_RESPONSE_INVALID', async () => {
    const { sealed, opened } = await clientRequest();
    expect((await refusalOf(async () => sealed.open(await channel().seal('outputs=1', opened)))).code).toBe('CLIENT_RESPONSE_INVALID');
  });
});

/* ------------------------------------------------------------------------------------------------
 * Receipts
 * --------------------------------------------------------------------------------------------- */

const ATT = 'd'.repeat(96);
const MODEL = { name: 'affine', version: '1', sha256: 'a'.repeat(64) };
const SALT = randomBytes(32);
const INPUTS: InferTensor[] = [{ name: 'x', datatype: 'FP32', shape: [1], data: [2] }];
const OUTPUTS: InferTensor[] = [{ name: 'y', datatype: 'FP32', shape: [1], data: [3] }];
const NONCE = 'ab'.repeat(32);

describe('receipts', () => {
  let manifest: EnclaveManifest;
  let claims: Record<string, unknown>;
  let receiptKey: KeyObject;

  beforeAll(() => {
    manifest = enclaveManifest(keys, [MODEL]);
    receiptKey = KeyObject.from(keys.receipt.privateKey);
    claims = { iss: manifest.boot_id, iat: NOW, jti: randomUUID(), seq: 3, model: MODEL, input: receiptDigest(SALT, INPUTS), output: receiptDigest(SALT, OUTPUTS), nonce: NONCE, att: ATT, sealed: true };
  });

  const evidence = (receipt: string, extra: Partial<ReceiptEvidence> = {}): ReceiptEvidence => ({ receipt, attestation: { documentSha384: ATT }, manifest, ...extra });
  const fullEvidence = (receipt: string, extra: Partial<ReceiptEvidence> = {}): ReceiptEvidence =>
    evidence(receipt, { inputs: INPUTS, outputs: OUTPUTS, salt: toHex(SALT), nonce: NONCE, sealed: true, model: { name: 'affine', version: '1' }, ...extra });

  /** A compact JWS with this exact header text and payload bytes, ES256 (P1363) by `key` (default: the receipt key). */
  function handJws(headerText: string, payload: Uint8Array | string, key: KeyObject = receiptKey, attachedRaw = false): string {
    const h = b64u(headerText);
    const p = attachedRaw ? (payload as string) : b64u(payload);
    const sig = nodeSign('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' });
    return `${h}.${p}.${b64u(sig)}`;
  }
  const usualJwsHeader = (extra: Record<string, unknown> = {}) => JSON.stringify({ alg: 'ES256', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP, ...extra });
  const signedClaims = (c: Record<string, unknown> = claims, headerExtra: Record<string, unknown> = {}) => handJws(usualJwsHeader(headerExtra), JSON.stringify(c));

  /** The failed step of a report, and verifyReceipt's refusal: both, for one evidence. */
  async function refused(e: ReceiptEvidence): Promise<{ code: string; message: string; step: string | undefined }> {
    const r = await refusalOf(() => verifyReceipt(e));
    const report = await verifyReceiptReport(e);
    expect(report.valid).toBe(false);
    return { ...r, step: report.steps.find((s) => s.status === 'failed')?.step };
  }

  it('the hand-built receipt the cases below alter verifies with every step passed (the fixture is faithful)', async () => {
    const report = await verifyReceiptReport(fullEvidence(signedClaims()));
    expect(report.valid).toBe(true);
    expect(report.steps.map((s) => s.status)).toEqual(['passed', 'passed', 'passed', 'passed', 'passed', 'passed', 'passed', 'passed']);
  });

  it('ReceiptSigner\'s receipts have exactly the header {alg, kid, typ}, unpadded base64url parts, and verify', async () => {
    const signer = new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, manifest.boot_id, ATT);
    const { jws } = await signer.sign({ jti: randomUUID(), model: MODEL, input: receiptDigest(SALT, INPUTS), output: receiptDigest(SALT, OUTPUTS), nonce: NONCE, sealed: true });
    const parts = jws.split('.');
    expect(parts).toHaveLength(3);
    for (const part of parts) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))).toEqual({ alg: 'ES256', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP });
    expect(Buffer.from(parts[2]!, 'base64url')).toHaveLength(64);
    await expect(verifyReceipt(fullEvidence(jws))).resolves.toMatchObject({ seq: 0, sealed: true, nonce: NONCE });
  });

  describe('header: alg and typ (RECEIPT_INVALID at the signature step)', () => {
    it.each([
      ['HS256 keyed with the receipt key\'s x (algorithm confusion)', () => {
        const h = b64u(JSON.stringify({ alg: 'HS256', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP }));
        const p = b64u(JSON.stringify(claims));
        return `${h}.${p}.${b64u(createHmac('sha256', Buffer.from(keys.receipt.publicJwk.x, 'base64url')).update(`${h}.${p}`).digest())}`;
      }],
      ['ES384 by a P-384 key', () => handJws(JSON.stringify({ alg: 'ES384', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP }), JSON.stringify(claims), generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey)],
      ['alg "es256" in lower case', () => handJws(usualJwsHeader({ alg: 'es256' }), JSON.stringify(claims))],
      ['alg ES256K', () => handJws(usualJwsHeader({ alg: 'ES256K' }), JSON.stringify(claims))],
      ['no typ', () => handJws(JSON.stringify({ alg: 'ES256', kid: keys.receipt.publicJwk.kid }), JSON.stringify(claims))],
      ['typ in another case', () => signedClaims(claims, { typ: RECEIPT_TYP.toUpperCase() })],
      ['typ "JWT"', () => signedClaims(claims, { typ: 'JWT' })],
    ])('%s', async (_what, make) => {
      expect(await refused(fullEvidence(make()))).toEqual({ code: 'RECEIPT_INVALID', message: `receipt header must have alg ES256 and typ ${RECEIPT_TYP}`, step: 'signature' });
    });
  });

  describe('header: kid and signature (RECEIPT_SIGNATURE_INVALID at the signature step)', () => {
    it.each([
      ['no kid', () => handJws(JSON.stringify({ alg: 'ES256', typ: RECEIPT_TYP }), JSON.stringify(claims))],
      ['the seal key\'s kid', () => signedClaims(claims, { kid: keys.seal.publicJwk.kid })],
      ['a kid that is an object', () => signedClaims(claims, { kid: { kid: keys.receipt.publicJwk.kid } })],
      ['a valid ES256 signature by another key, under the attested kid', () => handJws(usualJwsHeader(), JSON.stringify(claims), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)],
      ['the right key\'s signature in DER instead of r||s', () => {
        const h = b64u(usualJwsHeader());
        const p = b64u(JSON.stringify(claims));
        return `${h}.${p}.${b64u(nodeSign('sha256', Buffer.from(`${h}.${p}`), { key: receiptKey, dsaEncoding: 'der' }))}`;
      }],
      ['an empty signature', () => `${signedClaims().split('.').slice(0, 2).join('.')}.`],
      ['a signature of 63 bytes', () => {
        const [h, p, s] = signedClaims().split('.');
        return `${h}.${p}.${b64u(Buffer.from(s!, 'base64url').subarray(1))}`;
      }],
      ['another payload under a valid signature', () => {
        const [h, , s] = signedClaims().split('.');
        return `${h}.${b64u(JSON.stringify({ ...claims, seq: 4 }))}.${s}`;
      }],
    ])('%s', async (_what, make) => {
      expect(await refused(fullEvidence(make()))).toMatchObject({ code: 'RECEIPT_SIGNATURE_INVALID', step: 'signature' });
    });
  });

  describe('serialization (RECEIPT_INVALID at the signature step)', () => {
    it.each([
      ['the JSON (flattened) serialization', () => {
        const [protectedHeader, payload, signature] = signedClaims().split('.');
        return JSON.stringify({ protected: protectedHeader, payload, signature });
      }],
      ['two parts', () => signedClaims().split('.').slice(0, 2).join('.')],
      ['four parts', () => `${signedClaims()}.x`],
      ['the empty string', () => ''],
      ['a number', () => 42 as unknown as string],
    ])('%s', async (_what, make) => {
      expect(await refused(evidence(make()))).toMatchObject({ code: 'RECEIPT_INVALID', step: 'signature' });
    });
  });

  // decodeProtectedHeader reads three or five parts: exactly three are required first, so a
  // JWE-shaped string is a form error, not a signature failure.
  it('a receipt with five parts (JWE-shaped) is not a compact JWS: RECEIPT_INVALID', async () => {
    expect(await refused(evidence(`${signedClaims()}.a.b`))).toMatchObject({ code: 'RECEIPT_INVALID', step: 'signature' });
  });

  // The receipt header is exactly {alg, kid, typ}: jose honours RFC 7797 `b64: false`, which made a
  // receipt whose middle part is raw JSON verify while the readers that do not verify
  // (unverifiedClaims, receiptIssuer) read it as nothing; jku, jwk and crit are refused too.
  it.each([
    ['b64: false with crit ["b64"], payload attached raw', () => handJws(usualJwsHeader({ b64: false, crit: ['b64'] }), JSON.stringify(claims), receiptKey, true)],
    ['a jku member', () => signedClaims(claims, { jku: 'https://attacker.example/jwks.json' })],
    ['an embedded jwk', () => signedClaims(claims, { jwk: { kty: 'EC', crv: 'P-256', x: keys.receipt.publicJwk.x, y: keys.receipt.publicJwk.y } })],
  ])('refuses a receipt header with %s: RECEIPT_INVALID', async (_what, make) => {
    expect(await refused(fullEvidence(make()))).toMatchObject({ code: 'RECEIPT_INVALID', step: 'signature' });
  });

  // An unknown critical member is a form error (RECEIPT_INVALID), not jose's crit failure inside
  // the signature step.
  it('refuses a receipt header with an unknown crit member as a form error: RECEIPT_INVALID', async () => {
    expect(await refused(fullEvidence(signedClaims(claims, { crit: ['exp'], exp: NOW })))).toMatchObject({ code: 'RECEIPT_INVALID', step: 'signature' });
  });

  // The signature part is canonical base64url too: the log keys receipts by their text, and a second
  // encoding of a logged receipt would verify as a "new" receipt.
  it.each([
    ['"=" padding on the signature', (r: string) => `${r}==`],
    ['a "!" inside the signature', (r: string) => `${r.slice(0, -4)}!${r.slice(-4)}`],
  ])('refuses a receipt with %s: RECEIPT_INVALID', async (_what, edit) => {
    expect(await refused(fullEvidence(edit(signedClaims())))).toMatchObject({ code: 'RECEIPT_INVALID', step: 'signature' });
  });

  describe('claims of the wrong form (RECEIPT_INVALID at the claims step)', () => {
    const cases: [string, (c: Record<string, unknown>) => void, string][] = [
      ['a negative seq', (c) => (c.seq = -1), 'seq must be a non-negative integer'],
      ['seq as a string', (c) => (c.seq = '3'), 'seq must be a non-negative integer'],
      ['no seq', (c) => delete c.seq, 'seq must be a non-negative integer'],
      ['a fractional iat', (c) => (c.iat = NOW + 0.5), 'iat must be a non-negative integer'],
      ['iat as a string', (c) => (c.iat = String(NOW)), 'iat must be a non-negative integer'],
      ['iat as an ISO date', (c) => (c.iat = new Date(NOW * 1000).toISOString()), 'iat must be a non-negative integer'],
      ['jti as a number', (c) => (c.jti = 7), 'jti must be a non-empty string'],
      ['iss of 129 characters', (c) => (c.iss = 'i'.repeat(129)), 'iss must be a non-empty string'],
      ['an output digest in upper case', (c) => (c.output = (c.output as string).toUpperCase()), 'input and output must be hex SHA-256 digests'],
      ['an input digest of 63 characters', (c) => (c.input = (c.input as string).slice(1)), 'input and output must be hex SHA-256 digests'],
      ['an output digest of 65 characters', (c) => (c.output = `${c.output as string}0`), 'input and output must be hex SHA-256 digests'],
      ['a model digest in upper case', (c) => (c.model = { ...MODEL, sha256: MODEL.sha256.toUpperCase() }), 'model must have name, version and a hex sha256'],
      ['a model digest of 63 characters', (c) => (c.model = { ...MODEL, sha256: MODEL.sha256.slice(1) }), 'model must have name, version and a hex sha256'],
      ['a numeric model version', (c) => (c.model = { ...MODEL, version: 1 }), 'model must have name, version and a hex sha256'],
      ['att in upper case', (c) => (c.att = ATT.toUpperCase()), 'att must be a hex SHA-384 digest'],
      ['att of 95 characters', (c) => (c.att = ATT.slice(1)), 'att must be a hex SHA-384 digest'],
      ['sealed as 1', (c) => (c.sealed = 1), 'sealed must be a boolean'],
      ['no sealed', (c) => delete c.sealed, 'sealed must be a boolean'],
      ['a nonce in upper case', (c) => (c.nonce = NONCE.toUpperCase()), 'nonce must be hex'],
      ['an empty nonce', (c) => (c.nonce = ''), 'nonce must be hex'],
      ['a null nonce', (c) => (c.nonce = null), 'nonce must be hex'],
      ['a nonce of 130 hex characters', (c) => (c.nonce = 'a'.repeat(130)), 'nonce must be hex'],
      ['a __proto__ claim', (c) => Object.defineProperty(c, '__proto__', { value: { sealed: true }, enumerable: true }), 'unknown claim "__proto__"'],
      ['a null model', (c) => (c.model = null), 'model must be an object'],
      ['a model that is an array', (c) => (c.model = [MODEL]), 'model must be an object'],
    ];
    it.each(cases)('%s', async (_what, edit, message) => {
      const c = structuredClone(claims);
      edit(c);
      expect(await refused(fullEvidence(signedClaims(c)))).toEqual({ code: 'RECEIPT_INVALID', message, step: 'claims' });
    });

    it('a payload that is not UTF-8', async () => {
      expect(await refused(fullEvidence(handJws(usualJwsHeader(), Uint8Array.of(0x7b, 0xff, 0x7d))))).toEqual({ code: 'RECEIPT_INVALID', message: 'receipt payload is not JSON', step: 'claims' });
    });
  });

  describe('bindings (RECEIPT_MISMATCH at the step that checks each)', () => {
    it.each([
      ['another boot id (iss)', { iss: randomUUID() }, {}, 'enclave'],
      ['another attestation document (att)', { att: 'e'.repeat(96) }, {}, 'enclave'],
      ['a model digest the manifest does not list', { model: { ...MODEL, sha256: 'f'.repeat(64) } }, {}, 'model'],
      ['the digest of other inputs', { input: receiptDigest(SALT, [{ name: 'x', datatype: 'FP32', shape: [1], data: [5] }]) }, {}, 'input'],
      ['no nonce, when the request had one', { nonce: undefined }, {}, 'nonce'],
      ['the nonce of another request', { nonce: 'cd'.repeat(32) }, {}, 'nonce'],
      ['sealed: false for a sealed request', { sealed: false }, {}, 'mode'],
      ['sealed: true for a plain request', {}, { sealed: false }, 'mode'],
      ['the right receipt, with another request\'s salt', {}, { salt: toHex(randomBytes(32)) }, 'input'],
    ] as [string, Record<string, unknown>, Partial<ReceiptEvidence>, string][])('%s', async (_what, claimEdit, evidenceEdit, step) => {
      const c = JSON.parse(JSON.stringify({ ...claims, ...claimEdit })) as Record<string, unknown>;
      expect(await refused(fullEvidence(signedClaims(c), evidenceEdit))).toMatchObject({ code: 'RECEIPT_MISMATCH', step });
    });

    it('a nonce given in upper case by the caller matches the receipt\'s lower-case one', async () => {
      await expect(verifyReceipt(fullEvidence(signedClaims(), { nonce: NONCE.toUpperCase() }))).resolves.toMatchObject({ nonce: NONCE });
    });
  });

  it('never throws for mutated receipts, and reports only RECEIPT_* codes (fast-check, fixed seed)', async () => {
    const base = signedClaims();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: base.length }), fc.constantFrom(...'AZaz09-_.=!{"')), { minLength: 1, maxLength: 4 }), async (edits) => {
        let r = base;
        for (const [at, ch] of edits) r = r.slice(0, at) + ch + r.slice(at + 1);
        const report = await verifyReceiptReport(fullEvidence(r));
        if (!report.valid) expect(['RECEIPT_INVALID', 'RECEIPT_SIGNATURE_INVALID', 'RECEIPT_MISMATCH']).toContain(report.error?.code);
      }),
      { seed: 77, numRuns: 300 },
    );
  });
});
