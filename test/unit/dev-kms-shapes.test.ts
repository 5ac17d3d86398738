/**
 * Request and response shapes of the dev KMS against the AWS KMS API Reference. The table below
 * is written from the reference pages (one URL per operation; KeyMetadata from
 * https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html) and checked against
 * what the server accepts and returns on the wire (raw, SigV4-signed JSON 1.1 requests):
 *  - a request carrying every member the reference lists is never refused as unknown;
 *  - a member the reference does not list is refused (SerializationException);
 *  - leaving out a required member is ValidationException;
 *  - every response member is one the reference lists, and the always-returned ones are present.
 */
import { request as httpRequest } from 'node:http';
import { startDevKms, type DevKms } from '../../infra/dev-kms/main';
import { sha256Hex, signRequest } from '../../infra/dev-kms/sigv4';

interface OperationShape {
  readonly url: string;
  readonly requestRequired: readonly string[];
  readonly requestOptional: readonly string[];
  readonly responseMembers: readonly string[];
  /** Members this server always returns on success (a subset of responseMembers). */
  readonly responseAlways: readonly string[];
}

const REFERENCE: Readonly<Record<string, OperationShape>> = {
  CreateKey: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html',
    requestRequired: [],
    requestOptional: ['BypassPolicyLockoutSafetyCheck', 'CustomerMasterKeySpec', 'CustomKeyStoreId', 'Description', 'KeySpec', 'KeyUsage', 'MultiRegion', 'Origin', 'Policy', 'Tags', 'XksKeyId'],
    responseMembers: ['KeyMetadata'],
    responseAlways: ['KeyMetadata'],
  },
  DescribeKey: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html',
    requestRequired: ['KeyId'],
    requestOptional: ['GrantTokens'],
    responseMembers: ['KeyMetadata'],
    responseAlways: ['KeyMetadata'],
  },
  Encrypt: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html',
    requestRequired: ['KeyId', 'Plaintext'],
    requestOptional: ['DryRun', 'EncryptionAlgorithm', 'EncryptionContext', 'GrantTokens'],
    responseMembers: ['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId'],
    responseAlways: ['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId'],
  },
  Decrypt: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html',
    requestRequired: ['CiphertextBlob'],
    requestOptional: ['DryRun', 'DryRunModifiers', 'EncryptionAlgorithm', 'EncryptionContext', 'GrantTokens', 'KeyId', 'Recipient'],
    responseMembers: ['CiphertextForRecipient', 'EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext'],
    responseAlways: ['EncryptionAlgorithm', 'KeyId', 'Plaintext'],
  },
  GenerateDataKey: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateDataKey.html',
    requestRequired: ['KeyId'],
    requestOptional: ['DryRun', 'EncryptionContext', 'GrantTokens', 'KeySpec', 'NumberOfBytes', 'Recipient'],
    responseMembers: ['CiphertextBlob', 'CiphertextForRecipient', 'KeyId', 'KeyMaterialId', 'Plaintext'],
    responseAlways: ['CiphertextBlob', 'KeyId', 'Plaintext'],
  },
  GenerateRandom: {
    url: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateRandom.html',
    // The model marks NumberOfBytes optional; the reference text says "This parameter is required."
    requestRequired: ['NumberOfBytes'],
    requestOptional: ['CustomKeyStoreId', 'Recipient'],
    responseMembers: ['CiphertextForRecipient', 'Plaintext'],
    responseAlways: ['Plaintext'],
  },
};

const KEY_METADATA_MEMBERS = [
  'KeyId', 'Arn', 'AWSAccountId', 'CloudHsmClusterId', 'CreationDate', 'CurrentKeyMaterialId', 'CustomerMasterKeySpec', 'CustomKeyStoreId',
  'DeletionDate', 'Description', 'Enabled', 'EncryptionAlgorithms', 'ExpirationModel', 'KeyAgreementAlgorithms', 'KeyManager', 'KeySpec',
  'KeyState', 'KeyUsage', 'MacAlgorithms', 'MultiRegion', 'MultiRegionConfiguration', 'Origin', 'PendingDeletionWindowInDays',
  'SigningAlgorithms', 'ValidTo', 'XksKeyConfiguration',
];

const ACCESS_KEY = 'AKIDSHAPES';
const SECRET = 'shapes-secret';
let kms: DevKms;
let keyId = '';
let blob = '';

