/**
 * Dev KMS credentials of the two principals of a dev stack, made once and kept under the data
 * folder (0600): the operator (creates the key, seals models, pins the key policy) and the enclave
 * (may only Decrypt, and only with an attested Recipient; see model-key.ts).
 */
import { randomBytes } from 'node:crypto';
import { readOrCreate } from '../../enclave/write-file-atomic';

export interface DevCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface DevCredentials {
  readonly operator: DevCredential;
  readonly enclave: DevCredential;
}

function credential(prefix: string): DevCredential {
  return { accessKeyId: `${prefix}${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url') };
}


export function loadOrCreateDevCredentials(file: string): Promise<DevCredentials> {
  return readOrCreate(file, {
    parse: (text) => JSON.parse(text) as DevCredentials,
    create: (): DevCredentials => ({ operator: credential('AKIDOPERATOR'), enclave: credential('AKIDENCLAVE') }),
    serialize: (created) => JSON.stringify(created, null, 2),
  });
}
