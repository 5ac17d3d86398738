/**
 * The enclave's side of sealed requests (enclave/sealed-channel.ts) on JWEs that decrypt but carry
 * a malformed request, or that are not the one algorithm pair: each refusal and its code. Wrong key,
 * tampering, replay and expiry over HTTP are in test/integration/enclave.test.ts.
 */
import { CompactEncrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { generateEnclaveKeys, type EnclaveKeys } from '../../enclave/keys';
import { SealedChannel } from '../../enclave/sealed-channel';
import { refusalOf } from '../support/error-code';

const NOW = 1_764_000_000;

let keys: EnclaveKeys;
let responseKey: JWK;

beforeAll(async () => {
  keys = await generateEnclaveKeys();
  const pair = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  responseKey = await exportJWK(pair.publicKey);
});

function channel(maxAgeSeconds = 300, now = () => NOW): SealedChannel {
  return new SealedChannel(keys.seal.privateKey, keys.seal.publicJwk.kid, maxAgeSeconds, now);
}

/** A JWE of `plaintext` to the enclave's seal key. */
async function sealed(plaintext: string | Uint8Array | Record<string, unknown>, header: { alg?: string; enc?: string } = {}): Promise<string> {
  const { kty, crv, x, y } = keys.seal.publicJwk;
  const alg = header.alg ?? 'ECDH-ES+A256KW';
  const key = await importJWK({ kty, crv, x, y }, alg);
  const bytes = plaintext instanceof Uint8Array ? plaintext : new TextEncoder().encode(typeof plaintext === 'string' ? plaintext : JSON.stringify(plaintext));
  return new CompactEncrypt(bytes).setProtectedHeader({ alg, enc: header.enc ?? 'A256GCM', kid: keys.seal.publicJwk.kid }).encrypt(key);
}

const request = (extra: Record<string, unknown> = {}) => ({ id: randomUUID(), iat: NOW, request: { inputs: [] }, response_key: responseKey, ...extra });

it('opens a well-formed sealed request (the cases below change one thing), with the model it is for if it names one', async () => {
  const body = request();
  const opened = { id: body.id, request: body.request, responseKey: { kty: 'EC', crv: 'P-256', x: responseKey.x, y: responseKey.y }, responseCryptoKey: expect.objectContaining({ type: 'public' }) };
  await expect(channel().open(await sealed(body))).resolves.toEqual(opened);
  const forModel = request({ model: { name: 'affine', version: '2' } });
  await expect(channel().open(await sealed(forModel))).resolves.toEqual({ ...opened, id: forModel.id, model: { name: 'affine', version: '2' } });
});

it('opens a request for a model named with 128 characters and versioned with 64, the longest allowed', async () => {
  const body = request({ model: { name: 'm'.repeat(128), version: 'v'.repeat(64) } });
  await expect(channel().open(await sealed(body))).resolves.toMatchObject({ id: body.id, model: { name: 'm'.repeat(128), version: 'v'.repeat(64) } });
});

/** The same 32 bytes spelled with non-zero padding bits in the last character: lenient decoders read them alike. */
function nonCanonical(coordinate: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(coordinate.slice(-1));
  return coordinate.slice(0, -1) + alphabet[last | 1];
}

/** A JWE-shaped string with this protected header and placeholder parts (refused before decryption). */
function headerJwe(header: Record<string, unknown>): string {
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.AA.AA.AA.AA`;
}

describe('refusals', () => {
  const cases: [string, () => Promise<string> | string, string, string][] = [
    ['a JWE over the size limit', () => 'a'.repeat(48 * 1024 * 1024), 'BODY_TOO_LARGE', 'sealed request too large'],
    ['five parts that are not a JWE', () => 'a.b.c.d.e', 'JWE_INVALID', 'not a sealed request JWE: a part is not unpadded base64url'],
    ['a protected header over 1 KiB', () => `${Buffer.from(JSON.stringify({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'k'.repeat(800) })).toString('base64url')}.AA.AA.AA.AA`, 'JWE_INVALID', 'protected header longer than 1024 characters'],
    ['an epk that is a string', async () => headerJwe({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk: 'AA' }), 'JWE_INVALID', 'the JWE header\'s epk must be a JWK object'],
    ['an epk with its private part', async () => headerJwe({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk: { ...responseKey, d: 'A'.repeat(43) } }), 'JWE_INVALID', 'the JWE header\'s epk may have only kty, crv, x, y'],
    ['direct ECDH-ES key agreement', () => sealed(request(), { alg: 'ECDH-ES' }), 'JWE_INVALID', 'JWE must use alg ECDH-ES+A256KW and enc A256GCM'],
    ['AES-CBC content encryption', () => sealed(request(), { enc: 'A256CBC-HS512' }), 'JWE_INVALID', 'JWE must use alg ECDH-ES+A256KW and enc A256GCM'],
    ['a plaintext that is not JSON', () => sealed('inputs=1'), 'JWE_INVALID', 'sealed plaintext is not JSON'],
    ['a plaintext that is not UTF-8', () => sealed(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d)), 'JWE_INVALID', 'sealed plaintext is not JSON'],
    ['a plaintext that is an array', () => sealed('[1]'), 'JWE_INVALID', 'sealed plaintext must be an object'],
    ['an id of 15 characters', () => sealed(request({ id: 'a'.repeat(15) })), 'JWE_INVALID', 'id must be a string of 16..128 characters'],
    ['a numeric id', () => sealed(request({ id: 1234567890123456 })), 'JWE_INVALID', 'id must be a string of 16..128 characters'],
    ['iat as a string', () => sealed(request({ iat: String(NOW) })), 'JWE_INVALID', 'iat must be a number (seconds)'],
    ['no response key', () => sealed(request({ response_key: undefined })), 'JWE_INVALID', 'response_key must be a JWK object'],
    ['an RSA response key', () => sealed(request({ response_key: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } })), 'JWE_INVALID', 'response_key must be a public EC P-256 JWK'],
    ['a P-384 response key', () => sealed(request({ response_key: { ...responseKey, crv: 'P-384' } })), 'JWE_INVALID', 'response_key must be a public EC P-256 JWK'],
    ['a response key off the curve (y = x)', () => sealed(request({ response_key: { ...responseKey, y: responseKey.x } })), 'JWE_INVALID', 'response_key is not a P-256 public key'],
    ['a response key with a 3-byte x', () => sealed(request({ response_key: { ...responseKey, x: 'AAAA' } })), 'JWE_INVALID', 'response_key x and y must be 32 bytes each in unpadded base64url'],
    ['a response key whose x is not base64url', () => sealed(request({ response_key: { ...responseKey, x: '!!!' } })), 'JWE_INVALID', 'response_key x and y must be 32 bytes each in unpadded base64url'],
    ['a response key with its private part', () => sealed(request({ response_key: { ...responseKey, d: 'A'.repeat(43) } })), 'JWE_INVALID', 'response_key must not contain a private key'],
    ['a model that is a string', () => sealed(request({ model: 'affine' })), 'JWE_INVALID', 'model must be an object {name, version?}'],
    ['a model with another member', () => sealed(request({ model: { name: 'affine', sha256: 'ab' } })), 'JWE_INVALID', 'model may have only name and version'],
    ['a model without a name', () => sealed(request({ model: { version: '1' } })), 'JWE_INVALID', 'model.name must be a string of 1..128 characters'],
    ['a model with a numeric version', () => sealed(request({ model: { name: 'affine', version: 1 } })), 'JWE_INVALID', 'model.version must be a string of 1..64 characters'],
    ['a model with an empty name', () => sealed(request({ model: { name: '' } })), 'JWE_INVALID', 'model.name must be a string of 1..128 characters'],
    ['a model name of 129 characters', () => sealed(request({ model: { name: 'm'.repeat(129) } })), 'JWE_INVALID', 'model.name must be a string of 1..128 characters'],
    ['a model with an empty version', () => sealed(request({ model: { name: 'affine', version: '' } })), 'JWE_INVALID', 'model.version must be a string of 1..64 characters'],
    ['a model version of 65 characters', () => sealed(request({ model: { name: 'affine', version: 'v'.repeat(65) } })), 'JWE_INVALID', 'model.version must be a string of 1..64 characters'],
    ['a response key with an empty kid', () => sealed(request({ response_key: { ...responseKey, kid: '' } })), 'JWE_INVALID', 'response_key kid must be a string of 1..128 characters'],
    // 43 characters carry 258 bits: the last character's two low bits must be zero (RFC 4648 3.5).
    ['a response key whose x has non-zero padding bits', () => sealed(request({ response_key: { ...responseKey, x: nonCanonical(responseKey.x!) } })), 'JWE_INVALID', 'response_key x and y must be 32 bytes each in unpadded base64url'],
    ['a sealed plaintext nested deeper than the budget', () => sealed(`{"id":"${'i'.repeat(16)}","iat":${NOW},"request":${'['.repeat(40)}${']'.repeat(40)}}`), 'REQUEST_INVALID', 'sealed plaintext nests deeper than 33 levels'],
    ['an iat older than the window', () => sealed(request({ iat: NOW - 301 })), 'JWE_EXPIRED', 'outside the 300 s window'],
    ['an iat more than 60 s ahead', () => sealed(request({ iat: NOW + 61 })), 'JWE_EXPIRED', 'outside the 300 s window'],
  ];
  it('names a foreign kid briefly, however deep it is nested: JWE_KEY_MISMATCH', async () => {
    // As deep as fits the header's 1 KiB (a deeper one is refused by its size before it is parsed).
    const header = `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","kid":${'['.repeat(340)}${']'.repeat(340)}}`;
    const jwe = `${Buffer.from(header).toString('base64url')}.AA.AA.AA.AA`;
    expect(await refusalOf(() => channel().open(jwe))).toEqual({ code: 'JWE_KEY_MISMATCH', message: `JWE is for key an array, this enclave's seal key is ${keys.seal.publicJwk.kid}` });
  });

  it.each(cases)('%s', async (_what, make, code, message) => {
    const jwe = await make();
    expect(await refusalOf(() => channel().open(jwe))).toEqual({ code, message: expect.stringContaining(message) });
  });
});

