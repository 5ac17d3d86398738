/**
 * isCanonicalBase64Url (attestation/bytes.ts), which the JWS and JWE readers apply to every part:
 * true exactly when the text is the one unpadded base64url encoding of some bytes. The oracle is
 * Node's own codec: the URL alphabet only, and decoding then encoding gives the text back.
 */
import fc from 'fast-check';
import { isCanonicalBase64Url } from '../../attestation/bytes';

const oracle = (text: string): boolean => /^[A-Za-z0-9_-]*$/.test(text) && Buffer.from(text, 'base64url').toString('base64url') === text;

it('agrees with decode-then-encode on strings of the URL alphabet and its neighbours', () => {
  const chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n!.');
  fc.assert(
    fc.property(fc.array(chars, { maxLength: 12 }), (list) => {
      const text = list.join('');
      expect(isCanonicalBase64Url(text)).toBe(oracle(text));
    }),
    { seed: 20_261_125, numRuns: 20_000 },
  );
});

it('accepts the encoding of any bytes, and refuses it with one more trailing bit set', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), (bytes) => {
      const text = Buffer.from(bytes).toString('base64url');
      expect(isCanonicalBase64Url(text)).toBe(true);
      if (text.length % 4 !== 0) {
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const bumped = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) + 1];
        expect(isCanonicalBase64Url(bumped)).toBe(false);
      }
    }),
    { seed: 20_261_125, numRuns: 2_000 },
  );
});
