/**
 * infra/tools/kms-policy.ts (measurement policy file → KMS key policy) and infra/nitro/measurements.ts
 * (nitro-cli build output → measurement policy file). The generated policy is parsed and evaluated
 * by the dev KMS's own policy engine, and driven end to end through the dev KMS with the real
 * @aws-sdk/client-kms and attestation documents from the dev attester.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { fromHex, randomBytes, toHex } from '../../attestation/bytes';
import { DevAttester } from '../../attestation/dev/dev-attester';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { isTeegateError } from '../../attestation/errors';
import { makePolicyFile, parsePolicyFile, type LoadedPolicy } from '../../attestation/policy-file';
import { decryptEnvelopedData } from '../../enclave/kms/cms-enveloped-data';
import { startDevKms, type DevKms } from '../../infra/dev-kms/main';
import { evaluateKeyPolicy, parseKeyPolicy, recipientConditionKeys, type PolicyDecision } from '../../infra/dev-kms/policy';
import { policyFromBuildOutput } from '../../infra/nitro/measurements';
import { KEY_ADMIN_ACTIONS, buildBootstrapKeyPolicy, buildKmsKeyPolicy, loadPolicyText, main } from '../../infra/tools/kms-policy';

const ACCOUNT = '111122223333';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/teegate-enclave-host`;
const ROOT = `arn:aws:iam::${ACCOUNT}:root`;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const pcr = (): string => toHex(randomBytes(48));
const image = (pcrs: Record<number, string> = { 0: pcr(), 1: pcr(), 2: pcr() }): LoadedPolicy => parsePolicyFile(makePolicyFile(pcrs));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isTeegateError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a TeegateError');
}

/** Evaluates `action` by `principal` with an attestation carrying `pcrs` (hex by index), or none. */
function decide(policyJson: string, action: string, principal: string, pcrs?: Record<number, string>): PolicyDecision['decision'] {
  const conditionKeys = pcrs ? recipientConditionKeys(new Map(Object.entries(pcrs).map(([k, v]) => [Number(k), fromHex(v)]))) : {};
  return evaluateKeyPolicy(parseKeyPolicy(policyJson), { action, principalArn: principal, principalAccount: ACCOUNT, resourceArn: KEY_ARN, conditionKeys }).decision;
}

