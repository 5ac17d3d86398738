/**
 * Key policy evaluation of the dev KMS (infra/dev-kms/policy.ts). The Nitro statements follow
 * the examples of https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html.
 */
import {
  MalformedPolicyError,
  defaultKeyPolicy,
  encryptionContextConditionKeys,
  evaluateKeyPolicy,
  parseKeyPolicy,
  recipientConditionKeys,
  wildcardMatch,
  type PolicyRequest,
} from '../../infra/dev-kms/policy';
import fc from 'fast-check';

const ACCOUNT = '111122223333';
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const USER = `arn:aws:iam::${ACCOUNT}:user/dev`;
const PCR0 = 'ab'.repeat(48);
const PCR8 = 'cd'.repeat(48);

function request(action: string, conditionKeys: Record<string, string> = {}, principalArn = USER): PolicyRequest {
  return { action, principalArn, principalAccount: principalArn.split(':')[4]!, resourceArn: KEY_ARN, conditionKeys };
}

function enclavePolicy(condition: Record<string, unknown>): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'admin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: ['kms:Create*', 'kms:Describe*', 'kms:PutKeyPolicy', 'kms:Encrypt', 'kms:GenerateDataKeyWithoutPlaintext'], Resource: '*' },
      { Sid: 'enclave', Effect: 'Allow', Principal: { AWS: USER }, Action: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateRandom'], Resource: '*', Condition: condition },
    ],
  });
}

const nitroKeys = (pcr0: string, pcr8 = PCR8) =>
  recipientConditionKeys(new Map([[0, Buffer.from(pcr0, 'hex')], [8, Buffer.from(pcr8, 'hex')]]));

describe('default key policy', () => {
  const policy = parseKeyPolicy(defaultKeyPolicy(ACCOUNT));
  it('allows every action to every principal of the account', () => {
    for (const action of ['kms:Decrypt', 'kms:Encrypt', 'kms:PutKeyPolicy', 'kms:GenerateDataKey']) {
      expect(evaluateKeyPolicy(policy, request(action)).decision).toBe('allow');
    }
  });
  it('denies principals of another account', () => {
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', {}, 'arn:aws:iam::444455556666:user/x')).decision).toBe('implicit-deny');
  });
});

describe('Nitro attestation conditions', () => {
  const byImage = parseKeyPolicy(enclavePolicy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': PCR0 } }));

  it('exposes PCR0 as ImageSha384 and every PCR as PCR<n>, lowercase hex', () => {
    const keys = nitroKeys(PCR0);
    expect(keys['kms:RecipientAttestation:ImageSha384']).toBe(PCR0);
    expect(keys['kms:RecipientAttestation:PCR0']).toBe(PCR0);
    expect(keys['kms:RecipientAttestation:PCR8']).toBe(PCR8);
  });

  it('allows Decrypt when the attested image matches', () => {
    expect(evaluateKeyPolicy(byImage, request('kms:Decrypt', nitroKeys(PCR0)))).toEqual({ decision: 'allow', sid: 'enclave' });
  });

  it('compares ignoring case under StringEqualsIgnoreCase', () => {
    const upper = parseKeyPolicy(enclavePolicy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': PCR0.toUpperCase() } }));
    expect(evaluateKeyPolicy(upper, request('kms:Decrypt', nitroKeys(PCR0))).decision).toBe('allow');
  });

  it('is case-sensitive under StringEquals (AWS documents lowercase hex)', () => {
    const upper = parseKeyPolicy(enclavePolicy({ StringEquals: { 'kms:RecipientAttestation:ImageSha384': PCR0.toUpperCase() } }));
    expect(evaluateKeyPolicy(upper, request('kms:Decrypt', nitroKeys(PCR0))).decision).toBe('implicit-deny');
    const lower = parseKeyPolicy(enclavePolicy({ StringEquals: { 'kms:RecipientAttestation:ImageSha384': PCR0 } }));
    expect(evaluateKeyPolicy(lower, request('kms:Decrypt', nitroKeys(PCR0))).decision).toBe('allow');
  });

  it('denies another image', () => {
    expect(evaluateKeyPolicy(byImage, request('kms:Decrypt', nitroKeys('ef'.repeat(48)))).decision).toBe('implicit-deny');
  });

  it('denies a request without an attestation document', () => {
    expect(evaluateKeyPolicy(byImage, request('kms:Decrypt')).decision).toBe('implicit-deny');
    expect(evaluateKeyPolicy(byImage, request('kms:GenerateDataKey')).decision).toBe('implicit-deny');
  });

  it('ANDs several PCR conditions and ORs a list of values', () => {
    const both = parseKeyPolicy(
      enclavePolicy({
        StringEqualsIgnoreCase: { 'kms:RecipientAttestation:PCR0': ['00'.repeat(48), PCR0], 'kms:RecipientAttestation:PCR8': PCR8 },
      }),
    );
    expect(evaluateKeyPolicy(both, request('kms:GenerateRandom', nitroKeys(PCR0))).decision).toBe('allow');
    expect(evaluateKeyPolicy(both, request('kms:GenerateRandom', nitroKeys(PCR0, '11'.repeat(48)))).decision).toBe('implicit-deny');
  });

  it('matches condition key names case-insensitively', () => {
    const mixed = parseKeyPolicy(enclavePolicy({ StringEquals: { 'KMS:recipientattestation:imagesha384': PCR0 } }));
    expect(evaluateKeyPolicy(mixed, request('kms:Decrypt', nitroKeys(PCR0))).decision).toBe('allow');
  });

  it('does not let the condition-free admin statement grant Decrypt', () => {
    expect(evaluateKeyPolicy(byImage, request('kms:Decrypt', nitroKeys('ef'.repeat(48)))).decision).toBe('implicit-deny');
    expect(evaluateKeyPolicy(byImage, request('kms:Encrypt')).decision).toBe('allow');
  });
});

describe('statement semantics', () => {
  it('lets an explicit Deny override an Allow', () => {
    const policy = parseKeyPolicy(
      JSON.stringify({
        Statement: [
          { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' },
          { Sid: 'no-debug', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:RecipientAttestation:PCR0': '00'.repeat(48) } } },
        ],
      }),
    );
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', nitroKeys('00'.repeat(48))))).toEqual({ decision: 'explicit-deny', sid: 'no-debug' });
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', nitroKeys(PCR0))).decision).toBe('allow');
  });

  it('matches action wildcards case-insensitively and honours NotAction', () => {
    const policy = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: { AWS: USER }, NotAction: 'kms:Decrypt', Resource: '*' } }));
    expect(evaluateKeyPolicy(policy, request('kms:Encrypt')).decision).toBe('allow');
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt')).decision).toBe('implicit-deny');
    const wild = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'KMS:generate*', Resource: KEY_ARN } }));
    expect(evaluateKeyPolicy(wild, request('kms:GenerateDataKey')).decision).toBe('allow');
    expect(evaluateKeyPolicy(wild, request('kms:Encrypt')).decision).toBe('implicit-deny');
  });

  it('checks the resource', () => {
    const policy = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: 'arn:aws:kms:us-east-1:111122223333:key/other' } }));
    expect(evaluateKeyPolicy(policy, request('kms:Encrypt')).decision).toBe('implicit-deny');
  });

  it('treats a missing key as failing StringEquals and satisfying StringNotEquals, and IfExists as passing', () => {
    const not = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringNotEquals: { 'kms:EncryptionContext:tenant': 'evil' } } } }));
    expect(evaluateKeyPolicy(not, request('kms:Encrypt')).decision).toBe('allow');
    expect(evaluateKeyPolicy(not, request('kms:Encrypt', encryptionContextConditionKeys({ tenant: 'evil' }))).decision).toBe('implicit-deny');
    const ifExists = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'a' } } } }));
    expect(evaluateKeyPolicy(ifExists, request('kms:Encrypt')).decision).toBe('allow');
    expect(evaluateKeyPolicy(ifExists, request('kms:Encrypt', { 'kms:EncryptionContext:tenant': 'b' })).decision).toBe('implicit-deny');
  });

  it('evaluates kms:EncryptionContext:<key>, StringLike and Null', () => {
    const policy = parseKeyPolicy(
      JSON.stringify({
        Statement: {
          Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*',
          Condition: { StringLike: { 'kms:EncryptionContext:model': 'demo-*' }, Null: { 'kms:EncryptionContext:debug': 'true' } },
        },
      }),
    );
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', encryptionContextConditionKeys({ model: 'demo-ocr' }))).decision).toBe('allow');
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', encryptionContextConditionKeys({ model: 'prod' }))).decision).toBe('implicit-deny');
    expect(evaluateKeyPolicy(policy, request('kms:Decrypt', encryptionContextConditionKeys({ model: 'demo-x', debug: '1' }))).decision).toBe('implicit-deny');
  });
});

