/**
 * The dev KMS driven by the REAL @aws-sdk/client-kms (endpoint override), over loopback.
 * Recipient tests: (1) the real Nitro verifier on real AWS evidence from shared/vectors/nitro
 * (see its README for origins) with a frozen clock; (2) the injected-verifier hook with a fresh
 * RSA key, to check CiphertextForRecipient end to end with the enclave's CMS decryptor.
 */
import { DevAttester } from '../../attestation/dev/dev-attester';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListAliasesCommand,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { decryptEnvelopedData } from '../../enclave/kms/cms-enveloped-data';
import { type DevKms, type VerifyRecipientDocument } from '../../infra/dev-kms/main';
import { STORE_FILE_NAME } from '../../infra/dev-kms/key-store';
import { nitroRecipientVerifier } from '../../infra/dev-kms/nitro-recipient-verifier';
import { sha256Hex, signRequest } from '../../infra/dev-kms/sigv4';
import { KMS_ACCOUNT, KMS_REGION, kmsTestServers, rejection } from '../support/dev-kms-harness';

const ACCESS_KEY = 'AKIDDEVKMSTEST';
const SECRET = 'dev-kms-test-secret/0123456789';
const ACCOUNT = KMS_ACCOUNT;
const REGION = KMS_REGION;
const USER_ARN = `arn:aws:iam::${ACCOUNT}:user/${ACCESS_KEY}`;
const VECTORS = join(__dirname, '../../../shared/vectors');