describe('KMS key policy from a measurement policy file', () => {
  const pcrs = { 0: pcr(), 1: pcr(), 2: pcr() };
  const json = JSON.stringify(buildKmsKeyPolicy([image(pcrs)], { accountId: ACCOUNT, enclaveRoleArn: ROLE }));

  it('is accepted by the dev KMS policy parser', () => {
    expect(parseKeyPolicy(json).statements).toHaveLength(4);
  });

  it('pins PCR0 as kms:RecipientAttestation:ImageSha384 with StringEqualsIgnoreCase, and PCR1, PCR2', () => {
    const allow = JSON.parse(json).Statement.find((s: { Sid: string }) => s.Sid === 'EnclaveDecryptImage1');
    expect(allow).toEqual({
      Sid: 'EnclaveDecryptImage1',
      Effect: 'Allow',
      Principal: { AWS: ROLE },
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: {
        StringEqualsIgnoreCase: {
          'kms:RecipientAttestation:ImageSha384': pcrs[0],
          'kms:RecipientAttestation:PCR1': pcrs[1],
          'kms:RecipientAttestation:PCR2': pcrs[2],
        },
      },
    });
  });

  it('allows Decrypt by the enclave role with the measured image', () => {
    expect(decide(json, 'kms:Decrypt', ROLE, pcrs)).toBe('allow');
  });

  it('denies Decrypt with another PCR0, explicitly', () => {
    expect(decide(json, 'kms:Decrypt', ROLE, { ...pcrs, 0: pcr() })).toBe('explicit-deny');
  });

  it('denies Decrypt with the right PCR0 but another PCR1 or PCR2', () => {
    expect(decide(json, 'kms:Decrypt', ROLE, { ...pcrs, 1: pcr() })).toBe('implicit-deny');
    expect(decide(json, 'kms:Decrypt', ROLE, { ...pcrs, 2: pcr() })).toBe('implicit-deny');
  });

  it('denies Decrypt without an attestation document, to everyone including the account root', () => {
    expect(decide(json, 'kms:Decrypt', ROLE)).toBe('explicit-deny');
    expect(decide(json, 'kms:Decrypt', ROOT)).toBe('explicit-deny');
  });

  it('denies a debug-mode enclave (PCR0 all zero)', () => {
    expect(decide(json, 'kms:Decrypt', ROLE, { 0: '00'.repeat(48), 1: '00'.repeat(48), 2: '00'.repeat(48) })).toBe('explicit-deny');
  });

  it('lets the admin manage the key (PutKeyPolicy for rollouts) and seal models, and the role nothing else', () => {
    expect(decide(json, 'kms:PutKeyPolicy', ROOT)).toBe('allow');
    expect(decide(json, 'kms:ScheduleKeyDeletion', ROOT)).toBe('allow');
    expect(decide(json, 'kms:GenerateDataKey', ROOT)).toBe('allow');
    expect(decide(json, 'kms:CreateGrant', ROOT)).toBe('implicit-deny');
    expect(decide(json, 'kms:ReEncryptFrom', ROOT)).toBe('implicit-deny');
    // The account root stands for every principal of the account whose IAM policies allow it (AWS's
    // delegation, which the dev KMS models as "IAM allows everything"); Decrypt stays denied for all.
    expect(decide(json, 'kms:PutKeyPolicy', ROLE)).toBe('allow');
    expect(decide(json, 'kms:Decrypt', ROLE)).toBe('explicit-deny');
    // With a dedicated admin the enclave role can do nothing but attested Decrypt.
    const admin = `arn:aws:iam::${ACCOUNT}:role/key-admin`;
    const strict = JSON.stringify(buildKmsKeyPolicy([image(pcrs)], { accountId: ACCOUNT, enclaveRoleArn: ROLE, adminArn: admin }));
    for (const action of ['kms:PutKeyPolicy', 'kms:GenerateDataKey', 'kms:Encrypt', 'kms:CreateGrant', 'kms:ScheduleKeyDeletion']) {
      expect(decide(strict, action, ROLE, pcrs)).toBe('implicit-deny');
    }
    expect(KEY_ADMIN_ACTIONS.some((a) => /decrypt|encrypt|grant$/i.test(a) && a !== 'kms:RevokeGrant' && a !== 'kms:ListGrants')).toBe(false);
  });

  it('compares PCRs ignoring case: an upper-case policy file matches the lower-case document', () => {
    const upper = { 0: pcrs[0].toUpperCase(), 1: pcrs[1].toUpperCase() };
    const policy = JSON.stringify(buildKmsKeyPolicy([image(upper)], { accountId: ACCOUNT, enclaveRoleArn: ROLE }));
    expect(decide(policy, 'kms:Decrypt', ROLE, pcrs)).toBe('allow');
  });

  it('allows the old and the new image during a rollout, and no third one', () => {
    const old = { 0: pcr(), 1: pcr(), 2: pcr() };
    const next = { 0: pcr(), 1: pcr(), 2: pcr() };
    const both = JSON.stringify(buildKmsKeyPolicy([image(old), image(next)], { accountId: ACCOUNT, enclaveRoleArn: ROLE }));
    expect(decide(both, 'kms:Decrypt', ROLE, old)).toBe('allow');
    expect(decide(both, 'kms:Decrypt', ROLE, next)).toBe('allow');
    expect(decide(both, 'kms:Decrypt', ROLE, { ...next, 0: pcr() })).toBe('explicit-deny');
    // Each image's PCRs stay together: the new PCR0 with the old PCR1 is not allowed.
    expect(decide(both, 'kms:Decrypt', ROLE, { ...next, 1: old[1] })).toBe('implicit-deny');
    // After retirement only the new image remains.
    const retired = JSON.stringify(buildKmsKeyPolicy([image(next)], { accountId: ACCOUNT, enclaveRoleArn: ROLE }));
    expect(decide(retired, 'kms:Decrypt', ROLE, old)).toBe('explicit-deny');
  });

  it('takes a separate admin and sealer, in the same partition', () => {
    const admin = `arn:aws:iam::${ACCOUNT}:role/key-admin`;
    const sealer = `arn:aws:iam::${ACCOUNT}:user/ci-sealer`;
    const policy = JSON.stringify(buildKmsKeyPolicy([image(pcrs)], { accountId: ACCOUNT, enclaveRoleArn: ROLE, adminArn: admin, sealerArn: sealer }));
    expect(decide(policy, 'kms:PutKeyPolicy', admin)).toBe('allow');
    expect(decide(policy, 'kms:GenerateDataKey', sealer)).toBe('allow');
    expect(decide(policy, 'kms:GenerateDataKey', admin)).toBe('implicit-deny');
    expect(decide(policy, 'kms:PutKeyPolicy', sealer)).toBe('implicit-deny');
    const cn = buildKmsKeyPolicy([image(pcrs)], { accountId: ACCOUNT, enclaveRoleArn: `arn:aws-cn:iam::${ACCOUNT}:role/x` });
    expect(cn.Statement[0]!.Principal).toEqual({ AWS: `arn:aws-cn:iam::${ACCOUNT}:root` });
  });
});