describe('malformed policies are rejected, never partly applied', () => {
  const cases: Array<[string, string]> = [
    ['not JSON', '{'],
    ['no statement', JSON.stringify({ Version: '2012-10-17', Statement: [] })],
    ['bad effect', JSON.stringify({ Statement: { Effect: 'Maybe', Principal: '*', Action: 'kms:*', Resource: '*' } })],
    ['no principal', JSON.stringify({ Statement: { Effect: 'Allow', Action: 'kms:*', Resource: '*' } })],
    ['unknown operator', JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { NumericEquals: { x: '1' } } } })],
    ['set operator', JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { 'ForAnyValue:StringEquals': { x: 'a' } } } })],
    ['non-string value', JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { x: 5 } } } })],
    ['Action and NotAction', JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', NotAction: 'kms:Decrypt', Resource: '*' } })],
    ['unknown element', JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Extra: 1 } })],
    ['service principal', JSON.stringify({ Statement: { Effect: 'Allow', Principal: { Service: 'x' }, Action: 'kms:*', Resource: '*' } })],
    ['bad version', JSON.stringify({ Version: '2020-01-01', Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' } })],
    ['too long', ' '.repeat(32769)],
  ];
  it.each(cases)('%s', (_name, text) => {
    expect(() => parseKeyPolicy(text)).toThrow(MalformedPolicyError);
  });
});

describe('wildcardMatch (StringLike, actions, resources)', () => {
  /** The regex form it replaced, as the reference on inputs small enough for backtracking. */
  const reference = (pattern: string, value: string, ignoreCase: boolean): boolean =>
    new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, ignoreCase ? 'is' : 's').test(value);

  it('agrees with the regex form on any pattern of *, ? and letters', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', 'A', '*', '?', '.', '\n'), maxLength: 8 });
    fc.assert(
      fc.property(text, fc.string({ unit: fc.constantFrom('a', 'b', 'A', '.', '\n', '*'), maxLength: 10 }), fc.boolean(), (pattern, value, ignoreCase) => {
        expect(wildcardMatch(pattern, value, ignoreCase)).toBe(reference(pattern, value, ignoreCase));
      }),
      { numRuns: 2000 },
    );
  });

  it('answers a caller-supplied value of 256 KiB against *a*a*a*b at once (the regex form never finished)', () => {
    expect(wildcardMatch('*a*a*a*b', 'a'.repeat(256 * 1024), false)).toBe(false);
    expect(wildcardMatch('*a*a*a*b', `${'a'.repeat(256 * 1024)}b`, false)).toBe(true);
  });
});
