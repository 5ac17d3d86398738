/**
 * Key management operations: CreateKey, DescribeKey, EnableKey, DisableKey, GetKeyPolicy,
 * PutKeyPolicy, CreateAlias, ListAliases. Members and constraints follow the KMS API Reference
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_Operations.html); only symmetric
 * encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, origin AWS_KMS) exist in the dev KMS.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { toBase64 } from '../../attestation/bytes';
import { KmsError } from './kms-error';
import type { StoredKey } from './key-store';
import { aliasArn, authorizeKey, keyArn, policyRequest, resolveKey, type Operation, type OperationContext } from './operation-context';
import { MalformedPolicyError, defaultKeyPolicy, evaluateKeyPolicy, parseKeyPolicy } from './policy';
import {
  optionalBoolean,
  optionalInteger,
  optionalString,
  optionalStringList,
  rejectUnknownMembers,
  requiredString,
  type JsonObject,
} from './request-fields';

/** KeyMetadata as DescribeKey/CreateKey return it for a symmetric encryption key. */
export function keyMetadata(ctx: OperationContext, key: StoredKey): JsonObject {
  return {
    AWSAccountId: ctx.accountId,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: key.creationDate,
    Enabled: key.enabled,
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.enabled ? 'Enabled' : 'Disabled',
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    MultiRegion: false,
  };
}

/** Validate a policy text and run the lockout safety check AWS runs on CreateKey/PutKeyPolicy. */
function checkNewPolicy(ctx: OperationContext, policy: string, resourceArn: string, bypassLockoutCheck: boolean): void {
  let parsed;
  try {
    parsed = parseKeyPolicy(policy);
  } catch (err) {
    if (err instanceof MalformedPolicyError) throw new KmsError('MalformedPolicyDocumentException', `The key policy is malformed: ${err.message}`);
    throw err;
  }
  if (bypassLockoutCheck) return;
  const result = evaluateKeyPolicy(parsed, policyRequest(ctx, 'kms:PutKeyPolicy', resourceArn, {}));
  if (result.decision !== 'allow') {
    throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
  }
}

const createKey: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['Policy', 'Description', 'KeyUsage', 'CustomerMasterKeySpec', 'KeySpec', 'Origin', 'CustomKeyStoreId', 'BypassPolicyLockoutSafetyCheck', 'Tags', 'MultiRegion', 'XksKeyId']);
  const policyParam = optionalString(body, 'Policy', { min: 1, max: 32768 });
  const description = optionalString(body, 'Description', { min: 0, max: 8192 }) ?? '';
  const usage = optionalString(body, 'KeyUsage');
  const spec = optionalString(body, 'KeySpec') ?? optionalString(body, 'CustomerMasterKeySpec');
  const origin = optionalString(body, 'Origin');
  const bypass = optionalBoolean(body, 'BypassPolicyLockoutSafetyCheck') ?? false;
  if (usage !== undefined && usage !== 'ENCRYPT_DECRYPT') throw new KmsError('UnsupportedOperationException', `The dev KMS supports only KeyUsage ENCRYPT_DECRYPT, not ${usage}.`);
  if (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', `The dev KMS supports only KeySpec SYMMETRIC_DEFAULT, not ${spec}.`);
  if (origin !== undefined && origin !== 'AWS_KMS') throw new KmsError('UnsupportedOperationException', `The dev KMS supports only Origin AWS_KMS, not ${origin}.`);
  if (optionalString(body, 'CustomKeyStoreId') !== undefined || optionalString(body, 'XksKeyId') !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'The dev KMS has no custom key stores.');
  }
  if (optionalBoolean(body, 'MultiRegion') === true) throw new KmsError('UnsupportedOperationException', 'The dev KMS has no multi-Region keys.');
  if (body.Tags !== undefined && body.Tags !== null && !Array.isArray(body.Tags)) throw new KmsError('SerializationException', 'Tags must be a list');

  const keyId = randomUUID();
  const arn = keyArn(ctx, keyId);
  const policy = policyParam ?? defaultKeyPolicy(ctx.accountId);
  if (policyParam !== undefined) checkNewPolicy(ctx, policyParam, arn, bypass);
  const key: StoredKey = {
    keyId,
    arn,
    creationDate: Math.floor(Date.now() / 1000),
    description,
    enabled: true,
    policy,
    material: toBase64(randomBytes(32)),
  };
  ctx.store.put(key);
  return { KeyMetadata: keyMetadata(ctx, key) };
};