describe('bootstrap key policy (before any image is measured)', () => {
  const json = JSON.stringify(buildBootstrapKeyPolicy({ accountId: ACCOUNT, enclaveRoleArn: ROLE }));
  it('lets the admin seal models and manage the key, and denies Decrypt to everyone, attested or not', () => {
    expect(parseKeyPolicy(json).statements.length).toBeGreaterThan(0);
    expect(decide(json, 'kms:GenerateDataKey', ROOT)).toBe('allow');
    expect(decide(json, 'kms:PutKeyPolicy', ROOT)).toBe('allow');
    expect(decide(json, 'kms:Decrypt', ROOT)).toBe('explicit-deny');
    expect(decide(json, 'kms:Decrypt', ROLE, { 0: pcr(), 1: pcr(), 2: pcr() })).toBe('explicit-deny');
  });
  it('checks the account and the ARNs like the final policy', () => {
    expect(code(() => buildBootstrapKeyPolicy({ accountId: 'x', enclaveRoleArn: ROLE }))).toBe('KEY_POLICY_INPUT_INVALID');
    expect(code(() => buildBootstrapKeyPolicy({ accountId: ACCOUNT, enclaveRoleArn: 'arn:aws:iam::999988887777:role/x' }))).toBe('KEY_POLICY_INPUT_INVALID');
    expect(code(() => buildBootstrapKeyPolicy({ accountId: ACCOUNT, enclaveRoleArn: ROLE, sealerArn: 'nobody' }))).toBe('KEY_POLICY_INPUT_INVALID');
  });
  it('is what --bootstrap prints, and --bootstrap with --policy is a usage error', () => {
    let out = '';
    expect(main(['--bootstrap', '--account', ACCOUNT, '--role-arn', ROLE], { stdout: (s) => (out += s), stderr: () => undefined })).toBe(0);
    expect(JSON.parse(out)).toEqual(JSON.parse(json));
    expect(main(['--bootstrap', '--policy', 'x.json', '--account', ACCOUNT, '--role-arn', ROLE], { stdout: () => undefined, stderr: () => undefined })).toBe(2);
  });
});

describe('KMS key policy generator refuses unsafe or malformed input (KEY_POLICY_INPUT_INVALID)', () => {
  const opts = { accountId: ACCOUNT, enclaveRoleArn: ROLE };
  it.each([
    ['no PCR0', () => buildKmsKeyPolicy([image({ 1: pcr(), 2: pcr() })], opts)],
    ['allowDebug', () => buildKmsKeyPolicy([parsePolicyFile(makePolicyFile({ 0: pcr() }, { allowDebug: true }))], opts)],
    ['PCR0 all zero', () => buildKmsKeyPolicy([image({ 0: '00'.repeat(48) })], opts)],
    ['PCR0 not SHA-384', () => buildKmsKeyPolicy([image({ 0: toHex(randomBytes(32)) })], opts)],
    ['no policy', () => buildKmsKeyPolicy([], opts)],
    ['account not 12 digits', () => buildKmsKeyPolicy([image()], { ...opts, accountId: '12345' })],
    ['role in another account', () => buildKmsKeyPolicy([image()], { ...opts, enclaveRoleArn: 'arn:aws:iam::999988887777:role/x' })],
    ['role ARN is a user', () => buildKmsKeyPolicy([image()], { ...opts, enclaveRoleArn: `arn:aws:iam::${ACCOUNT}:user/x` })],
    ['role ARN malformed', () => buildKmsKeyPolicy([image()], { ...opts, enclaveRoleArn: 'teegate-enclave-host' })],
    ['admin ARN with a wildcard', () => buildKmsKeyPolicy([image()], { ...opts, adminArn: '*' })],
    ['sealer in another account', () => buildKmsKeyPolicy([image()], { ...opts, sealerArn: 'arn:aws:iam::999988887777:root' })],
  ])('%s', (_name, fn) => {
    expect(code(fn)).toBe('KEY_POLICY_INPUT_INVALID');
  });

  it('a policy file that is not JSON or not the format is POLICY_INVALID', () => {
    expect(code(() => loadPolicyText('{', 'x.json'))).toBe('POLICY_INVALID');
    expect(code(() => loadPolicyText(JSON.stringify({ format: 'teegate-measurement-policy', version: 1, pcrs: {}, pcr0: 'typo' }), 'x.json'))).toBe('POLICY_INVALID');
  });
});

