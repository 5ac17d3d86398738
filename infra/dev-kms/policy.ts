/**
 * Key policy parsing and evaluation for the dev KMS: a faithful subset of the IAM policy
 * language (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
 * as KMS uses it in key policies. Pure: no I/O, no clock.
 *
 * - Explicit Deny wins, then any matching Allow, else implicit deny.
 * - Principal: "*", {"AWS": arn | account id | [..]}; the account root (`arn:aws:iam::<acct>:root`
 *   or `<acct>`) matches every principal of that account (there is no IAM layer in dev, so the
 *   delegation to IAM policies that AWS does is "IAM allows everything").
 * - Action / NotAction with `*` and `?` wildcards, case-insensitive.
 * - Resource / NotResource: "*" or the key ARN (wildcards allowed).
 * - Condition operators: String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike},
 *   Bool, Null, each with an optional `IfExists` suffix. Any other operator, or a set operator
 *   (ForAnyValue:/ForAllValues:), makes the policy malformed: a condition is never ignored.
 * - Condition keys are case-insensitive; values in a list are ORed, keys and operators ANDed.
 *   A missing key fails a positive operator and satisfies a negated one (IAM semantics).
 *
 * KMS Nitro keys: `kms:RecipientAttestation:ImageSha384` (= PCR0) and
 * `kms:RecipientAttestation:PCR<n>`, lowercase hex, documented in
 * https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html.
 */
import { toHex } from '../../attestation/bytes';

export class MalformedPolicyError extends Error {
  override readonly name = 'MalformedPolicyError';
}

type ConditionBlock = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export interface PolicyStatement {
  readonly sid?: string;
  readonly effect: 'Allow' | 'Deny';
  /** undefined = any principal ("*"). */
  readonly principals?: readonly string[];
  readonly actions?: readonly string[];
  readonly notActions?: readonly string[];
  readonly resources?: readonly string[];
  readonly notResources?: readonly string[];
  /** operator → (lowercase key → allowed values). */
  readonly conditions: ConditionBlock;
}

export interface KeyPolicy {
  readonly statements: readonly PolicyStatement[];
}

export interface PolicyRequest {
  /** e.g. `kms:Decrypt` */
  readonly action: string;
  readonly principalArn: string;
  readonly principalAccount: string;
  readonly resourceArn: string;
  /** Condition keys present in the request context (any case). */
  readonly conditionKeys: Readonly<Record<string, string>>;
}

export type PolicyDecision =
  | { readonly decision: 'allow'; readonly sid?: string }
  | { readonly decision: 'explicit-deny'; readonly sid?: string }
  | { readonly decision: 'implicit-deny' };

export const MAX_POLICY_LENGTH = 32768;

const OPERATORS = new Set([
  'stringequals',
  'stringnotequals',
  'stringequalsignorecase',
  'stringnotequalsignorecase',
  'stringlike',
  'stringnotlike',
  'bool',
  'null',
]);