describe('the sealed plaintext\'s JSON budget: the inference request\'s, one level down, beside the response key and the model', () => {
  /** A sealed plaintext whose request holds `objects` objects (itself included) and nests `depth` levels below the plaintext. */
  function plaintext(objects: number, depth = 1, model?: { name: string }): string {
    const nested = depth > 1 ? `${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}` : '0';
    const padding = Array.from({ length: objects - 1 }, () => '{}').join(',');
    return `{"id":"${randomUUID()}","iat":${NOW},"request":{"inputs":[],"pad":[${padding}],"deep":${nested}},"response_key":${JSON.stringify(responseKey)}${model ? `,"model":${JSON.stringify(model)}` : ''}}`;
  }

  it('opens a plaintext whose request holds as many objects as a plain one may (4096), with or without a model; one more is REQUEST_INVALID', async () => {
    await expect(channel().open(await sealed(plaintext(4096)))).resolves.toMatchObject({ request: { inputs: [] } });
    await expect(channel().open(await sealed(plaintext(4096, 1, { name: 'affine' })))).resolves.toMatchObject({ request: { inputs: [] }, model: { name: 'affine' } });
    expect(await refusalOf(async () => channel().open(await sealed(plaintext(4097, 1, { name: 'affine' }))))).toEqual({ code: 'REQUEST_INVALID', message: 'sealed plaintext holds more than 4099 objects' });
  });

  it('opens a plaintext nested 33 levels deep; one more is REQUEST_INVALID', async () => {
    await expect(channel().open(await sealed(plaintext(1, 32)))).resolves.toMatchObject({ request: { inputs: [] } });
    expect(await refusalOf(async () => channel().open(await sealed(plaintext(1, 33))))).toEqual({ code: 'REQUEST_INVALID', message: 'sealed plaintext nests deeper than 33 levels' });
  });
});

