/**
 * Attestation documents arrive as raw CBOR, base64 (line breaks allowed) or hex; this tells them
 * apart. Raw CBOR of a COSE_Sign1 starts with 0x84 (array of 4) or 0xd2 (tag 18), bytes that
 * never begin a text encoding.
 */
import { fromBase64, fromHex } from './bytes';
import { TeegateError } from './errors';

export type DocumentEncoding = 'cbor' | 'base64' | 'hex';

export function decodeDocumentInput(input: Uint8Array): { bytes: Uint8Array; encoding: DocumentEncoding } {
  if (input.length === 0) throw new TeegateError('INPUT_ENCODING_INVALID', 'the document is empty');
  const first = input[0]!;
  if (first === 0x84 || first === 0xd2) return { bytes: input, encoding: 'cbor' };
  let text = '';
  for (const b of input) {
    if (b > 0x7e || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)) {
      throw new TeegateError('INPUT_ENCODING_INVALID', 'the document is neither a COSE_Sign1 (raw CBOR) nor base64 or hex text');
    }
    text += String.fromCharCode(b);
  }
  const compact = text.replace(/\s+/g, '');
  if (/^(0x)?[0-9a-fA-F]+$/.test(compact) && compact.length % 2 === 0) {
    return { bytes: fromHex(compact.replace(/^0x/, '')), encoding: 'hex' };
  }
  return { bytes: fromBase64(compact), encoding: 'base64' };
}