describe('kms-policy command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kms-policy-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function run(args: string[]): { exit: number; out: string; err: string } {
    let out = '';
    let err = '';
    const exit = main(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
    return { exit, out, err };
  }

  it('prints the policy for --policy FILE --account ID --role-arn ARN, or writes --out', () => {
    const pcrs = { 0: pcr(), 1: pcr(), 2: pcr() };
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify(makePolicyFile(pcrs)));
    const { exit, out } = run(['--policy', file, '--account', ACCOUNT, '--role-arn', ROLE]);
    expect(exit).toBe(0);
    expect(decide(out, 'kms:Decrypt', ROLE, pcrs)).toBe('allow');
    const target = join(dir, 'key-policy.json');
    expect(run(['--policy', file, '--account', ACCOUNT, '--role-arn', ROLE, '--out', target]).exit).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe(out);
  });

  it('exits 1 with the code on refused input, 2 on usage and I/O errors', () => {
    const debug = join(dir, 'debug.json');
    writeFileSync(debug, JSON.stringify(makePolicyFile({ 0: pcr() }, { allowDebug: true })));
    const refused = run(['--policy', debug, '--account', ACCOUNT, '--role-arn', ROLE]);
    expect(refused.exit).toBe(1);
    expect(refused.err).toContain('KEY_POLICY_INPUT_INVALID');
    expect(run(['--account', ACCOUNT, '--role-arn', ROLE]).exit).toBe(2);
    expect(run(['--policy', debug, '--bogus']).exit).toBe(2);
    const missing = run(['--policy', join(dir, 'missing.json'), '--account', ACCOUNT, '--role-arn', ROLE]);
    expect(missing.exit).toBe(2);
    expect(missing.err).toContain('ENOENT');
  });
});