/** The policy AWS attaches when CreateKey gets none: the account may do everything. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Id: 'key-default-1',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  });
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(value: unknown, what: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw new MalformedPolicyError(`${what} must be a non-empty string or a non-empty list of strings`);
  }
  return list as string[];
}

function parsePrincipal(value: unknown): string[] | undefined {
  if (value === '*') return undefined;
  if (!isRecord(value)) throw new MalformedPolicyError('Principal must be "*" or an object such as {"AWS": "..."}');
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== 'AWS') {
    throw new MalformedPolicyError(`unsupported principal type: ${keys.join(', ')} (only "AWS" principals are supported)`);
  }
  const list = stringList(value.AWS, 'Principal.AWS');
  if (list.includes('*')) return undefined;
  for (const p of list) {
    if (!/^\d{12}$/.test(p) && !/^arn:aws[a-z-]*:iam::\d{12}:[A-Za-z0-9+=,.@_/-]+$/.test(p)) {
      throw new MalformedPolicyError(`invalid principal: ${p}`);
    }
  }
  return list;
}

function parseConditions(value: unknown): ConditionBlock {
  const out = new Map<string, Map<string, string[]>>();
  if (value === undefined) return out;
  if (!isRecord(value)) throw new MalformedPolicyError('Condition must be an object');
  for (const [operator, block] of Object.entries(value)) {
    const op = operator.toLowerCase();
    const base = op.endsWith('ifexists') ? op.slice(0, -'ifexists'.length) : op;
    if (!OPERATORS.has(base)) throw new MalformedPolicyError(`unsupported condition operator: ${operator}`);
    if (!isRecord(block)) throw new MalformedPolicyError(`condition ${operator} must map keys to values`);
    const keys = out.get(op) ?? new Map<string, string[]>();
    for (const [key, raw] of Object.entries(block)) {
      const values = (Array.isArray(raw) ? raw : [raw]).map((v) => (typeof v === 'boolean' ? String(v) : v));
      if (values.length === 0 || !values.every((v) => typeof v === 'string')) {
        throw new MalformedPolicyError(`condition ${operator} ${key} must be a string or a list of strings`);
      }
      if (base === 'bool' || base === 'null') {
        if (!values.every((v) => v === 'true' || v === 'false')) throw new MalformedPolicyError(`condition ${operator} ${key} takes "true" or "false"`);
      }
      keys.set(key.toLowerCase(), [...(keys.get(key.toLowerCase()) ?? []), ...(values as string[])]);
    }
    out.set(op, keys);
  }
  return out;
}

function parseStatement(raw: unknown, index: number): PolicyStatement {
  if (!isRecord(raw)) throw new MalformedPolicyError(`Statement[${index}] must be an object`);
  const allowed = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
  for (const key of Object.keys(raw)) {
    if (!allowed.has(key)) throw new MalformedPolicyError(`Statement[${index}] has an unknown element: ${key}`);
  }
  if (raw.NotPrincipal !== undefined) throw new MalformedPolicyError('NotPrincipal is not supported in key policies');
  if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') throw new MalformedPolicyError(`Statement[${index}].Effect must be "Allow" or "Deny"`);
  if (raw.Sid !== undefined && typeof raw.Sid !== 'string') throw new MalformedPolicyError(`Statement[${index}].Sid must be a string`);
  if (raw.Principal === undefined) throw new MalformedPolicyError(`Statement[${index}] must have a Principal (key policies are resource policies)`);
  if ((raw.Action === undefined) === (raw.NotAction === undefined)) {
    throw new MalformedPolicyError(`Statement[${index}] must have exactly one of Action and NotAction`);
  }
  if ((raw.Resource === undefined) === (raw.NotResource === undefined)) {
    throw new MalformedPolicyError(`Statement[${index}] must have exactly one of Resource and NotResource`);
  }
  const statement: PolicyStatement = {
    effect: raw.Effect,
    conditions: parseConditions(raw.Condition),
    ...(raw.Sid !== undefined ? { sid: raw.Sid as string } : {}),
    ...(raw.Action !== undefined ? { actions: stringList(raw.Action, 'Action') } : {}),
    ...(raw.NotAction !== undefined ? { notActions: stringList(raw.NotAction, 'NotAction') } : {}),
    ...(raw.Resource !== undefined ? { resources: stringList(raw.Resource, 'Resource') } : {}),
    ...(raw.NotResource !== undefined ? { notResources: stringList(raw.NotResource, 'NotResource') } : {}),
  };
  const principals = parsePrincipal(raw.Principal);
  return principals === undefined ? statement : { ...statement, principals };
}

/** Parse and validate a key policy document (JSON text). Throws MalformedPolicyError. */
export function parseKeyPolicy(text: string): KeyPolicy {
  if (text.length === 0 || text.length > MAX_POLICY_LENGTH) {
    throw new MalformedPolicyError(`the policy must be 1 to ${MAX_POLICY_LENGTH} characters`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new MalformedPolicyError('the policy is not valid JSON');
  }
  if (!isRecord(doc)) throw new MalformedPolicyError('the policy must be a JSON object');
  for (const key of Object.keys(doc)) {
    if (!['Version', 'Id', 'Statement'].includes(key)) throw new MalformedPolicyError(`unknown policy element: ${key}`);
  }
  if (doc.Version !== undefined && doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17') {
    throw new MalformedPolicyError('Version must be "2012-10-17"');
  }
  const raw = doc.Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) throw new MalformedPolicyError('the policy must have at least one Statement');
  return { statements: list.map(parseStatement) };
}

