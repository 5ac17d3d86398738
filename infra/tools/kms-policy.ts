/**
 * The KMS key policy of a teegate deployment, generated from measurement policy files
 * (docs/policy.md): the enclave's instance role may call kms:Decrypt only with a Nitro attestation
 * document whose PCR0 (`kms:RecipientAttestation:ImageSha384`) is one of the measured images, and
 * nobody may Decrypt without one (an explicit Deny, which also overrides grants and IAM policies).
 * Condition keys: https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html
 *
 *   node bin/run-ts infra/tools/kms-policy.ts --policy FILE [--policy FILE]... --account ID
 *     --role-arn ARN [--admin-arn ARN] [--sealer-arn ARN] [--out FILE]
 *   node bin/run-ts infra/tools/kms-policy.ts --bootstrap --account ID --role-arn ARN ...
 *
 * Several --policy files allow several images at once: during a rollout, the old and the new one.
 * --bootstrap: the policy before any image is measured (sealing allowed, Decrypt denied to all).
 * Exit: 0 written, 1 input refused (CODE: message), 2 usage or I/O error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { parsePolicyFile, type LoadedPolicy } from '../../attestation/policy-file';

export interface KmsKeyPolicyOptions {
  /** The AWS account that owns the key: twelve digits. */
  readonly accountId: string;
  /** The enclave host's instance role, the only principal that may Decrypt (with attestation). */
  readonly enclaveRoleArn: string;
  /** Who administers the key (PutKeyPolicy for rollouts, deletion); default the account root. */
  readonly adminArn?: string;
  /** Who seals models (GenerateDataKey without attestation); default `adminArn`. */
  readonly sealerArn?: string;
}

export interface KmsPolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal: '*' | { readonly AWS: string };
  readonly Action: string | readonly string[];
  readonly Resource: '*';
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

export interface KmsKeyPolicy {
  readonly Version: '2012-10-17';
  readonly Id: string;
  readonly Statement: readonly KmsPolicyStatement[];
}

/** PCRs KMS can check besides PCR0 (ImageSha384): the ones Nitro measures at launch. */
export const KMS_CHECKED_PCRS: readonly number[] = [1, 2, 3, 4, 8];

/** Key management without any use of the key material (no Decrypt, ReEncrypt or CreateGrant). */
export const KEY_ADMIN_ACTIONS: readonly string[] = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:ListKeyPolicies',
  'kms:GetKeyRotationStatus',
  'kms:EnableKeyRotation',
  'kms:DisableKeyRotation',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:UpdateKeyDescription',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:ListGrants',
  'kms:RevokeGrant',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

const IMAGE_SHA384 = 'kms:RecipientAttestation:ImageSha384';

function refuse(message: string): never {
  throw new TeegateError('KEY_POLICY_INPUT_INVALID', `KMS key policy: ${message}`);
}

const IAM_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):(root|role\/[A-Za-z0-9+=,.@_\/-]{1,512}|user\/[A-Za-z0-9+=,.@_\/-]{1,512})$/;

function checkArn(arn: string, what: string, accountId: string, roleOnly: boolean): string {
  const m = IAM_ARN.exec(arn);
  if (!m) refuse(`${what} ${JSON.stringify(arn)} is not an IAM ARN (arn:aws:iam::<account>:role/<name>)`);
  if (m[2] !== accountId) refuse(`${what} ${arn} is not in account ${accountId}`);
  if (roleOnly && !m[3]!.startsWith('role/')) refuse(`${what} ${arn} must be an IAM role`);
  return m[1]!;
}

/** The PCRs of one image that KMS will check, lower-case hex; refuses what must never get a key. */
function imageConditions(loaded: LoadedPolicy, index: number): Record<string, string> {
  const where = `measurement policy ${index + 1}`;
  if (loaded.policy.allowDebug) refuse(`${where} allows debug-mode enclaves, whose memory the parent instance can read: never give them a key`);
  const pcrs = loaded.policy.pcrs ?? {};
  const pcr0 = pcrs[0];
  if (pcr0 === undefined) refuse(`${where} does not pin PCR0 (the image measurement)`);
  if (!/^[0-9a-f]{96}$/.test(pcr0)) refuse(`${where}: PCR0 must be a SHA-384 (96 hex digits)`);
  if (/^0+$/.test(pcr0)) refuse(`${where}: PCR0 is all zero (a debug-mode enclave)`);
  const out: Record<string, string> = { [IMAGE_SHA384]: pcr0 };
  for (const n of KMS_CHECKED_PCRS) {
    const value = pcrs[n];
    if (value !== undefined) out[`kms:RecipientAttestation:PCR${n}`] = value;
  }
  return out;
}

/**
 * Checks the account and ARNs and returns the statements both policies share: key administration
 * (never Decrypt) and sealing (GenerateDataKey).
 */
