/**
 * Rejection paths of the dev KMS (infra/dev-kms), each driven through its HTTP server: with the
 * real @aws-sdk/client-kms where the SDK sends the bad value, else with a request hand-signed by
 * the project's own SigV4 signer (infra/dev-kms/sigv4.ts) for what the SDK never sends (a member of
 * the wrong JSON type, a repeated header, an impossible X-Amz-Date). Each test asserts the AWS
 * error type (`__type`, which the SDK reports as the error's name) and the HTTP status.
 *
 * Statuses are those of the KMS model and of the AWS "Common Errors" page (400 for
 * IncompleteSignature and validation errors); the types named by the KMS API Reference are
 * MalformedPolicyDocumentException (CreateKey, PutKeyPolicy), InvalidKeyUsageException (an
 * encryption algorithm the key spec does not support), DryRunOperationException (412) and
 * NotFoundException. Where the reference names no answer, the answer is the dev KMS's own and
 * the test says so.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  KMSClient,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { main, startDevKms, type DevKms } from '../../infra/dev-kms/main';
import { sha256Hex, signRequest } from '../../infra/dev-kms/sigv4';
import { KMS_ACCOUNT, KMS_REGION, kmsTestServers, rejection } from '../support/dev-kms-harness';
import { postStreamed } from '../support/loopback';

const ACCESS_KEY = 'AKIDREJECTIONS';
const SECRET = 'rejections-secret/0123456789';
const ACCOUNT = KMS_ACCOUNT;
const REGION = KMS_REGION;
const ROOT = `arn:aws:iam::${ACCOUNT}:root`;
const utf8 = (s: string) => new TextEncoder().encode(s);

const { start } = kmsTestServers(ACCESS_KEY, SECRET);
const tmp = mkdtempSync(join(tmpdir(), 'dev-kms-rejections-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Refusal {
  readonly name: string;
  readonly status: number | undefined;
  readonly message: string;
}

/** How an SDK call failed: the error type, the HTTP status, the message. */
async function refusal(call: Promise<unknown>): Promise<Refusal> {
  const e = await rejection(call);
  return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
}

function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

interface RawCall {
  readonly operation?: string;
  readonly body?: string;
  readonly method?: string;
  /** Request target as sent (path and query); the signature always covers '/'. */
  readonly path?: string;
  readonly amzDate?: string;
  /** More headers, signed and sent. */
  readonly signed?: ReadonlyArray<readonly [string, string]>;
  /** Rewrites the header list after signing (to repeat, drop or change a header). */
  readonly tamper?: (headers: Array<[string, string]>) => Array<[string, string]>;
}

/** One request signed with the project's SigV4 signer; the answer's status and JSON body. */
function raw(kms: DevKms, call: RawCall): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(kms.url);
  const body = call.body ?? '{}';
  const amzDate = call.amzDate ?? amzDateOf(Date.now());
  const method = call.method ?? 'POST';
  let headers: Array<[string, string]> = [
    ['Host', url.host],
    ['X-Amz-Date', amzDate],
    ['Content-Type', 'application/x-amz-json-1.1'],
    ...(call.operation !== undefined ? [['X-Amz-Target', `TrentService.${call.operation}`] as [string, string]] : []),
    ...(call.signed ?? []).map(([n, v]): [string, string] => [n, v]),
  ];
  const { authorization } = signRequest({ method, target: '/', headers, payloadHash: sha256Hex(body), accessKeyId: ACCESS_KEY, secretAccessKey: SECRET, region: REGION, service: 'kms', amzDate });
  headers.push(['Authorization', authorization]);
  if (call.tamper) headers = call.tamper(headers);
  // A name given twice becomes an array: Node sends one header line per value.
  const outgoing: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const seen = outgoing[name];
    outgoing[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: call.path ?? '/', method, headers: outgoing }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(method === 'GET' ? undefined : body);
  });
}

const answer = (r: { status: number; json: Record<string, unknown> }) => [r.status, r.json.__type];