describe('defaults', () => {
  it('uses a 300 s window on the system clock in seconds when not told otherwise', async () => {
    const ch = new SealedChannel(keys.seal.privateKey, keys.seal.publicJwk.kid);
    const nowSeconds = Date.now() / 1000;
    const fresh = request({ iat: nowSeconds - 290 });
    await expect(ch.open(await sealed(fresh))).resolves.toMatchObject({ id: fresh.id });
    expect(await refusalOf(async () => ch.open(await sealed(request({ iat: nowSeconds - 310 }))))).toEqual({ code: 'JWE_EXPIRED', message: expect.stringContaining('outside the 300 s window') });
  });
});

describe('replay window', () => {
  it('refuses a request id it saw within the window, and forgets ids only once their iat is out of it', async () => {
    let now = NOW;
    const ch = channel(300, () => now);
    const first = request();
    const jwe = await sealed(first);
    await ch.open(jwe);
    expect((await refusalOf(() => ch.open(jwe))).code).toBe('JWE_REPLAYED');
    // Another request with the same id and a later iat (re-encrypted: not the same bytes) is a replay too.
    expect((await refusalOf(async () => ch.open(await sealed({ ...first, iat: NOW + 30 }))))).toMatchObject({ code: 'JWE_REPLAYED' });
    // Past the window the first JWE is refused as expired; its id has been dropped from memory.
    now = NOW + 400;
    expect((await refusalOf(() => ch.open(jwe))).code).toBe('JWE_EXPIRED');
    const fresh = request({ iat: now });
    await ch.open(await sealed(fresh));
    expect((ch as unknown as { seen: Map<string, number> }).seen.has(first.id)).toBe(false);
    expect((ch as unknown as { seen: Map<string, number> }).seen.has(fresh.id)).toBe(true);
  });
});