function operatorStatements(options: KmsKeyPolicyOptions): KmsPolicyStatement[] {
  if (!/^\d{12}$/.test(options.accountId)) refuse(`account ${JSON.stringify(options.accountId)} must be twelve digits`);
  const partition = checkArn(options.enclaveRoleArn, 'role ARN', options.accountId, true);
  const adminArn = options.adminArn ?? `arn:${partition}:iam::${options.accountId}:root`;
  checkArn(adminArn, 'admin ARN', options.accountId, false);
  const sealerArn = options.sealerArn ?? adminArn;
  checkArn(sealerArn, 'sealer ARN', options.accountId, false);
  return [
    { Sid: 'KeyAdministration', Effect: 'Allow', Principal: { AWS: adminArn }, Action: KEY_ADMIN_ACTIONS, Resource: '*' },
    { Sid: 'SealModels', Effect: 'Allow', Principal: { AWS: sealerArn }, Action: 'kms:GenerateDataKey', Resource: '*' },
  ];
}

/** Builds the key policy for the given measured images (parsed policy files). */
export function buildKmsKeyPolicy(images: readonly LoadedPolicy[], options: KmsKeyPolicyOptions): KmsKeyPolicy {
  const principals = operatorStatements(options);
  if (images.length === 0) refuse('give at least one measurement policy');

  const conditions = images.map(imageConditions);
  const pcr0s = [...new Set(conditions.map((c) => c[IMAGE_SHA384]!))];
  const allow = conditions.map(
    (condition, i): KmsPolicyStatement => ({
      Sid: `EnclaveDecryptImage${i + 1}`,
      Effect: 'Allow',
      Principal: { AWS: options.enclaveRoleArn },
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: { StringEqualsIgnoreCase: condition },
    }),
  );
  return {
    Version: '2012-10-17',
    Id: 'teegate-enclave-model-key',
    Statement: [
      ...principals,
      ...allow,
      {
        Sid: 'DenyDecryptOutsideMeasuredImages',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:Decrypt',
        Resource: '*',
        // A request without an attestation document has no ImageSha384: a negated operator then holds, so it is denied.
        Condition: { StringNotEqualsIgnoreCase: { [IMAGE_SHA384]: pcr0s.length === 1 ? pcr0s[0]! : pcr0s } },
      },
    ],
  };
}

/**
 * The key policy before any image exists (models must be sealed before the image that holds them is
 * built and measured): administration and sealing only; Decrypt is denied to everyone.
 */
export function buildBootstrapKeyPolicy(options: KmsKeyPolicyOptions): KmsKeyPolicy {
  const principals = operatorStatements(options);
  return {
    Version: '2012-10-17',
    Id: 'teegate-enclave-model-key',
    Statement: [
      ...principals,
      { Sid: 'NoImageMeasuredYet', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' },
      // Names the role, as the final policy does (infra/aws checks the policy names its role).
      { Sid: 'EnclaveRoleHasNothingYet', Effect: 'Deny', Principal: { AWS: options.enclaveRoleArn }, Action: 'kms:Decrypt', Resource: '*' },
    ],
  };
}

/** Reads and validates one measurement policy file (JSON text). */
export function loadPolicyText(text: string, name: string): LoadedPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch {
    throw new TeegateError('POLICY_INVALID', `measurement policy ${name}: not JSON`);
  }
  return parsePolicyFile(json);
}

const USAGE = 'usage: kms-policy (--policy FILE [--policy FILE]... | --bootstrap) --account ID --role-arn ARN [--admin-arn ARN] [--sealer-arn ARN] [--out FILE]\n';

/** Program entry; returns the exit code. */
export function main(argv: readonly string[], io: { stdout: (s: string) => void; stderr: (s: string) => void } = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        policy: { type: 'string', multiple: true },
        account: { type: 'string' },
        'role-arn': { type: 'string' },
        'admin-arn': { type: 'string' },
        'sealer-arn': { type: 'string' },
        out: { type: 'string' },
        bootstrap: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    io.stderr(`kms-policy: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if ((!values.policy?.length && !values.bootstrap) || values.account === undefined || values['role-arn'] === undefined) {
    io.stderr(`kms-policy: --policy (or --bootstrap), --account and --role-arn are required\n${USAGE}`);
    return 2;
  }
  if (values.policy?.length && values.bootstrap) {
    io.stderr(`kms-policy: --bootstrap takes no --policy\n${USAGE}`);
    return 2;
  }
  try {
    const images = (values.policy ?? []).map((file) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      return loadPolicyText(text, file);
    });
    const options: KmsKeyPolicyOptions = {
      accountId: values.account,
      enclaveRoleArn: values['role-arn'],
      ...(values['admin-arn'] !== undefined ? { adminArn: values['admin-arn'] } : {}),
      ...(values['sealer-arn'] !== undefined ? { sealerArn: values['sealer-arn'] } : {}),
    };
    const policy = values.bootstrap ? buildBootstrapKeyPolicy(options) : buildKmsKeyPolicy(images, options);
    const text = `${JSON.stringify(policy, null, 2)}\n`;
    if (values.out !== undefined) writeFileSync(values.out, text);
    else io.stdout(text);
    return 0;
  } catch (err) {
    if (isTeegateError(err)) {
      io.stderr(`kms-policy: ${err.code}: ${err.message}\n`);
      return 1;
    }
    io.stderr(`kms-policy: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

if (require.main === module || (process.argv[1] !== undefined && resolve(process.argv[1]) === __filename)) {
  process.exitCode = main(process.argv.slice(2));
}