describe('a malformed key policy is MalformedPolicyDocumentException (HTTP 400) from CreateKey and PutKeyPolicy', () => {
  let client: KMSClient;
  let keyId: string;
  beforeAll(async () => {
    ({ client } = await start());
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });

  /** A statement granting the account everything: each case breaks one part of an otherwise valid policy. */
  const admin = { Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' };
  const cases: Array<[string, string, string]> = [
    ['an empty Action list', JSON.stringify({ Statement: [{ ...admin, Action: [] }] }), 'Action must be a non-empty string or a non-empty list of strings'],
    ['a Principal that is a bare ARN string', JSON.stringify({ Statement: [{ ...admin, Principal: ROOT }] }), 'Principal must be "*" or an object such as {"AWS": "..."}'],
    ['a principal that is neither an account nor an IAM ARN', JSON.stringify({ Statement: [{ ...admin, Principal: { AWS: 'alice' } }] }), 'invalid principal: alice'],
    ['a Condition that is a string', JSON.stringify({ Statement: [{ ...admin, Condition: 'x' }] }), 'Condition must be an object'],
    ['a condition operator mapped to a string', JSON.stringify({ Statement: [{ ...admin, Condition: { StringEquals: 'x' } }] }), 'condition StringEquals must map keys to values'],
    ['a Bool condition that is not "true" or "false"', JSON.stringify({ Statement: [{ ...admin, Condition: { Bool: { 'aws:SecureTransport': 'yes' } } }] }), 'condition Bool aws:SecureTransport takes "true" or "false"'],
    ['a Statement entry that is not an object', JSON.stringify({ Statement: [admin, 'x'] }), 'Statement[1] must be an object'],
    ['NotPrincipal', JSON.stringify({ Statement: [{ ...admin, NotPrincipal: { AWS: `arn:aws:iam::${ACCOUNT}:user/x` } }] }), 'NotPrincipal is not supported in key policies'],
    ['a Sid that is a number', JSON.stringify({ Statement: [{ ...admin, Sid: 5 }] }), 'Statement[0].Sid must be a string'],
    ['both Resource and NotResource', JSON.stringify({ Statement: [{ ...admin, NotResource: 'arn:aws:kms:*:*:key/none' }] }), 'Statement[0] must have exactly one of Resource and NotResource'],
    ['neither Resource nor NotResource', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*' }] }), 'Statement[0] must have exactly one of Resource and NotResource'],
    ['a document that is a JSON list', JSON.stringify([{ Statement: [admin] }]), 'the policy must be a JSON object'],
    ['an unknown top-level element', JSON.stringify({ Version: '2012-10-17', Statement: [admin], Extra: 'x' }), 'unknown policy element: Extra'],
  ];

  it.each(cases)('%s', async (_name, policy, reason) => {
    const created = await refusal(client.send(new CreateKeyCommand({ Policy: policy })));
    expect(created).toEqual({ name: 'MalformedPolicyDocumentException', status: 400, message: `The key policy is malformed: ${reason}` });
    const put = await refusal(client.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: policy })));
    expect(put).toEqual({ name: 'MalformedPolicyDocumentException', status: 400, message: `The key policy is malformed: ${reason}` });
  });

  it('leaves the key policy as it was after a refused PutKeyPolicy', async () => {
    const before = (await client.send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy;
    await refusal(client.send(new PutKeyPolicyCommand({ KeyId: keyId, Policy: JSON.stringify({ Statement: [{ ...admin, Sid: 5 }] }) })));
    expect((await client.send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy).toBe(before);
  });
});

describe('CreateKey: what the dev KMS does not implement is refused, not silently ignored', () => {
  let client: KMSClient;
  let kms: DevKms;
  beforeAll(async () => ({ client, kms } = await start()));

  // Real KMS creates these keys; the dev KMS has only symmetric AWS_KMS keys in one Region, and says
  // so with UnsupportedOperationException (400) instead of making a key of another kind.
  it('KeyUsage other than ENCRYPT_DECRYPT', async () => {
    expect(await refusal(client.send(new CreateKeyCommand({ KeyUsage: 'GENERATE_VERIFY_MAC' })))).toEqual({
      name: 'UnsupportedOperationException', status: 400, message: 'The dev KMS supports only KeyUsage ENCRYPT_DECRYPT, not GENERATE_VERIFY_MAC.',
    });
  });

  it('Origin other than AWS_KMS', async () => {
    expect(await refusal(client.send(new CreateKeyCommand({ Origin: 'EXTERNAL' })))).toEqual({
      name: 'UnsupportedOperationException', status: 400, message: 'The dev KMS supports only Origin AWS_KMS, not EXTERNAL.',
    });
  });

  it('MultiRegion: true', async () => {
    expect(await refusal(client.send(new CreateKeyCommand({ MultiRegion: true })))).toEqual({
      name: 'UnsupportedOperationException', status: 400, message: 'The dev KMS has no multi-Region keys.',
    });
  });

  it('Tags that are not a list is SerializationException (hand-signed: the SDK sends only lists)', async () => {
    const res = await raw(kms, { operation: 'CreateKey', body: JSON.stringify({ Tags: { TagKey: 'team', TagValue: 'ml' } }) });
    expect(answer(res)).toEqual([400, 'SerializationException']);
    expect(res.json.message).toBe('Tags must be a list');
  });
});

describe('key ids, ARNs, aliases and policy names', () => {
  let client: KMSClient;
  let keyId: string;
  beforeAll(async () => {
    ({ client } = await start());
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await client.send(new CreateAliasCommand({ AliasName: 'alias/existing', TargetKeyId: keyId }));
  });

  it('a KeyId that is not a key id, ARN or alias is NotFoundException (404)', async () => {
    expect(await refusal(client.send(new DescribeKeyCommand({ KeyId: 'not-a-key-id' })))).toEqual({ name: 'NotFoundException', status: 404, message: "Invalid keyId 'not-a-key-id'" });
  });

  it('an ARN of this account and Region that names neither key/ nor alias/ is NotFoundException, even with a real key id in it', async () => {
    const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:${keyId}`;
    expect(await refusal(client.send(new DescribeKeyCommand({ KeyId: arn })))).toEqual({ name: 'NotFoundException', status: 404, message: `Invalid arn ${arn}` });
  });

  it('an alias where the operation takes only a key id or key ARN is NotFoundException, even for an existing alias', async () => {
    // EnableKey, GetKeyPolicy, PutKeyPolicy and CreateAlias's TargetKeyId take "the key ID or key ARN" (API Reference).
    for (const call of [
      () => client.send(new EnableKeyCommand({ KeyId: 'alias/existing' })),
      () => client.send(new GetKeyPolicyCommand({ KeyId: 'alias/existing' })),
      () => client.send(new CreateAliasCommand({ AliasName: 'alias/second', TargetKeyId: 'alias/existing' })),
    ]) {
      expect(await refusal(call())).toEqual({ name: 'NotFoundException', status: 404, message: 'Alias alias/existing is not valid for this operation.' });
    }
  });

  it('a PolicyName other than "default" is NotFoundException (the only valid name is default)', async () => {
    const message = "No such policy: other. The only valid policy name is 'default'.";
    expect(await refusal(client.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'other' })))).toEqual({ name: 'NotFoundException', status: 404, message });
    const policy = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' }] });
    expect(await refusal(client.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'other', Policy: policy })))).toEqual({ name: 'NotFoundException', status: 404, message });
  });

  it('an alias name outside ^alias/[a-zA-Z0-9/_-]+$ is ValidationException, and no alias is made', async () => {
    // Real KMS answers ValidationException (400) to a name without the alias/ prefix.
    for (const name of ['teegate-models', 'alias/has space', 'alias/', 'alias/semi;colon']) {
      const err = await refusal(client.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: keyId })));
      expect([err.name, err.status]).toEqual(['ValidationException', 400]);
      expect(err.message).toBe(`1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`);
    }
    expect((await refusal(client.send(new DescribeKeyCommand({ KeyId: 'alias/has space' })))).name).toBe('NotFoundException');
  });

  it('an alias under the reserved alias/aws/ prefix is NotAuthorizedException (400), and no alias is made', async () => {
    const err = await refusal(client.send(new CreateAliasCommand({ AliasName: 'alias/aws/ebs', TargetKeyId: keyId })));
    expect(err).toEqual({ name: 'NotAuthorizedException', status: 400, message: "Cannot create alias with prefix 'alias/aws/'" });
    expect((await refusal(client.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' })))).name).toBe('NotFoundException');
  });
});

describe('cryptographic operations', () => {
  let client: KMSClient;
  let keyId: string;
  let blob: Uint8Array;
  beforeAll(async () => {
    ({ client } = await start());
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('secret') }))).CiphertextBlob!;
  });

  it('an asymmetric EncryptionAlgorithm on a symmetric key is InvalidKeyUsageException (400), on Encrypt and Decrypt', async () => {
    const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`;
    expect(await refusal(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).toEqual({
      name: 'InvalidKeyUsageException', status: 400, message: `${arn} does not support the encryption algorithm RSAES_OAEP_SHA_256.`,
    });
    expect(await refusal(client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionAlgorithm: 'SM2PKE' })))).toEqual({
      name: 'InvalidKeyUsageException', status: 400, message: `${arn} does not support the encryption algorithm SM2PKE.`,
    });
  });

  it('a well-formed ciphertext of another KMS (a key this one does not have) is InvalidCiphertextException (400)', async () => {
    const { client: other } = await start();
    const foreignKey = (await other.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const foreign = (await other.send(new EncryptCommand({ KeyId: foreignKey, Plaintext: utf8('elsewhere') }))).CiphertextBlob!;
    expect(await refusal(client.send(new DecryptCommand({ CiphertextBlob: foreign })))).toEqual({
      name: 'InvalidCiphertextException', status: 400, message: 'The ciphertext is invalid or was not produced by this KMS.',
    });
  });

  it('DryRun on Decrypt, GenerateDataKey and GenerateDataKeyWithoutPlaintext is DryRunOperationException (412), with no key material', async () => {
    for (const call of [
      () => client.send(new DecryptCommand({ CiphertextBlob: blob, DryRun: true })),
      () => client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', DryRun: true })),
      () => client.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256', DryRun: true })),
    ]) {
      expect(await refusal(call())).toEqual({ name: 'DryRunOperationException', status: 412, message: 'The request would have succeeded, but the DryRun option is set.' });
    }
  });
});