const describeKey: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['KeyId', 'GrantTokens']);
  optionalStringList(body, 'GrantTokens', 10);
  const key = resolveKey(ctx, requiredString(body, 'KeyId', { min: 1, max: 2048 }));
  authorizeKey(ctx, key, 'kms:DescribeKey');
  return { KeyMetadata: keyMetadata(ctx, key) };
};

function setEnabled(enabled: boolean): Operation {
  return async (body, ctx) => {
    rejectUnknownMembers(body, ['KeyId']);
    const key = resolveKey(ctx, requiredString(body, 'KeyId', { min: 1, max: 2048 }), { allowAlias: false });
    authorizeKey(ctx, key, enabled ? 'kms:EnableKey' : 'kms:DisableKey');
    ctx.store.put({ ...key, enabled });
    return {};
  };
}

function policyName(body: JsonObject): string {
  const name = optionalString(body, 'PolicyName', { min: 1, max: 128 }) ?? 'default';
  if (name !== 'default') throw new KmsError('NotFoundException', `No such policy: ${name}. The only valid policy name is 'default'.`);
  return name;
}

const getKeyPolicy: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['KeyId', 'PolicyName']);
  const key = resolveKey(ctx, requiredString(body, 'KeyId', { min: 1, max: 2048 }), { allowAlias: false });
  const name = policyName(body);
  authorizeKey(ctx, key, 'kms:GetKeyPolicy');
  return { Policy: key.policy, PolicyName: name };
};

const putKeyPolicy: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['KeyId', 'Policy', 'PolicyName', 'BypassPolicyLockoutSafetyCheck']);
  const keyParam = requiredString(body, 'KeyId', { min: 1, max: 2048 });
  const policy = requiredString(body, 'Policy', { min: 1, max: 32768 });
  const bypass = optionalBoolean(body, 'BypassPolicyLockoutSafetyCheck') ?? false;
  policyName(body);
  const key = resolveKey(ctx, keyParam, { allowAlias: false });
  authorizeKey(ctx, key, 'kms:PutKeyPolicy');
  checkNewPolicy(ctx, policy, key.arn, bypass);
  ctx.store.put({ ...key, policy });
  return {};
};

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]+$/;

const createAlias: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['AliasName', 'TargetKeyId']);
  const alias = requiredString(body, 'AliasName', { min: 1, max: 256 });
  if (!ALIAS_NAME.test(alias)) throw new KmsError('ValidationException', `1 validation error detected: Value '${alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`);
  if (alias.startsWith('alias/aws/')) throw new KmsError('NotAuthorizedException', 'Cannot create alias with prefix \'alias/aws/\'');
  const key = resolveKey(ctx, requiredString(body, 'TargetKeyId', { min: 1, max: 2048 }), { allowAlias: false });
  if (ctx.store.aliasTarget(alias) !== undefined) throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasArn(ctx, alias)} already exists`);
  authorizeKey(ctx, key, 'kms:CreateAlias');
  ctx.store.putAlias(alias, key.keyId);
  return {};
};

const listAliases: Operation = async (body, ctx) => {
  rejectUnknownMembers(body, ['KeyId', 'Limit', 'Marker']);
  const keyParam = optionalString(body, 'KeyId', { min: 1, max: 2048 });
  optionalInteger(body, 'Limit', { min: 1, max: 1000 });
  const filterKey = keyParam === undefined ? undefined : resolveKey(ctx, keyParam, { allowAlias: false }).keyId;
  const aliases = ctx.store
    .listAliases()
    .filter(([, target]) => filterKey === undefined || target === filterKey)
    .map(([name, target]) => ({ AliasName: name, AliasArn: aliasArn(ctx, name), TargetKeyId: target }));
  return { Aliases: aliases, Truncated: false };
};

export const KEY_OPERATIONS: Readonly<Record<string, Operation>> = {
  CreateKey: createKey,
  DescribeKey: describeKey,
  EnableKey: setEnabled(true),
  DisableKey: setEnabled(false),
  GetKeyPolicy: getKeyPolicy,
  PutKeyPolicy: putKeyPolicy,
  CreateAlias: createAlias,
  ListAliases: listAliases,
};