describe('measurement policy from nitro-cli build-enclave output', () => {
  // The shape nitro-cli build-enclave and describe-eif print (AWS Nitro Enclaves user guide).
  const output = { Measurements: { HashAlgorithm: 'Sha384 { ... }', PCR0: pcr().toUpperCase(), PCR1: pcr(), PCR2: pcr() } };

  it('records PCR0, PCR1 and PCR2, never allows debug, and reads back with parsePolicyFile', () => {
    const file = policyFromBuildOutput(output, { name: 'teegate-enclave', source: 'git 1234abcd', builtAt: '2026-11-24T00:00:00Z', maxAgeSeconds: 300 });
    expect(file).toEqual({
      format: 'teegate-measurement-policy',
      version: 1,
      pcrs: { 0: output.Measurements.PCR0.toLowerCase(), 1: output.Measurements.PCR1, 2: output.Measurements.PCR2 },
      allowDebug: false,
      maxAgeSeconds: 300,
      image: { name: 'teegate-enclave', builtAt: '2026-11-24T00:00:00Z', source: 'git 1234abcd' },
    });
    expect(parsePolicyFile(JSON.parse(JSON.stringify(file))).policy.pcrs).toEqual({ 0: file.pcrs['0'], 1: file.pcrs['1'], 2: file.pcrs['2'] });
  });

  it('keeps PCR8 of a signed image and feeds the KMS policy generator', () => {
    const signed = { Measurements: { ...output.Measurements, PCR8: pcr() } };
    const file = policyFromBuildOutput(signed);
    expect(file.pcrs['8']).toBe(signed.Measurements.PCR8);
    const policy = JSON.stringify(buildKmsKeyPolicy([parsePolicyFile(file)], { accountId: ACCOUNT, enclaveRoleArn: ROLE }));
    const doc = { 0: file.pcrs['0']!, 1: file.pcrs['1']!, 2: file.pcrs['2']!, 8: file.pcrs['8']! };
    expect(decide(policy, 'kms:Decrypt', ROLE, doc)).toBe('allow');
    expect(decide(policy, 'kms:Decrypt', ROLE, { ...doc, 8: pcr() })).toBe('implicit-deny');
  });

  it.each([
    ['not an object', []],
    ['no PCR2', { Measurements: { HashAlgorithm: 'Sha384 { ... }', PCR0: pcr(), PCR1: pcr() } }],
    ['PCR1 not hex', { Measurements: { ...output.Measurements, PCR1: 'zz'.repeat(48) } }],
    ['PCR0 all zero (debug build output)', { Measurements: { ...output.Measurements, PCR0: '0'.repeat(96) } }],
    ['PCR8 truncated', { Measurements: { ...output.Measurements, PCR8: pcr().slice(2) } }],
    ['another hash algorithm', { Measurements: { ...output.Measurements, HashAlgorithm: 'Sha256 { ... }' } }],
  ])('refuses %s', (_name, bad) => {
    expect(code(() => policyFromBuildOutput(bad))).toBe('KEY_POLICY_INPUT_INVALID');
  });
});

describe('generated key policy in the dev KMS, with the real AWS SDK and dev-attester documents', () => {
  const SEALER = { accessKeyId: 'AKIDSEALER', secretAccessKey: 'sealer-secret-0123456789', principalArn: `arn:aws:iam::${ACCOUNT}:user/sealer` };
  const ENCLAVE = { accessKeyId: 'AKIDENCLAVE', secretAccessKey: 'enclave-secret-0123456789', principalArn: ROLE };
  let kms: DevKms;
  afterAll(async () => kms?.close());

  const client = (c: { accessKeyId: string; secretAccessKey: string }) =>
    new KMSClient({ endpoint: kms.url, region: 'us-east-1', credentials: c, maxAttempts: 1 });

  async function rejectionName(promise: Promise<unknown>): Promise<string> {
    try {
      await promise;
    } catch (err) {
      return (err as Error).name;
    }
    return 'resolved';
  }

  it('releases the sealed data key only to the measured image', async () => {
    const ca = await createDevCa();
    const pcrsOf = () => new Map([0, 1, 2].map((i) => [i, randomBytes(48)] as const));
    const measured = pcrsOf();
    const policyFile = makePolicyFile(Object.fromEntries([...measured].map(([i, v]) => [i, toHex(v)])));
    const keyPolicy = buildKmsKeyPolicy([parsePolicyFile(policyFile)], { accountId: ACCOUNT, enclaveRoleArn: ROLE, sealerArn: SEALER.principalArn });
    kms = await startDevKms({ credentials: [SEALER, ENCLAVE], accountId: ACCOUNT, attestationRoots: [ca.rootPem] });

    const sealer = client(SEALER);
    const enclave = client(ENCLAVE);
    const keyId = (await sealer.send(new CreateKeyCommand({ Policy: JSON.stringify(keyPolicy) }))).KeyMetadata!.KeyId!;
    const sealed = await sealer.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));

    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
    const recipientFrom = async (pcrs: Map<number, Uint8Array>) => ({
      AttestationDocument: await (await DevAttester.create({ ca, pcrs })).attest({ publicKey: spki }),
      KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const,
    });

    const released = await enclave.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, Recipient: await recipientFrom(measured) }));
    expect(Buffer.from(decryptEnvelopedData(released.CiphertextForRecipient!, privateKey)).equals(Buffer.from(sealed.Plaintext!))).toBe(true);

    expect(await rejectionName(enclave.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, Recipient: await recipientFrom(pcrsOf()) })))).toBe('AccessDeniedException');
    expect(await rejectionName(enclave.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })))).toBe('AccessDeniedException');
    expect(await rejectionName(sealer.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })))).toBe('AccessDeniedException');
  });
});