describe('request members of the wrong JSON type or out of bounds', () => {
  let kms: DevKms;
  let client: KMSClient;
  let keyId: string;
  beforeAll(async () => {
    ({ kms, client } = await start());
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });
  const plaintext = Buffer.from('p').toString('base64');

  it('the hand-signed requests of these tests are accepted when well-formed', async () => {
    const res = await raw(kms, { operation: 'Encrypt', body: JSON.stringify({ KeyId: keyId, Plaintext: plaintext, DryRun: false, GrantTokens: ['t'], EncryptionContext: { a: 'b' } }) });
    expect(res.status).toBe(200);
  });

  it('a body that is JSON but not an object is SerializationException', async () => {
    for (const body of ['[]', 'null', '5', '"NumberOfBytes"']) {
      const res = await raw(kms, { operation: 'GenerateRandom', body });
      expect(answer(res)).toEqual([400, 'SerializationException']);
      expect(res.json.message).toBe('the request body must be a JSON object');
    }
  });

  // Type mismatches are SerializationException, as AWS's JSON deserializer reports them.
  const wrongTypes: Array<[string, string, Record<string, unknown>, string]> = [
    ['a string member given a number', 'DescribeKey', { KeyId: 5 }, 'KeyId must be a string'],
    ['a blob member given a number', 'Encrypt', { KeyId: 'KEY', Plaintext: 5 }, 'Plaintext must be a base64 string'],
    ['a boolean member given the string "true"', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, DryRun: 'true' }, 'DryRun must be a boolean'],
    ['a string list given a string', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, GrantTokens: 'token' }, 'GrantTokens must be a list of strings'],
    ['a string list holding a number', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, GrantTokens: [1] }, 'GrantTokens must be a list of strings'],
    ['an encryption context that is a string', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, EncryptionContext: 'tenant=a' }, 'EncryptionContext must be a map of strings'],
    ['an encryption context that is a list', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, EncryptionContext: ['a'] }, 'EncryptionContext must be a map of strings'],
    ['an encryption context value that is a number', 'Encrypt', { KeyId: 'KEY', Plaintext: plaintext, EncryptionContext: { tenant: 1 } }, 'EncryptionContext.tenant must be a string'],
    ['a Recipient that is a string', 'GenerateRandom', { NumberOfBytes: 8, Recipient: 'document' }, 'Recipient must be a structure'],
  ];
  it.each(wrongTypes)('%s', async (_name, operation, body, message) => {
    const withKey = JSON.parse(JSON.stringify(body).replace('"KEY"', JSON.stringify(keyId))) as Record<string, unknown>;
    const res = await raw(kms, { operation, body: JSON.stringify(withKey) });
    expect(answer(res)).toEqual([400, 'SerializationException']);
    expect(res.json.message).toBe(message);
  });

  it('more than 10 GrantTokens is ValidationException (the reference allows at most 10)', async () => {
    const err = await refusal(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), GrantTokens: Array.from({ length: 11 }, (_, i) => `t${i}`) })));
    expect(err).toEqual({ name: 'ValidationException', status: 400, message: "1 validation error detected: Value [...] at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10" });
  });

  it('an encryption context with an empty key is ValidationException (dev KMS: an empty key would be bound silently)', async () => {
    const err = await refusal(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('p'), EncryptionContext: { '': 'v' } })));
    expect(err).toEqual({ name: 'ValidationException', status: 400, message: "1 validation error detected: Value '' at 'encryptionContext' failed to satisfy constraint: Map keys must have length greater than or equal to 1" });
  });

  it('a Recipient without an AttestationDocument is ValidationException', async () => {
    const err = await refusal(client.send(new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } })));
    expect(err).toEqual({ name: 'ValidationException', status: 400, message: "1 validation error detected: Value null at 'recipient.attestationDocument' failed to satisfy constraint: Member must not be null" });
  });
});

