/**
 * Signs receipts (docs/enclave-api.md, "Receipt"): one per successful inference, numbered by a
 * per-boot counter `seq` from 0 without gaps. The counter is taken synchronously, so concurrent
 * inferences never share or skip a number.
 */
import { CompactSign } from 'jose';
import { utf8 } from '../attestation/bytes';
import { RECEIPT_TYP, type ReceiptClaims } from '../attestation/receipt';

export interface ReceiptFields {
  readonly jti: string;
  readonly model: ReceiptClaims['model'];
  readonly input: string;
  readonly output: string;
  readonly nonce?: string;
  readonly sealed: boolean;
}

export class ReceiptSigner {
  private nextSeq = 0;
  private readonly header: { alg: 'ES256'; kid: string; typ: string };

  constructor(
    private readonly key: CryptoKey,
    kid: string,
    private readonly bootId: string,
    private readonly attestationSha384: string,
  ) {
    this.header = { alg: 'ES256', kid, typ: RECEIPT_TYP };
  }

  /** Receipts issued so far in this boot. */
  get issued(): number {
    return this.nextSeq;
  }

  async sign(fields: ReceiptFields): Promise<{ jws: string; claims: ReceiptClaims }> {
    const claims: ReceiptClaims = {
      iss: this.bootId,
      iat: Math.floor(Date.now() / 1000),
      jti: fields.jti,
      seq: this.nextSeq++,
      model: fields.model,
      input: fields.input,
      output: fields.output,
      ...(fields.nonce !== undefined ? { nonce: fields.nonce } : {}),
      att: this.attestationSha384,
      sealed: fields.sealed,
    };
    const jws = await new CompactSign(utf8(JSON.stringify(claims))).setProtectedHeader(this.header).sign(this.key);
    return { jws, claims };
  }
}
