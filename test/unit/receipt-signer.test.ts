/**
 * The enclave's receipt signer assembles compact JWS itself (node's synchronous ECDSA, for speed):
 * jose, which verifiers use, must accept exactly what it produces and nothing altered.
 */
import { compactVerify, decodeProtectedHeader, importJWK } from 'jose';
import { RECEIPT_TYP, parseReceiptClaims } from '../../attestation/receipt';
import { generateEnclaveKeys } from '../../enclave/keys';
import { ReceiptSigner } from '../../enclave/receipt-signer';

const fields = {
  jti: '6f1c2a8e-0000-4000-8000-000000000000',
  model: { name: 'm', version: '1', sha256: 'a'.repeat(64) },
  input: 'b'.repeat(64),
  output: 'c'.repeat(64),
  sealed: false,
};

describe('ReceiptSigner', () => {
  it('produces ES256 compact JWS that jose verifies with the manifest key, numbered from 0 without gaps', async () => {
    const keys = await generateEnclaveKeys();
    const signer = new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, 'boot-1', 'd'.repeat(96));
    const publicKey = await importJWK({ ...keys.receipt.publicJwk }, 'ES256');
    for (let seq = 0; seq < 3; seq++) {
      const { jws, claims } = await signer.sign({ ...fields, nonce: 'ab' });
      expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: keys.receipt.publicJwk.kid, typ: RECEIPT_TYP });
      const { payload } = await compactVerify(jws, publicKey, { algorithms: ['ES256'] });
      const decoded = parseReceiptClaims(JSON.parse(new TextDecoder().decode(payload)));
      expect(decoded).toEqual(claims);
      expect(decoded.seq).toBe(seq);
      expect(decoded).toMatchObject({ iss: 'boot-1', att: 'd'.repeat(96), nonce: 'ab', sealed: false });
    }
    expect(signer.issued).toBe(3);
  });

  it('carries the caller\'s jti and the time of signing in whole seconds', async () => {
    const keys = await generateEnclaveKeys();
    const signer = new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, 'boot-1', 'd'.repeat(96));
    const before = Math.floor(Date.now() / 1000);
    const first = await signer.sign(fields);
    const second = await signer.sign({ ...fields, jti: '6f1c2a8e-0000-4000-8000-000000000001' });
    const after = Math.floor(Date.now() / 1000);
    expect(first.claims.jti).toBe(fields.jti);
    expect(second.claims.jti).toBe('6f1c2a8e-0000-4000-8000-000000000001');
    for (const { claims } of [first, second]) {
      expect(Number.isInteger(claims.iat)).toBe(true);
      expect(claims.iat).toBeGreaterThanOrEqual(before);
      expect(claims.iat).toBeLessThanOrEqual(after);
    }
  });

  it('signs nothing jose accepts once altered, or under another key', async () => {
    const keys = await generateEnclaveKeys();
    const other = await generateEnclaveKeys();
    const { jws } = await new ReceiptSigner(keys.receipt.privateKey, keys.receipt.publicJwk.kid, 'boot', 'd'.repeat(96)).sign(fields);
    const publicKey = await importJWK({ ...keys.receipt.publicJwk }, 'ES256');
    const [header, payload, signature] = jws.split('.') as [string, string, string];
    const flip = (part: string): string => (part[5] === 'A' ? `${part.slice(0, 5)}B${part.slice(6)}` : `${part.slice(0, 5)}A${part.slice(6)}`);
    for (const altered of [`${header}.${flip(payload)}.${signature}`, `${header}.${payload}.${flip(signature)}`, `${flip(header)}.${payload}.${signature}`]) {
      await expect(compactVerify(altered, publicKey, { algorithms: ['ES256'] })).rejects.toThrow();
    }
    await expect(compactVerify(jws, await importJWK({ ...other.receipt.publicJwk }, 'ES256'), { algorithms: ['ES256'] })).rejects.toThrow();
  });
});
