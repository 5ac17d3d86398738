/**
 * What every operation handler gets: the store, the account and caller, the Recipient hooks, and
 * the two checks every key operation makes (resolve the KeyId, authorize against the key policy).
 */
import { KmsError } from './kms-error';
import { evaluateKeyPolicy, parseKeyPolicy, type KeyPolicy, type PolicyRequest } from './policy';
import type { KeyStore, StoredKey } from './key-store';
import type { RecipientEncryptor, VerifyRecipientDocument } from './recipient';
import type { JsonObject } from './request-fields';

export interface OperationContext {
  readonly store: KeyStore;
  readonly region: string;
  readonly accountId: string;
  /** The IAM principal that signed the request. */
  readonly principalArn: string;
  readonly verifyRecipientDocument: VerifyRecipientDocument | undefined;
  readonly encryptForRecipient: RecipientEncryptor;
  /** Policy for GenerateRandom (no key, so no key policy); undefined = allowed. */
  readonly generateRandomPolicy: KeyPolicy | undefined;
}

export type Operation = (body: JsonObject, ctx: OperationContext) => Promise<JsonObject>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function keyArn(ctx: OperationContext, keyId: string): string {
  return `arn:aws:kms:${ctx.region}:${ctx.accountId}:key/${keyId}`;
}

export function aliasArn(ctx: OperationContext, alias: string): string {
  return `arn:aws:kms:${ctx.region}:${ctx.accountId}:${alias}`;
}

/** Resolve a KeyId parameter: key id, key ARN, alias name or alias ARN. */
export function resolveKey(ctx: OperationContext, keyIdParam: string, options: { allowAlias?: boolean } = {}): StoredKey {
  const allowAlias = options.allowAlias ?? true;
  let id = keyIdParam;
  const arnPrefix = `arn:aws:kms:${ctx.region}:${ctx.accountId}:`;
  if (id.startsWith('arn:')) {
    if (!id.startsWith(arnPrefix)) throw new KmsError('NotFoundException', `Invalid arn ${keyIdParam}`);
    id = id.slice(arnPrefix.length);
    if (id.startsWith('key/')) id = id.slice(4);
    else if (!id.startsWith('alias/')) throw new KmsError('NotFoundException', `Invalid arn ${keyIdParam}`);
  }
  if (id.startsWith('alias/')) {
    if (!allowAlias) throw new KmsError('NotFoundException', `Alias ${keyIdParam} is not valid for this operation.`);
    const target = ctx.store.aliasTarget(id);
    if (target === undefined) throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx, id)} is not found.`);
    id = target;
  }
  if (!UUID.test(id)) throw new KmsError('NotFoundException', `Invalid keyId '${keyIdParam}'`);
  const key = ctx.store.get(id);
  if (key === undefined) throw new KmsError('NotFoundException', `Key '${keyArn(ctx, id)}' does not exist`);
  return key;
}

function principalAccount(principalArn: string, fallback: string): string {
  return /^arn:aws[a-z-]*:iam::(\d{12}):/.exec(principalArn)?.[1] ?? fallback;
}

function denied(ctx: OperationContext, action: string, resource: string, explicit: boolean): KmsError {
  const reason = explicit
    ? 'with an explicit deny in a resource-based policy'
    : `because no resource-based policy allows the ${action} action`;
  return new KmsError('AccessDeniedException', `User: ${ctx.principalArn} is not authorized to perform: ${action} on resource: ${resource} ${reason}`);
}

export function policyRequest(ctx: OperationContext, action: string, resourceArn: string, conditionKeys: Readonly<Record<string, string>>): PolicyRequest {
  return {
    action,
    principalArn: ctx.principalArn,
    principalAccount: principalAccount(ctx.principalArn, ctx.accountId),
    resourceArn,
    conditionKeys: { 'kms:CallerAccount': principalAccount(ctx.principalArn, ctx.accountId), ...conditionKeys },
  };
}

/** Evaluate the key policy for `action`; throws AccessDeniedException unless allowed. */
export function authorizeKey(ctx: OperationContext, key: StoredKey, action: string, conditionKeys: Readonly<Record<string, string>> = {}): void {
  const result = evaluateKeyPolicy(parseKeyPolicy(key.policy), policyRequest(ctx, action, key.arn, conditionKeys));
  if (result.decision !== 'allow') throw denied(ctx, action, key.arn, result.decision === 'explicit-deny');
}

/** GenerateRandom has no key: it is governed by the configured account policy, if any. */
export function authorizeAccount(ctx: OperationContext, action: string, conditionKeys: Readonly<Record<string, string>> = {}): void {
  if (ctx.generateRandomPolicy === undefined) return;
  const resource = '*';
  const result = evaluateKeyPolicy(ctx.generateRandomPolicy, policyRequest(ctx, action, resource, conditionKeys));
  if (result.decision !== 'allow') {
    const reason = result.decision === 'explicit-deny' ? 'with an explicit deny in an identity-based policy' : 'because no identity-based policy allows the ' + action + ' action';
    throw new KmsError('AccessDeniedException', `User: ${ctx.principalArn} is not authorized to perform: ${action} ${reason}`);
  }
}

export function requireEnabled(key: StoredKey): void {
  if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`);
}

export function dryRunSucceeded(): KmsError {
  return new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}