const { start, clientFor } = kmsTestServers(ACCESS_KEY, SECRET);

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('dev KMS with the AWS SDK: key operations', () => {
  let client: KMSClient;
  beforeAll(async () => ({ client } = await start()));

  it('CreateKey returns KeyMetadata shaped like AWS, and DescribeKey finds it by id, ARN and alias', async () => {
    const created = await client.send(new CreateKeyCommand({ Description: 'model key' }));
    const meta = created.KeyMetadata!;
    expect(meta.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(meta.Arn).toBe(`arn:aws:kms:${REGION}:${ACCOUNT}:key/${meta.KeyId}`);
    expect(meta).toMatchObject({ AWSAccountId: ACCOUNT, Description: 'model key', Enabled: true, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT', Origin: 'AWS_KMS', KeyManager: 'CUSTOMER', EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] });
    expect(meta.CreationDate).toBeInstanceOf(Date);
    expect(Math.abs(meta.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000);

    await client.send(new CreateAliasCommand({ AliasName: 'alias/teegate-models', TargetKeyId: meta.KeyId }));
    for (const keyId of [meta.KeyId!, meta.Arn!, 'alias/teegate-models', `arn:aws:kms:${REGION}:${ACCOUNT}:alias/teegate-models`]) {
      const described = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(described.KeyMetadata!.KeyId).toBe(meta.KeyId);
    }
    const aliases = await client.send(new ListAliasesCommand({ KeyId: meta.KeyId }));
    expect(aliases.Aliases).toEqual([{ AliasName: 'alias/teegate-models', AliasArn: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/teegate-models`, TargetKeyId: meta.KeyId }]);
    expect((await rejection(client.send(new CreateAliasCommand({ AliasName: 'alias/teegate-models', TargetKeyId: meta.KeyId })))).name).toBe('AlreadyExistsException');
  });

  it('returns NotFoundException (HTTP 404) for unknown keys and aliases', async () => {
    const err = await rejection(client.send(new DescribeKeyCommand({ KeyId: '00000000-0000-0000-0000-000000000000' })));
    expect(err.name).toBe('NotFoundException');
    expect(err.$metadata?.httpStatusCode).toBe(404);
    expect(err.$metadata?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await rejection(client.send(new DescribeKeyCommand({ KeyId: 'alias/none' })))).name).toBe('NotFoundException');
    expect((await rejection(client.send(new DescribeKeyCommand({ KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000' })))).name).toBe('NotFoundException');
  });

  it('rejects what the dev KMS does not do with UnsupportedOperationException, and bad members with ValidationException', async () => {
    expect((await rejection(client.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })))).name).toBe('UnsupportedOperationException');
    expect((await rejection(client.send(new CreateKeyCommand({ Description: 'x'.repeat(8193) })))).name).toBe('ValidationException');
    expect((await rejection(client.send(new DescribeKeyCommand({ KeyId: '' })))).name).toBe('ValidationException');
  });

  it('DisableKey makes cryptographic operations fail with DisabledException; EnableKey restores them', async () => {
    const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') }))).CiphertextBlob!;
    await client.send(new DisableKeyCommand({ KeyId: keyId }));
    expect((await client.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({ Enabled: false, KeyState: 'Disabled' });
    const err = await rejection(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') })));
    expect(err.name).toBe('DisabledException');
    expect(err.$metadata?.httpStatusCode).toBe(409);
    expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob })))).name).toBe('DisabledException');
    await client.send(new EnableKeyCommand({ KeyId: keyId }));
    expect(new TextDecoder().decode((await client.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext)).toBe('x');
  });

  it('stores the key policy, denies what it does not allow, and rejects malformed or lock-out policies', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'admin', Effect: 'Allow', Principal: { AWS: USER_ARN }, Action: ['kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:Encrypt'], Resource: '*' }],
    });
    const keyId = (await client.send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!.KeyId!;
    expect((await client.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }))).Policy).toBe(policy);
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('secret') }))).CiphertextBlob!;
    const denied = await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.message).toBe(`User: ${USER_ARN} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId} because no resource-based policy allows the kms:Decrypt action`);
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })))).name).toBe('AccessDeniedException');

    expect((await rejection(client.send(new CreateKeyCommand({ Policy: '{"Statement": []}' })))).name).toBe('MalformedPolicyDocumentException');
    const lockout = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: USER_ARN }, Action: 'kms:Encrypt', Resource: '*' }] });
    expect((await rejection(client.send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: lockout })))).name).toBe('MalformedPolicyDocumentException');
    await client.send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: lockout, BypassPolicyLockoutSafetyCheck: true }));
    expect((await rejection(client.send(new GetKeyPolicyCommand({ KeyId: keyId })))).name).toBe('AccessDeniedException');
  });
});

describe('dev KMS with the AWS SDK: cryptographic operations', () => {
  let client: KMSClient;
  let keyId: string;
  beforeAll(async () => {
    ({ client } = await start());
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });
  const context = { model: 'ocr', version: '3' };

  it('Encrypt then Decrypt returns the plaintext and the key ARN, with and without KeyId', async () => {
    const enc = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('hello enclave'), EncryptionContext: context }));
    expect(enc.KeyId).toBe(`arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`);
    expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    for (const withKey of [{}, { KeyId: keyId }]) {
      const dec = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { version: '3', model: 'ocr' }, ...withKey }));
      expect(new TextDecoder().decode(dec.Plaintext)).toBe('hello enclave');
      expect(dec.KeyId).toBe(enc.KeyId);
      expect(dec.CiphertextForRecipient).toBeUndefined();
    }
  });

  it('a wrong, missing or extra encryption context is InvalidCiphertextException', async () => {
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionContext: context }))).CiphertextBlob!;
    for (const ctx of [{ model: 'ocr', version: '4' }, undefined, { ...context, extra: '1' }, { model: 'OCR', version: '3' }]) {
      const err = await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, ...(ctx ? { EncryptionContext: ctx } : {}) })));
      expect(err.name).toBe('InvalidCiphertextException');
      expect(err.$metadata?.httpStatusCode).toBe(400);
    }
  });

  it('binds a context key named __proto__ like any other', async () => {
    const ctx = JSON.parse('{"__proto__":"tenant-A"}') as Record<string, string>; // an own member, as the SDK sends it
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionContext: ctx }))).CiphertextBlob!;
    for (const other of [undefined, JSON.parse('{"__proto__":"tenant-B"}') as Record<string, string>]) {
      expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, ...(other ? { EncryptionContext: other } : {}) })))).name).toBe('InvalidCiphertextException');
    }
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }));
    expect(new TextDecoder().decode(dec.Plaintext)).toBe('p');
  });

  it('refuses context keys that differ only in case (ValidationException) and text that is not well-formed Unicode (SerializationException)', async () => {
    const cased = await rejection(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionContext: { purpose: 'secret', PURPOSE: 'public' } })));
    expect([cased.name, cased.message]).toEqual(['ValidationException', expect.stringContaining('Map keys must differ in more than letter case')]);
    for (const ctx of [{ a: '\ud800' }, { '\udfff': 'a' }] as Record<string, string>[]) {
      expect((await rejection(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionContext: ctx })))).name).toBe('SerializationException');
    }
  });

  it('a tampered or foreign ciphertext is InvalidCiphertextException', async () => {
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('tamper me') }))).CiphertextBlob!;
    for (const index of [0, 5, 2 + 36 + 3, blob.length - 20, blob.length - 1]) {
      const bad = Uint8Array.from(blob);
      bad[index]! ^= 0x01;
      expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: bad })))).name).toBe('InvalidCiphertextException');
    }
    expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob.subarray(0, 40) })))).name).toBe('InvalidCiphertextException');
    expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: utf8('not a kms blob at all, no') })))).name).toBe('InvalidCiphertextException');
  });

  it('Decrypt with another KeyId is IncorrectKeyException', async () => {
    const other = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p') }))).CiphertextBlob!;
    expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: other })))).name).toBe('IncorrectKeyException');
  });

  it('GenerateDataKey returns a data key and its ciphertext, which Decrypt opens', async () => {
    const aes = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    expect(aes.Plaintext).toHaveLength(32);
    expect(aes.KeyId).toBe(`arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`);
    const back = await client.send(new DecryptCommand({ CiphertextBlob: aes.CiphertextBlob, EncryptionContext: context }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(aes.Plaintext!))).toBe(true);
    expect((await client.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 64 }))).Plaintext).toHaveLength(64);
    expect((await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_128' }))).Plaintext).toHaveLength(16);
    const without = await client.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    expect((without as { Plaintext?: unknown }).Plaintext).toBeUndefined();
    expect((await client.send(new DecryptCommand({ CiphertextBlob: without.CiphertextBlob }))).Plaintext).toHaveLength(32);
  });

  it('GenerateDataKey needs exactly one of KeySpec and NumberOfBytes, in range', async () => {
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: keyId })))).name).toBe('ValidationException');
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', NumberOfBytes: 32 })))).name).toBe('ValidationException');
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 1025 })))).name).toBe('ValidationException');
  });

  it('GenerateRandom returns 1 to 1024 random bytes', async () => {
    const a = await client.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    const b = await client.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    expect(a.Plaintext).toHaveLength(1024);
    expect(Buffer.from(a.Plaintext!).equals(Buffer.from(b.Plaintext!))).toBe(false);
    expect((await client.send(new GenerateRandomCommand({ NumberOfBytes: 1 }))).Plaintext).toHaveLength(1);
    for (const n of [0, 1025]) expect((await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: n })))).name).toBe('ValidationException');
    expect((await rejection(client.send(new GenerateRandomCommand({})))).name).toBe('ValidationException');
  });

  it('Encrypt bounds the plaintext at 4096 bytes and DryRun answers DryRunOperationException', async () => {
    expect((await rejection(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array(4097) })))).name).toBe('ValidationException');
    const dry = await rejection(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x'), DryRun: true })));
    expect(dry.name).toBe('DryRunOperationException');
    expect(dry.$metadata?.httpStatusCode).toBe(412);
  });

  it('Recipient without a configured attestation root is UnsupportedOperationException', async () => {
    const err = await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: { AttestationDocument: new Uint8Array(10), KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } })));
    expect(err.name).toBe('UnsupportedOperationException');
  });
});

describe('dev KMS: SigV4 through the SDK and raw HTTP', () => {
  let kms: DevKms;
  beforeAll(async () => ({ kms } = await start({ maxBodyBytes: 8192 })));

  it('a request signed with the wrong secret is InvalidSignatureException', async () => {
    const err = await rejection(clientFor(kms.url, 'wrong-secret').send(new GenerateRandomCommand({ NumberOfBytes: 8 })));
    expect(err.name).toBe('InvalidSignatureException');
    expect(err.message).toMatch(/^The request signature we calculated does not match the signature you provided/);
    expect(err.$metadata?.httpStatusCode).toBe(400);
  });

  it('an unknown access key is UnrecognizedClientException', async () => {
    const err = await rejection(clientFor(kms.url, SECRET, 'AKIDUNKNOWN').send(new GenerateRandomCommand({ NumberOfBytes: 8 })));
    expect(err.name).toBe('UnrecognizedClientException');
  });

  function raw(body: string | Buffer, headers: Record<string, string>, sign = true): Promise<{ status: number; json: Record<string, unknown>; requestId: string | undefined }> {
    const url = new URL(kms.url);
    const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const all: Record<string, string> = { Host: url.host, 'X-Amz-Date': amzDate, 'Content-Type': 'application/x-amz-json-1.1', ...headers };
    if (sign) {
      all.Authorization = signRequest({ method: 'POST', target: '/', headers: Object.entries(all), payloadHash: sha256Hex(body), accessKeyId: ACCESS_KEY, secretAccessKey: SECRET, region: REGION, service: 'kms', amzDate }).authorization;
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/', method: 'POST', headers: all }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')), requestId: res.headers['x-amzn-requestid'] as string | undefined }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('answers raw JSON 1.1 requests, with x-amzn-RequestId on every answer', async () => {
    const ok = await raw('{"NumberOfBytes": 4}', { 'X-Amz-Target': 'TrentService.GenerateRandom' });
    expect(ok.status).toBe(200);
    expect(Buffer.from(ok.json.Plaintext as string, 'base64')).toHaveLength(4);
    expect(ok.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('shapes protocol errors like AWS', async () => {
    const unsigned = await raw('{}', { 'X-Amz-Target': 'TrentService.GenerateRandom' }, false);
    expect([unsigned.status, unsigned.json.__type]).toEqual([400, 'MissingAuthenticationTokenException']);
    const unknownOp = await raw('{}', { 'X-Amz-Target': 'TrentService.DeleteEverything' });
    expect([unknownOp.status, unknownOp.json.__type]).toEqual([400, 'UnknownOperationException']);
    const badJson = await raw('{"NumberOfBytes": ', { 'X-Amz-Target': 'TrentService.GenerateRandom' });
    expect([badJson.status, badJson.json.__type]).toEqual([400, 'SerializationException']);
    const wrongType = await raw('{"NumberOfBytes": "8"}', { 'X-Amz-Target': 'TrentService.GenerateRandom' });
    expect(wrongType.json.__type).toBe('SerializationException');
    const unknownMember = await raw('{"NumberOfBytes": 8, "Bogus": 1}', { 'X-Amz-Target': 'TrentService.GenerateRandom' });
    expect(unknownMember.json.__type).toBe('SerializationException');
    const badBase64 = await raw('{"KeyId": "alias/x", "Plaintext": "***"}', { 'X-Amz-Target': 'TrentService.Encrypt' });
    expect(badBase64.json.__type).toBe('SerializationException');
    const wrongContentType = await raw('{}', { 'X-Amz-Target': 'TrentService.GenerateRandom', 'Content-Type': 'application/json' });
    expect(wrongContentType.json.__type).toBe('SerializationException');
    for (const r of [unsigned, unknownOp, badJson]) expect(typeof r.json.message).toBe('string');
    // A byte that is not UTF-8 is refused, not read as U+FFFD (which a context would then bind).
    const latin1 = await raw(Buffer.concat([Buffer.from('{"KeyId":"alias/none","Plaintext":"cA==","EncryptionContext":{"a":"'), Buffer.of(0xff), Buffer.from('"}}')]), { 'X-Amz-Target': 'TrentService.Encrypt' });
    expect([latin1.status, latin1.json.__type]).toEqual([400, 'SerializationException']);
  });

  it('refuses a body over the limit with 413 before reading it all', async () => {
    const big = JSON.stringify({ NumberOfBytes: 1, pad: 'x'.repeat(9000) });
    const res = await raw(big, { 'X-Amz-Target': 'TrentService.GenerateRandom' });
    expect([res.status, res.json.__type]).toEqual([413, 'RequestEntityTooLargeException']);
  });
});

describe('dev KMS: persistence', () => {
  it('keeps keys, aliases and policies across a restart, in a 0600 file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dev-kms-'));
    try {
      const first = await start({ dataDir: dir });
      const policy = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] });
      const keyId = (await first.client.send(new CreateKeyCommand({ Policy: policy, Description: 'persisted' }))).KeyMetadata!.KeyId!;
      await first.client.send(new CreateAliasCommand({ AliasName: 'alias/persisted', TargetKeyId: keyId }));
      const blob = (await first.client.send(new EncryptCommand({ KeyId: 'alias/persisted', Plaintext: utf8('survives'), EncryptionContext: { a: 'b' } }))).CiphertextBlob!;
      await first.kms.close();
      expect(statSync(join(dir, STORE_FILE_NAME)).mode & 0o777).toBe(0o600);

      const second = await start({ dataDir: dir });
      const dec = await second.client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { a: 'b' } }));
      expect(new TextDecoder().decode(dec.Plaintext)).toBe('survives');
      expect((await second.client.send(new DescribeKeyCommand({ KeyId: 'alias/persisted' }))).KeyMetadata!.Description).toBe('persisted');
      expect((await second.client.send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy).toBe(policy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A Nitro-style policy: admin for the account, Decrypt/GenerateDataKey/GenerateRandom only for PCR0. */
function enclaveKeyPolicy(pcr0: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'admin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: ['kms:DescribeKey', 'kms:PutKeyPolicy', 'kms:GetKeyPolicy', 'kms:Encrypt'], Resource: '*' },
      {
        Sid: 'enclave',
        Effect: 'Allow',
        Principal: { AWS: USER_ARN },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateRandom'],
        Resource: '*',
        Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': pcr0 } },
      },
    ],
  });
}

describe('dev KMS: Recipient with CiphertextForRecipient (injected verifier, fresh RSA key)', () => {
  const PCR0 = 'a1'.repeat(48);
  let client: KMSClient;
  let privateKey: KeyObject;
  let documentsSeen: Uint8Array[];
  const document = utf8('attestation document bytes handed to the verifier');
  const recipient = { AttestationDocument: document, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const };

  beforeAll(async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    privateKey = pair.privateKey;
    const spki = new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' }));
    documentsSeen = [];
    const verify: VerifyRecipientDocument = async (doc) => {
      documentsSeen.push(doc);
      return { pcrs: new Map([[0, Buffer.from(PCR0, 'hex')], [1, new Uint8Array(48)]]), publicKey: spki };
    };
    const policy = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:GenerateRandom', Resource: '*', Condition: { StringEquals: { 'kms:RecipientAttestation:PCR0': PCR0 } } }] });
    ({ client } = await start({ verifyRecipientDocument: verify, generateRandomPolicy: policy }));
  });

  it('Decrypt returns CiphertextForRecipient (CMS to the attested key) and no Plaintext', async () => {
    const keyId = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy(PCR0) }))).KeyMetadata!.KeyId!;
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('model data key'), EncryptionContext: { m: '1' } }))).CiphertextBlob!;
    const res = await client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { m: '1' }, Recipient: recipient }));
    expect(res.Plaintext === undefined || res.Plaintext.length === 0).toBe(true);
    expect(new TextDecoder().decode(decryptEnvelopedData(res.CiphertextForRecipient!, privateKey))).toBe('model data key');
    expect(Buffer.from(documentsSeen.at(-1)!).equals(Buffer.from(document))).toBe(true);
    // The same policy without a Recipient denies (no attestation, no ImageSha384).
    expect((await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { m: '1' } })))).name).toBe('AccessDeniedException');
  });

  it('GenerateDataKey with Recipient: the CMS holds the same key the CiphertextBlob decrypts to', async () => {
    const keyId = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy(PCR0.toUpperCase()) }))).KeyMetadata!.KeyId!;
    const res = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', Recipient: recipient }));
    expect(res.Plaintext === undefined || res.Plaintext.length === 0).toBe(true);
    const dataKey = decryptEnvelopedData(res.CiphertextForRecipient!, privateKey);
    expect(dataKey).toHaveLength(32);
    const again = await client.send(new DecryptCommand({ CiphertextBlob: res.CiphertextBlob, Recipient: recipient }));
    expect(Buffer.from(decryptEnvelopedData(again.CiphertextForRecipient!, privateKey)).equals(Buffer.from(dataKey))).toBe(true);
  });

  it('GenerateRandom with Recipient is governed by the configured policy and wraps the bytes', async () => {
    const res = await client.send(new GenerateRandomCommand({ NumberOfBytes: 48, Recipient: recipient }));
    expect(res.Plaintext === undefined || res.Plaintext.length === 0).toBe(true);
    expect(decryptEnvelopedData(res.CiphertextForRecipient!, privateKey)).toHaveLength(48);
    expect((await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 48 })))).name).toBe('AccessDeniedException');
  });

  it('a key policy demanding another PCR0 is AccessDeniedException', async () => {
    const keyId = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy('b2'.repeat(48)) }))).KeyMetadata!.KeyId!;
    const blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') }))).CiphertextBlob!;
    const err = await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, Recipient: recipient })));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toContain('kms:Decrypt');
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32, Recipient: recipient })))).name).toBe('AccessDeniedException');
  });
});

describe('dev KMS: Recipient checked by the real Nitro verifier on real AWS evidence', () => {
  const anchorage = Buffer.from(readFileSync(join(VECTORS, 'nitro/anchorage_aws_nitro_document.base64'), 'utf8').replace(/\s+/g, ''), 'base64');
  const anchorageTime = 1668034320696;
  const base = Buffer.from(readFileSync(join(VECTORS, 'nitro/base_nitro-validator_2024-11-30.hex'), 'utf8').trim(), 'hex');
  const baseTime = 1732983768387;
  const basePcr0 = 'ec74bfbe7f7445a6c7610e152935e028276f638042b74797b119648e13f7a3675796b721034c320f140ea001b41aeae2';
  const awsRoot = readFileSync(join(VECTORS, 'nitro/aws_nitro_root_g1.pem'), 'utf8');
  const otherRoot = readFileSync(join(VECTORS, 'kms/synthetic/enclave_rsa2048_cert.pem'), 'utf8');
  const asRecipient = (doc: Uint8Array) => ({ AttestationDocument: doc, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const });

  async function keyAndBlob(client: KMSClient, pcr0: string): Promise<Uint8Array> {
    const keyId = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy(pcr0) }))).KeyMetadata!.KeyId!;
    return (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') }))).CiphertextBlob!;
  }

  it('the fixture is the document the manifest describes', () => {
    expect(createHash('sha256').update(base).digest('hex')).toBe('69d51f984229a1bc4009ac2029b1a7f5d255ada7239004b8cda5d06dcdbd365f');
  });

  it('a document signed under another root is AccessDeniedException naming CHAIN_UNTRUSTED_ROOT', async () => {
    const { client } = await start({ verifyRecipientDocument: nitroRecipientVerifier({ rootCertificates: [otherRoot], now: () => anchorageTime + 1000 }) });
    const err = await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: asRecipient(anchorage) })));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toContain('CHAIN_UNTRUSTED_ROOT');
  });

  it('an expired document (verified at today\'s date) is AccessDeniedException', async () => {
    const { client } = await start({ attestationRoots: [awsRoot] });
    const err = await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: asRecipient(base) })));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toMatch(/CERT_EXPIRED|DOCUMENT_TOO_OLD/);
  });

  it('malformed evidence is AccessDeniedException, never a crash', async () => {
    const { client } = await start({ attestationRoots: [awsRoot] });
    const garbage = readFileSync(join(VECTORS, 'nitro/NEG_base_nitro-validator_2026-01-03_corrupt_public_key_label.base64'), 'utf8').replace(/\s+/g, '');
    const err = await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: asRecipient(Buffer.from(garbage, 'base64')) })));
    expect(err.name).toBe('AccessDeniedException');
  });

  it('a valid document is held to the key policy: another PCR0 is denied; the right one passes to key wrapping', async () => {
    const { client } = await start({ verifyRecipientDocument: nitroRecipientVerifier({ rootCertificates: [awsRoot], now: () => baseTime + 60_000 }) });
    const wrong = await rejection(client.send(new DecryptCommand({ CiphertextBlob: await keyAndBlob(client, '00'.repeat(48)), Recipient: asRecipient(base) })));
    expect(wrong.name).toBe('AccessDeniedException');
    expect(wrong.message).toContain('because no resource-based policy allows the kms:Decrypt action');
    // PCR0 matches: the policy allows; this real document's public_key is a raw P-256 point, which
    // RSAES_OAEP_SHA_256 cannot use, so KMS refuses to wrap (ValidationException), not AccessDenied.
    const right = await rejection(client.send(new DecryptCommand({ CiphertextBlob: await keyAndBlob(client, basePcr0), Recipient: asRecipient(base) })));
    expect(right.name).toBe('ValidationException');
    expect(right.message).toContain('RSAES_OAEP_SHA_256');
  });

  it('a document without public_key is AccessDeniedException', async () => {
    const { client } = await start({ verifyRecipientDocument: nitroRecipientVerifier({ rootCertificates: [awsRoot], now: () => anchorageTime + 1000 }) });
    const err = await rejection(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: asRecipient(anchorage) })));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toContain('public_key');
  });
});

describe('dev KMS: Recipient end to end with the dev attester (simulated NSM) and the real verifier', () => {
  it('releases a data key to an enclave with the right PCR0 only, and rejects another root', async () => {
    const ca = await createDevCa();
    const pcr0 = new Uint8Array(48).fill(0x5a);
    const attester = await DevAttester.create({ ca, pcrs: new Map([[0, pcr0], [1, new Uint8Array(48).fill(1)], [2, new Uint8Array(48).fill(2)]]) });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const document = await attester.attest({ publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) });
    const recipient = { AttestationDocument: document, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const };

    const { client } = await start({ attestationRoots: [ca.rootPem] });
    const good = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy(Buffer.from(pcr0).toString('hex')) }))).KeyMetadata!.KeyId!;
    const sealed = await client.send(new GenerateDataKeyCommand({ KeyId: good, KeySpec: 'AES_256', Recipient: recipient }));
    const dataKey = decryptEnvelopedData(sealed.CiphertextForRecipient!, privateKey);
    expect(dataKey).toHaveLength(32);
    const released = await client.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, Recipient: recipient }));
    expect(released.Plaintext === undefined || released.Plaintext.length === 0).toBe(true);
    expect(Buffer.from(decryptEnvelopedData(released.CiphertextForRecipient!, privateKey)).equals(Buffer.from(dataKey))).toBe(true);

    const bad = (await client.send(new CreateKeyCommand({ Policy: enclaveKeyPolicy('00'.repeat(48)) }))).KeyMetadata!.KeyId!;
    expect((await rejection(client.send(new GenerateDataKeyCommand({ KeyId: bad, KeySpec: 'AES_256', Recipient: recipient })))).name).toBe('AccessDeniedException');

    const otherCa = await createDevCa();
    const { client: other } = await start({ attestationRoots: [otherCa.rootPem] });
    const untrusted = await rejection(other.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: recipient })));
    expect(untrusted.name).toBe('AccessDeniedException');
    expect(untrusted.message).toContain('CHAIN_UNTRUSTED_ROOT');
  });
});
