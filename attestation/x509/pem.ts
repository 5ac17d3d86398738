/** PEM <-> DER for certificates (RFC 7468). */
import { fromBase64, toBase64 } from '../bytes';
import { TeegateError } from '../errors';

const PEM_RE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block of a PEM text, as DER. */
export function pemToDerList(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(PEM_RE)) out.push(fromBase64(m[1]!, { allowWhitespace: true }));
  if (out.length === 0) throw new TeegateError('INPUT_ENCODING_INVALID', 'no PEM CERTIFICATE block found');
  return out;
}

export function derToPem(der: Uint8Array): string {
  const b64 = toBase64(der).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