/**
 * IAM wildcard match: `*` any run, `?` one character. Values come from callers (encryption context),
 * so no backtracking regex: one pass that returns to the last `*` on a mismatch, at most
 * pattern × value steps (a compiled `*a*a*a*b` took 27 s on 1,000 characters).
 */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  let pi = 0;
  let vi = 0;
  let star = -1;
  let resume = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === v[vi]))) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      resume = vi;
    } else if (star >= 0) {
      pi = star + 1;
      vi = ++resume;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

function principalMatches(statement: PolicyStatement, request: PolicyRequest): boolean {
  if (statement.principals === undefined) return true;
  return statement.principals.some(
    (p) =>
      p === request.principalArn ||
      p === request.principalAccount ||
      p === `arn:aws:iam::${request.principalAccount}:root`,
  );
}

function actionMatches(statement: PolicyStatement, action: string): boolean {
  if (statement.actions) return statement.actions.some((a) => wildcardMatch(a, action, true));
  return !statement.notActions!.some((a) => wildcardMatch(a, action, true));
}

function resourceMatches(statement: PolicyStatement, resource: string): boolean {
  if (statement.resources) return statement.resources.some((r) => wildcardMatch(r, resource, false));
  return !statement.notResources!.some((r) => wildcardMatch(r, resource, false));
}

function conditionHolds(operator: string, expected: readonly string[], actual: string | undefined): boolean {
  const ifExists = operator.endsWith('ifexists');
  const base = ifExists ? operator.slice(0, -'ifexists'.length) : operator;
  if (base === 'null') {
    // "Null": "true" means the key must be absent.
    return expected.some((v) => (v === 'true') === (actual === undefined));
  }
  if (actual === undefined) return ifExists || base.includes('not');
  switch (base) {
    case 'stringequals':
      return expected.includes(actual);
    case 'stringnotequals':
      return !expected.includes(actual);
    case 'stringequalsignorecase':
      return expected.some((v) => v.toLowerCase() === actual.toLowerCase());
    case 'stringnotequalsignorecase':
      return !expected.some((v) => v.toLowerCase() === actual.toLowerCase());
    case 'stringlike':
      return expected.some((v) => wildcardMatch(v, actual, false));
    case 'stringnotlike':
      return !expected.some((v) => wildcardMatch(v, actual, false));
    case 'bool':
      return expected.includes(actual.toLowerCase());
    default:
      return false; // unreachable: parseKeyPolicy rejects other operators
  }
}

function conditionsHold(statement: PolicyStatement, request: PolicyRequest): boolean {
  const context = new Map<string, string>();
  for (const [k, v] of Object.entries(request.conditionKeys)) context.set(k.toLowerCase(), v);
  for (const [operator, keys] of statement.conditions) {
    for (const [key, values] of keys) {
      if (!conditionHolds(operator, values, context.get(key))) return false;
    }
  }
  return true;
}

function statementApplies(statement: PolicyStatement, request: PolicyRequest): boolean {
  return (
    principalMatches(statement, request) &&
    actionMatches(statement, request.action) &&
    resourceMatches(statement, request.resourceArn) &&
    conditionsHold(statement, request)
  );
}

/** Evaluate a key policy for one request: explicit deny > allow > implicit deny. */
export function evaluateKeyPolicy(policy: KeyPolicy, request: PolicyRequest): PolicyDecision {
  let allow: PolicyStatement | undefined;
  for (const statement of policy.statements) {
    if (!statementApplies(statement, request)) continue;
    if (statement.effect === 'Deny') {
      return statement.sid !== undefined ? { decision: 'explicit-deny', sid: statement.sid } : { decision: 'explicit-deny' };
    }
    allow ??= statement;
  }
  if (allow === undefined) return { decision: 'implicit-deny' };
  return allow.sid !== undefined ? { decision: 'allow', sid: allow.sid } : { decision: 'allow' };
}

/**
 * The Nitro condition keys of a verified attestation document: ImageSha384 (= PCR0) and
 * PCR<n> for each PCR, lowercase hex as AWS documents.
 */
export function recipientConditionKeys(pcrs: ReadonlyMap<number, Uint8Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [index, value] of pcrs) {
    const hex = toHex(value);
    out[`kms:RecipientAttestation:PCR${index}`] = hex;
    if (index === 0) out['kms:RecipientAttestation:ImageSha384'] = hex;
  }
  return out;
}

/** `kms:EncryptionContext:<key>` condition keys of a request's encryption context. */
export function encryptionContextConditionKeys(context: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) out[`kms:EncryptionContext:${k}`] = v;
  return out;
}