describe('the HTTP front', () => {
  let kms: DevKms;
  beforeAll(async () => ({ kms } = await start({ maxBodyBytes: 8192 })));

  it('anything but POST / is UnknownOperationException (400)', async () => {
    const get = await raw(kms, { method: 'GET', operation: 'GenerateRandom' });
    expect(answer(get)).toEqual([400, 'UnknownOperationException']);
    expect(get.json.message).toBe('The dev KMS answers POST / only.');
    const otherPath = await raw(kms, { path: '/other', operation: 'GenerateRandom', body: '{"NumberOfBytes": 8}' });
    expect(answer(otherPath)).toEqual([400, 'UnknownOperationException']);
  });

  it('a streamed body (no Content-Length) over the limit is RequestEntityTooLargeException (413)', async () => {
    const res = await postStreamed(kms.url, 20, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.GenerateRandom' });
    expect(res.status).toBe(413);
    expect(((await res.json()) as Record<string, unknown>).__type).toBe('RequestEntityTooLargeException');
  });
});

describe('SigV4: hand-signed requests the SDK would never send', () => {
  let kms: DevKms;
  beforeAll(async () => ({ kms } = await start()));
  const generateRandom = { operation: 'GenerateRandom', body: '{"NumberOfBytes": 8}' } as const;

  it('the unmodified request is accepted (so each refusal below is the change it names)', async () => {
    expect((await raw(kms, generateRandom)).status).toBe(200);
  });

  it('a repeated X-Amz-Date is IncompleteSignatureException (400), even signed over both values', async () => {
    const date = amzDateOf(Date.now());
    const res = await raw(kms, { ...generateRandom, amzDate: date, signed: [['X-Amz-Date', date]] });
    expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
    expect(res.json.message).toBe("Header 'x-amz-date' appears more than once.");
  });

  it('a repeated Authorization header is IncompleteSignatureException', async () => {
    const res = await raw(kms, { ...generateRandom, tamper: (h) => [...h, h.find(([n]) => n === 'Authorization')!] });
    expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
    expect(res.json.message).toBe("Header 'authorization' appears more than once.");
  });

  it('an Authorization header that gives Credential twice is IncompleteSignatureException (which one counts is never guessed)', async () => {
    const res = await raw(kms, {
      ...generateRandom,
      tamper: (h) => h.map(([n, v]): [string, string] => (n === 'Authorization' ? [n, v.replace('AWS4-HMAC-SHA256 ', `AWS4-HMAC-SHA256 Credential=AKIDOTHER/20240101/${REGION}/kms/aws4_request, `)] : [n, v])),
    });
    expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
    expect(res.json.message).toBe("Authorization header repeats 'Credential'.");
  });

  it('a credential scope ending in anything but aws4_request is InvalidSignatureException', async () => {
    const res = await raw(kms, { ...generateRandom, tamper: (h) => h.map(([n, v]): [string, string] => (n === 'Authorization' ? [n, v.replace('/aws4_request,', '/aws5_request,')] : [n, v])) });
    expect(answer(res)).toEqual([400, 'InvalidSignatureException']);
    expect(res.json.message).toBe("Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.");
  });

  it('a SignedHeaders entry the request does not carry is IncompleteSignatureException', async () => {
    const res = await raw(kms, { ...generateRandom, signed: [['X-Teegate-Extra', 'signed, then dropped']], tamper: (h) => h.filter(([n]) => n !== 'X-Teegate-Extra') });
    expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
    expect(res.json.message).toBe("signed header 'x-teegate-extra' is not present in the request");
  });

  it('a query string that is not valid percent-encoding is IncompleteSignatureException', async () => {
    const res = await raw(kms, { ...generateRandom, path: '/?x=%zz' });
    expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
    expect(res.json.message).toBe('the request URI is not valid percent-encoding');
  });

  it('an X-Amz-Date of the right shape but no real time (hour 24) is IncompleteSignatureException, though it would roll over to now', async () => {
    const now = Date.UTC(2024, 1, 29, 0, 0, 0);
    const { kms: frozen } = await start({ now: () => now });
    expect((await raw(frozen, { ...generateRandom, amzDate: '20240229T000000Z' })).status).toBe(200);
    for (const amzDate of ['20240228T240000Z', '20240230T000000Z']) {
      const res = await raw(frozen, { ...generateRandom, amzDate });
      expect(answer(res)).toEqual([400, 'IncompleteSignatureException']);
      expect(res.json.message).toBe(`Date must be in ISO-8601 'basic format'. Got '${amzDate}'.`);
    }
  });
});

describe('starting the dev KMS: startDevKms options and the program flags', () => {
  const file = (name: string, text: string): string => {
    const path = join(tmp, name);
    writeFileSync(path, text);
    return path;
  };
  const goodCredentials = () => file('good.json', JSON.stringify([{ accessKeyId: 'AK', secretAccessKey: 'SK' }]));

  it('an account id that is not twelve digits is refused (--account)', async () => {
    await expect(startDevKms({ credentials: [{ accessKeyId: 'AK', secretAccessKey: 'SK' }], accountId: '12345' })).rejects.toThrow(/^accountId must be twelve digits$/);
    await expect(main(['--credentials', goodCredentials(), '--port', '0', '--account', '1111222233334'])).rejects.toThrow(/^accountId must be twelve digits$/);
  });

  it('an empty credentials list is refused', async () => {
    await expect(main(['--credentials', file('empty.json', '[]'), '--port', '0'])).rejects.toThrow(/^the dev KMS needs at least one credential$/);
  });

  it('a credentials file that is not a list of {accessKeyId, secretAccessKey} is refused, naming the file', async () => {
    for (const [name, text] of [
      ['object.json', JSON.stringify({ accessKeyId: 'AK', secretAccessKey: 'SK' })],
      ['no-secret.json', JSON.stringify([{ accessKeyId: 'AK' }])],
      ['number-secret.json', JSON.stringify([{ accessKeyId: 'AK', secretAccessKey: 1 }])],
    ] as const) {
      const path = file(name, text);
      await expect(main(['--credentials', path, '--port', '0'])).rejects.toThrow(`${path}: expected a JSON list of {accessKeyId, secretAccessKey}`);
    }
  });

  it('no --credentials and no TEEGATE_DEV_KMS_* variables is refused', async () => {
    const saved = { id: process.env.TEEGATE_DEV_KMS_ACCESS_KEY_ID, secret: process.env.TEEGATE_DEV_KMS_SECRET_ACCESS_KEY };
    delete process.env.TEEGATE_DEV_KMS_ACCESS_KEY_ID;
    process.env.TEEGATE_DEV_KMS_SECRET_ACCESS_KEY = 'a secret without its key id';
    try {
      await expect(main(['--port', '0'])).rejects.toThrow(/^give --credentials FILE or set TEEGATE_DEV_KMS_ACCESS_KEY_ID and TEEGATE_DEV_KMS_SECRET_ACCESS_KEY$/);
    } finally {
      if (saved.id === undefined) delete process.env.TEEGATE_DEV_KMS_ACCESS_KEY_ID;
      else process.env.TEEGATE_DEV_KMS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.TEEGATE_DEV_KMS_SECRET_ACCESS_KEY;
      else process.env.TEEGATE_DEV_KMS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  it('a flag without its value is refused, naming the flag', async () => {
    await expect(main(['--credentials', goodCredentials(), '--port', '0', '--attestation-root'])).rejects.toThrow(/^--attestation-root needs a value$/);
    await expect(main(['--credentials', goodCredentials(), '--port', '--data', tmp])).rejects.toThrow(/^--port needs a value$/);
  });

  it('a malformed GenerateRandom policy is refused at start, naming the option (--generate-random-policy)', async () => {
    const policy = file('random-policy.json', JSON.stringify({ Statement: [] }));
    await expect(main(['--credentials', goodCredentials(), '--port', '0', '--generate-random-policy', policy])).rejects.toThrow(/^generateRandomPolicy: the policy must have at least one Statement$/);
    await expect(startDevKms({ credentials: [{ accessKeyId: 'AK', secretAccessKey: 'SK' }], generateRandomPolicy: '{' })).rejects.toThrow(/^generateRandomPolicy: the policy is not valid JSON$/);
  });
});