async function call(operation: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(kms.url);
  const text = JSON.stringify(body);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const headers: Record<string, string> = { Host: url.host, 'X-Amz-Date': amzDate, 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': `TrentService.${operation}` };
  headers.Authorization = signRequest({ method: 'POST', target: '/', headers: Object.entries(headers), payloadHash: sha256Hex(text), accessKeyId: ACCESS_KEY, secretAccessKey: SECRET, region: 'us-east-1', service: 'kms', amzDate }).authorization;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/', method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** A value of the right type for each member (not necessarily one the dev KMS supports). */
function sampleValue(member: string): unknown {
  const samples: Record<string, unknown> = {
    BypassPolicyLockoutSafetyCheck: false, CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT', CustomKeyStoreId: 'cks-1234567890abcdef0',
    Description: 'd', KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', MultiRegion: false, Origin: 'AWS_KMS',
    Policy: JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' } }), Tags: [], XksKeyId: 'x',
    GrantTokens: ['token'], KeyId: keyId, Plaintext: Buffer.from('p').toString('base64'), DryRun: false, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    EncryptionContext: { a: 'b' }, CiphertextBlob: blob, DryRunModifiers: ['IGNORE_CIPHERTEXT'], NumberOfBytes: 16,
    Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('doc').toString('base64') },
  };
  if (!(member in samples)) throw new Error(`no sample for ${member}`);
  return samples[member];
}

/** The smallest valid request per operation. */
function minimalRequest(operation: string): Record<string, unknown> {
  switch (operation) {
    case 'CreateKey': return {};
    case 'DescribeKey': return { KeyId: keyId };
    case 'Encrypt': return { KeyId: keyId, Plaintext: Buffer.from('p').toString('base64') };
    case 'Decrypt': return { CiphertextBlob: blob };
    case 'GenerateDataKey': return { KeyId: keyId, KeySpec: 'AES_256' };
    case 'GenerateRandom': return { NumberOfBytes: 16 };
    default: throw new Error(operation);
  }
}

beforeAll(async () => {
  kms = await startDevKms({ credentials: [{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET }] });
  keyId = ((await call('CreateKey', {})).json.KeyMetadata as Record<string, string>).KeyId!;
  blob = (await call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('p').toString('base64') })).json.CiphertextBlob as string;
});
afterAll(() => kms.close());

describe.each(Object.entries(REFERENCE))('%s matches the API reference', (operation, shape) => {
  it('succeeds with only the required members and returns only reference members', async () => {
    const res = await call(operation, minimalRequest(operation));
    expect(res.status).toBe(200);
    for (const member of Object.keys(res.json)) expect(shape.responseMembers).toContain(member);
    for (const member of shape.responseAlways) expect(res.json).toHaveProperty(member);
  });

  it('accepts every member the reference lists (never "Unknown member")', async () => {
    const body: Record<string, unknown> = {};
    for (const member of [...shape.requestRequired, ...shape.requestOptional]) body[member] = sampleValue(member);
    const res = await call(operation, body);
    expect(String(res.json.message ?? '')).not.toMatch(/Unknown member/);
    expect(res.json.__type).not.toBe('SerializationException');
  });

  it('refuses a member the reference does not list', async () => {
    const res = await call(operation, { ...minimalRequest(operation), NotAKmsMember: 1 });
    expect([res.status, res.json.__type]).toEqual([400, 'SerializationException']);
  });

  if (shape.requestRequired.length > 0) {
    it.each(shape.requestRequired)('refuses a request without %s (ValidationException)', async (member) => {
      const body = minimalRequest(operation);
      delete body[member];
      const res = await call(operation, body);
      expect([res.status, res.json.__type]).toEqual([400, 'ValidationException']);
      expect(res.json.message).toMatch(/Member must not be null|Please specify/);
    });
  }
});

describe('KeyMetadata matches the API reference', () => {
  it('has only reference members, with the right JSON types', async () => {
    const res = await call('DescribeKey', { KeyId: keyId });
    const meta = res.json.KeyMetadata as Record<string, unknown>;
    for (const member of Object.keys(meta)) expect(KEY_METADATA_MEMBERS).toContain(member);
    expect(typeof meta.KeyId).toBe('string');
    expect(typeof meta.CreationDate).toBe('number'); // timestamps are epoch seconds in JSON 1.1
    expect(typeof meta.Enabled).toBe('boolean');
    expect(meta.EncryptionAlgorithms).toEqual(['SYMMETRIC_DEFAULT']);
    expect(meta.Arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${keyId}`);
  });
});

describe('errors have the AWS JSON 1.1 shape', () => {
  it('is {"__type", "message"} and nothing else', async () => {
    const res = await call('DescribeKey', { KeyId: '00000000-0000-0000-0000-000000000000' });
    expect(res.status).toBe(404);
    expect(Object.keys(res.json).sort()).toEqual(['__type', 'message']);
    expect(res.json.__type).toBe('NotFoundException');
  });
});
