/**
 * The gateway's one configuration schema. A JSON file gives the values, `TEEGATE_*` environment
 * variables override them, and `parseGatewayConfig` checks everything at start: an unknown key, a
 * wrong type or an out-of-range value is a CONFIG_INVALID error naming the field (and the variable
 * it came from), never a crash later.
 */
import ipaddr from 'ipaddr.js';
import { dirname, resolve } from 'node:path';
import { TeegateError, isTeegateError } from '../attestation/errors';
import { compilePolicy, type MeasurementPolicy } from '../attestation/nitro/policy';
import { parsePolicyFile, type LoadedPolicy } from '../attestation/policy-file';
import { LOG_SCHEMA_NAME } from './log/storage/log-storage';
import { readRegularFile } from './regular-file';

export type ApiKeyScope = 'infer' | 'admin';
export const API_KEY_SCOPES: readonly ApiKeyScope[] = ['infer', 'admin'];
export type SelectionStrategy = 'round-robin' | 'least-in-flight';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface RateLimitConfig {
  /** Sustained rate (token refill per second). */
  readonly requestsPerSecond: number;
  /** Bucket size: requests allowed in a burst. */
  readonly burst: number;
}

export interface ApiKeyConfig {
  /** A name for logs and metrics (never the key). */
  readonly id: string;
  /** Lower-case hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`, or `hashApiKey`). */
  readonly sha256: string;
  readonly scopes: readonly ApiKeyScope[];
  /** Overrides `limits.rateLimit` for this key. */
  readonly rateLimit?: RateLimitConfig;
}

export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  /** Base URLs of the enclaves (`http://host:port`). */
  readonly enclaves: readonly string[];
  readonly attestation: {
    /** Trusted roots as PEM text; empty = AWS Nitro Enclaves Root-G1. */
    readonly rootCertificates: readonly string[];
    /** The measurement policy every enclave must meet (at least one PCR pinned). */
    readonly policy: MeasurementPolicy;
  };
  readonly auth: {
    /** Serve inference without keys (development only; must be set explicitly). */
    readonly disabled: boolean;
    readonly keys: readonly ApiKeyConfig[];
  };
  readonly limits: {
    readonly bodyBytes: number;
    readonly rateLimit: RateLimitConfig;
    /** Per client address, for routes that take no key (GET /v1/attestation). */
    readonly anonymousRateLimit: RateLimitConfig;
    /** Time for one enclave to answer one request once connected. */
    readonly upstreamTimeoutMs: number;
    /** Largest answer accepted from an enclave; a larger one is 502 UPSTREAM_INVALID. */
    readonly upstreamResponseBytes: number;
    readonly connectTimeoutMs: number;
    /** Enclaves tried for one request when the previous one could not take it. */
    readonly maxAttempts: number;
    /** Node server limit on receiving a whole request. */
    readonly requestTimeoutMs: number;
  };
  readonly pool: {
    readonly healthIntervalMs: number;
    readonly healthTimeoutMs: number;
    readonly selection: SelectionStrategy;
  };
  readonly cors: { readonly origins: readonly string[] };
  /** Reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the client; none by default. */
  readonly trustProxies: readonly string[];
  readonly metrics: { readonly public: boolean };
  /** The transparency log: where entries are stored and how checkpoints are named and signed. */
  readonly log: {
    /** `file` (embedded, one gateway), `postgres` (shared by replicas), `memory` (tests only: nothing is kept). */
    readonly store: 'file' | 'postgres' | 'memory';
    /** Data folder of the file store (the log lives in `<dataDir>/log`). */
    readonly dataDir: string;
    readonly postgresUrl?: string;
    readonly postgresSchema: string;
    /** Checkpoint origin line (C2SP tlog-checkpoint). */
    readonly origin: string;
    /** Ed25519 signer key (`PRIVATE+KEY+...`); default: generated once and kept by the store. */
    readonly signerKey?: string;
    /** Longest wait for a checkpoint that covers a new entry: its inclusion proof is servable then. */
    readonly publishIntervalMs: number;
    /** Entries waiting that make a checkpoint due at once, before `publishIntervalMs`. */
    readonly publishEveryEntries: number;
  };
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
}

type Kind = 'string' | 'int' | 'bool' | 'list' | 'json';

interface Field {
  readonly path: string;
  readonly env: string;
  readonly kind: Kind;
  readonly default: unknown;
  readonly min?: number;
  readonly max?: number;
  readonly oneOf?: readonly string[];
  /** A string must match it; `what` says so in the error. */
  readonly pattern?: { readonly re: RegExp; readonly what: string };
}

const MS_HOUR = 3_600_000;

/** The schema: every setting, its environment variable, type, default and range. */
export const CONFIG_FIELDS: readonly Field[] = [
  { path: 'host', env: 'TEEGATE_HOST', kind: 'string', default: '127.0.0.1' },
  { path: 'port', env: 'TEEGATE_PORT', kind: 'int', default: 8080, min: 0, max: 65535 },
  { path: 'enclaves', env: 'TEEGATE_ENCLAVES', kind: 'list', default: [] },
  { path: 'attestation.rootCertificates', env: 'TEEGATE_ROOT_CERTIFICATES', kind: 'list', default: [] },
  { path: 'attestation.policy', env: 'TEEGATE_POLICY', kind: 'json', default: undefined },
  { path: 'attestation.policyFile', env: 'TEEGATE_POLICY_FILE', kind: 'string', default: undefined },
  { path: 'auth.disabled', env: 'TEEGATE_AUTH_DISABLED', kind: 'bool', default: false },
  { path: 'auth.keys', env: 'TEEGATE_API_KEYS', kind: 'json', default: [] },
  { path: 'limits.bodyBytes', env: 'TEEGATE_BODY_LIMIT_BYTES', kind: 'int', default: 16 * 1024 * 1024 + 65536, min: 1024, max: 256 * 1024 * 1024 },
  { path: 'limits.rateLimit', env: 'TEEGATE_RATE_LIMIT', kind: 'json', default: { requestsPerSecond: 100, burst: 200 } },
  { path: 'limits.anonymousRateLimit', env: 'TEEGATE_ANONYMOUS_RATE_LIMIT', kind: 'json', default: { requestsPerSecond: 10, burst: 20 } },
  { path: 'limits.upstreamTimeoutMs', env: 'TEEGATE_UPSTREAM_TIMEOUT_MS', kind: 'int', default: 60_000, min: 10, max: MS_HOUR },
  { path: 'limits.upstreamResponseBytes', env: 'TEEGATE_UPSTREAM_RESPONSE_LIMIT_BYTES', kind: 'int', default: 64 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024 },
  { path: 'limits.connectTimeoutMs', env: 'TEEGATE_CONNECT_TIMEOUT_MS', kind: 'int', default: 2_000, min: 10, max: 60_000 },
  { path: 'limits.maxAttempts', env: 'TEEGATE_MAX_ATTEMPTS', kind: 'int', default: 3, min: 1, max: 16 },
  { path: 'limits.requestTimeoutMs', env: 'TEEGATE_REQUEST_TIMEOUT_MS', kind: 'int', default: 120_000, min: 100, max: MS_HOUR },
  { path: 'pool.healthIntervalMs', env: 'TEEGATE_HEALTH_INTERVAL_MS', kind: 'int', default: 2_000, min: 10, max: MS_HOUR },
  { path: 'pool.healthTimeoutMs', env: 'TEEGATE_HEALTH_TIMEOUT_MS', kind: 'int', default: 5_000, min: 10, max: 60_000 },
  { path: 'pool.selection', env: 'TEEGATE_SELECTION', kind: 'string', default: 'least-in-flight', oneOf: ['round-robin', 'least-in-flight'] },
  { path: 'cors.origins', env: 'TEEGATE_CORS_ORIGINS', kind: 'list', default: [] },
  { path: 'trustProxies', env: 'TEEGATE_TRUST_PROXIES', kind: 'list', default: [] },
  { path: 'metrics.public', env: 'TEEGATE_METRICS_PUBLIC', kind: 'bool', default: false },
  { path: 'logLevel', env: 'TEEGATE_LOG_LEVEL', kind: 'string', default: 'info', oneOf: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { path: 'shutdownGraceMs', env: 'TEEGATE_SHUTDOWN_GRACE_MS', kind: 'int', default: 10_000, min: 0, max: MS_HOUR },
  { path: 'log.store', env: 'TEEGATE_LOG_STORE', kind: 'string', default: 'file', oneOf: ['file', 'postgres', 'memory'] },
  { path: 'log.dataDir', env: 'TEEGATE_DATA_DIR', kind: 'string', default: 'data' },
  { path: 'log.postgresUrl', env: 'TEEGATE_PG_URL', kind: 'string', default: undefined },
  { path: 'log.postgresSchema', env: 'TEEGATE_LOG_SCHEMA', kind: 'string', default: 'teegate_log', pattern: { re: LOG_SCHEMA_NAME, what: 'a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)' } },
  { path: 'log.origin', env: 'TEEGATE_LOG_ORIGIN', kind: 'string', default: 'teegate.local/log' },
  { path: 'log.signerKey', env: 'TEEGATE_LOG_KEY', kind: 'string', default: undefined },
  { path: 'log.publishIntervalMs', env: 'TEEGATE_LOG_PUBLISH_INTERVAL_MS', kind: 'int', default: 1_000, min: 10, max: MS_HOUR },
  { path: 'log.publishEveryEntries', env: 'TEEGATE_LOG_PUBLISH_EVERY_ENTRIES', kind: 'int', default: 10_000, min: 1, max: 1_000_000 },
];

function fail(message: string): never {
  throw new TeegateError('CONFIG_INVALID', message);
}

function noUnknownMembers(rest: Record<string, unknown>, where: string, hint = ''): void {
  if (Object.keys(rest).length > 0) fail(`${where} has unknown members ${Object.keys(rest).join(', ')}${hint}`);
}

/** `where`: the variable and the setting it sets, for messages (`TEEGATE_BODY_LIMIT_BYTES (limits.bodyBytes)`). */
function fromEnv(field: Field, text: string, where: string): unknown {
  switch (field.kind) {
    case 'string':
      return text;
    case 'int':
      if (!/^-?\d+$/.test(text.trim())) fail(`${where} must be an integer, got ${JSON.stringify(text)}`);
      return Number(text.trim());
    case 'bool':
      if (!/^(true|false|1|0)$/i.test(text.trim())) fail(`${where} must be true or false, got ${JSON.stringify(text)}`);
      return /^(true|1)$/i.test(text.trim());
    case 'list':
      return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return fail(`${where} must be JSON`);
      }
  }
}

function checkKind(field: Field, value: unknown, where: string): unknown {
  switch (field.kind) {
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail(`${where} must be a non-empty string`);
      if (field.oneOf && !field.oneOf.includes(value)) fail(`${where} must be one of ${field.oneOf.join(', ')}, got ${JSON.stringify(value)}`);
      if (field.pattern && !field.pattern.re.test(value)) fail(`${where} must be ${field.pattern.what}, got ${JSON.stringify(value.slice(0, 80))}`);
      return value;
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`${where} must be an integer`);
      if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max)) {
        fail(`${where} must be in ${field.min}..${field.max}, got ${value}`);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail(`${where} must be true or false`);
      return value;
    case 'list':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) fail(`${where} must be a list of non-empty strings`);
      return value;
    case 'json':
      return value;
  }
}

/**
 * An IPv4 or IPv6 address, or a CIDR block of one, in its plain form: IPv4 as four decimal parts
 * without leading zeros (`010.0.0.1` is 8.0.0.1 to some parsers; `10/8` is 0.0.0.0/8).
 */
function isAddressOrCidr(text: string): boolean {
  const [address = '', prefix, ...rest] = text.split('/');
  if (rest.length > 0) return false;
  const v4 = ipaddr.IPv4.isValidFourPartDecimal(address);
  if (!v4 && !(address.includes(':') && ipaddr.IPv6.isValid(address))) return false;
  return prefix === undefined || (/^(?:0|[1-9]\d{0,2})$/.test(prefix) && Number(prefix) <= (v4 ? 32 : 128));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Flattens the file's object along the schema's paths; an unknown key is an error (typos fail loudly). */
function readFile(file: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (file === undefined) return out;
  if (!isObject(file)) fail('the configuration must be a JSON object');
  const paths = new Set(CONFIG_FIELDS.map((f) => f.path));
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(obj)) {
      const path = prefix + key;
      if (paths.has(path)) out.set(path, value);
      else if (isObject(value) && [...paths].some((p) => p.startsWith(`${path}.`))) walk(value, `${path}.`);
      else fail(`unknown setting ${JSON.stringify(path)}`);
    }
  };
  walk(file, '');
  return out;
}

function rateLimit(value: unknown, where: string): RateLimitConfig {
  if (!isObject(value)) fail(`${where} must be an object {requestsPerSecond, burst}`);
  const { requestsPerSecond, burst, ...rest } = value;
  noUnknownMembers(rest, where);
  if (typeof requestsPerSecond !== 'number' || !(requestsPerSecond > 0) || requestsPerSecond > 1e6) fail(`${where}.requestsPerSecond must be a number in (0, 1e6]`);
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > 1e6) fail(`${where}.burst must be an integer in 1..1e6`);
  return { requestsPerSecond, burst };
}

function apiKeys(value: unknown, where: string): ApiKeyConfig[] {
  if (!Array.isArray(value)) fail(`${where} must be a list of {id, sha256, scopes}`);
  const ids = new Set<string>();
  const hashes = new Set<string>();
  return value.map((entry: unknown, i): ApiKeyConfig => {
    const at = `${where}[${i}]`;
    if (!isObject(entry)) fail(`${at} must be an object {id, sha256, scopes}`);
    const { id, sha256, scopes, rateLimit: limit, ...rest } = entry;
    noUnknownMembers(rest, at, ' (store keys as sha256 hashes, never the key)');
    if (typeof id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) fail(`${at}.id must be 1..64 characters of A-Z a-z 0-9 . _ -`);
    if (ids.has(id)) fail(`${at}.id ${id} is used twice`);
    ids.add(id);
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) fail(`${at}.sha256 must be 64 lower-case hex characters (SHA-256 of the key)`);
    if (hashes.has(sha256)) fail(`${at}.sha256 repeats another key`);
    hashes.add(sha256);
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => API_KEY_SCOPES.includes(s as ApiKeyScope))) {
      fail(`${at}.scopes must be a non-empty list of ${API_KEY_SCOPES.join(', ')}`);
    }
    return { id, sha256, scopes: [...new Set(scopes as ApiKeyScope[])], ...(limit !== undefined ? { rateLimit: rateLimit(limit, `${at}.rateLimit`) } : {}) };
  });
}

function policy(value: unknown, where: string): MeasurementPolicy {
  if (value === undefined) fail(`${where} is required: pin the enclave image measurements (e.g. {"pcrs": {"0": "<96 hex>"}})`);
  if (!isObject(value)) fail(`${where} must be an object {pcrs, allowDebug?, maxAgeMs?}`);
  const { pcrs, allowDebug, maxAgeMs, ...rest } = value;
  noUnknownMembers(rest, where);
  if (!isObject(pcrs) || Object.keys(pcrs).length === 0) fail(`${where}.pcrs must pin at least one PCR`);
  const out = { pcrs: pcrs as Record<number, string>, ...(allowDebug !== undefined ? { allowDebug } : {}), ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) } as MeasurementPolicy;
  try {
    compilePolicy(out);
  } catch (err) {
    if (isTeegateError(err)) fail(`${where}: ${err.message}`);
    throw err;
  }
  return out;
}

function enclaveUrl(url: string, where: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail(`${where} ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' || parsed.pathname !== '/' || parsed.search || parsed.hash || parsed.username) {
    fail(`${where} ${JSON.stringify(url)} must be http://host:port (the enclave API is plain HTTP over loopback or vsock)`);
  }
  return parsed.origin;
}

/** Files the configuration names are small: a bigger one is not one of them. */
const MAX_CONFIG_FILE_BYTES = 1 << 20;

/** A file the configuration names (the configuration itself, the policy file, a root certificate), as text. */
function readConfigText(path: string): string {
  return readRegularFile(path, MAX_CONFIG_FILE_BYTES).toString('utf8');
}

/** Why a file could not be read, in a word or a phrase. */
function readFailure(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

function rootCertificate(entry: string, where: string, baseDir: string): string {
  if (entry.includes('-----BEGIN CERTIFICATE-----')) return entry;
  try {
    const text = readConfigText(resolve(baseDir, entry));
    if (!text.includes('-----BEGIN CERTIFICATE-----')) fail(`${where}: ${entry} holds no PEM certificate`);
    return text;
  } catch (err) {
    if (isTeegateError(err)) throw err;
    return fail(`${where}: cannot read ${entry}: ${readFailure(err)}`);
  }
}

export interface ConfigSources {
  /** Parsed JSON of the configuration file, if any. */
  readonly file?: unknown;
  /** Directory relative paths in the file are resolved against (default: cwd). */
  readonly baseDir?: string;
  /** Environment (default: none; `loadGatewayConfig` passes process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Validates file + environment against the schema. Throws CONFIG_INVALID naming the field. */
export function parseGatewayConfig(sources: ConfigSources = {}): GatewayConfig {
  const fileValues = readFile(sources.file);
  const values = new Map<string, unknown>();
  // Where each value came from, for messages: `limits.bodyBytes` or `TEEGATE_BODY_LIMIT_BYTES (limits.bodyBytes)`.
  const whereOf = new Map<string, string>();
  for (const field of CONFIG_FIELDS) {
    const envText = sources.env?.[field.env];
    const at = envText !== undefined ? `${field.env} (${field.path})` : field.path;
    whereOf.set(field.path, at);
    const raw = envText !== undefined ? fromEnv(field, envText, at) : fileValues.has(field.path) ? fileValues.get(field.path) : field.default;
    values.set(field.path, raw === undefined ? undefined : checkKind(field, raw, at));
  }
  const where = (path: string): string => whereOf.get(path)!;
  const get = <T>(path: string): T => values.get(path) as T;
  const baseDir = sources.baseDir ?? process.cwd();

  const enclaves = get<string[]>('enclaves').map((u, i) => enclaveUrl(u, `${where('enclaves')}[${i}]`));
  if (new Set(enclaves).size !== enclaves.length) fail(`${where('enclaves')} lists an enclave twice`);
  const keys = apiKeys(get('auth.keys'), where('auth.keys'));
  const disabled = get<boolean>('auth.disabled');
  if (!disabled && keys.length === 0) fail(`${where('auth.keys')} is empty: add an API key, or set auth.disabled to true (development only)`);
  const origins = get<string[]>('cors.origins');
  const roots = get<string[]>('attestation.rootCertificates').map((r, i) => rootCertificate(r, `${where('attestation.rootCertificates')}[${i}]`, baseDir));
  let measurement: MeasurementPolicy;
  const policyFile = get<string | undefined>('attestation.policyFile');
  if (policyFile !== undefined) {
    if (get('attestation.policy') !== undefined) fail(`set ${where('attestation.policy')} or ${where('attestation.policyFile')}, not both`);
    const loaded = readPolicyFile(resolve(baseDir, policyFile), where('attestation.policyFile'));
    measurement = policy(loaded.policy, `${where('attestation.policyFile')} ${policyFile}`);
    roots.push(...(loaded.rootCertificates ?? []));
  } else {
    measurement = policy(get('attestation.policy'), where('attestation.policy'));
  }
  const store = get<'file' | 'postgres' | 'memory'>('log.store');
  if (store === 'postgres' && get('log.postgresUrl') === undefined) fail(`${where('log.postgresUrl')} is required when log.store is postgres`);
  const trustProxies = get<string[]>('trustProxies');
  for (const [i, p] of trustProxies.entries()) {
    if (!isAddressOrCidr(p)) fail(`${where('trustProxies')}[${i}] ${JSON.stringify(p)} must be an IP address or a CIDR block such as 10.0.0.0/8`);
  }
  for (const [i, o] of origins.entries()) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) fail(`${where('cors.origins')}[${i}] ${JSON.stringify(o)} must be "*" or an origin like https://example.com`);
  }
  return {
    host: get('host'),
    port: get('port'),
    enclaves,
    attestation: { rootCertificates: roots, policy: measurement },
    auth: { disabled, keys },
    limits: {
      bodyBytes: get('limits.bodyBytes'),
      rateLimit: rateLimit(get('limits.rateLimit'), where('limits.rateLimit')),
      anonymousRateLimit: rateLimit(get('limits.anonymousRateLimit'), where('limits.anonymousRateLimit')),
      upstreamTimeoutMs: get('limits.upstreamTimeoutMs'),
      upstreamResponseBytes: get('limits.upstreamResponseBytes'),
      connectTimeoutMs: get('limits.connectTimeoutMs'),
      maxAttempts: get('limits.maxAttempts'),
      requestTimeoutMs: get('limits.requestTimeoutMs'),
    },
    pool: { healthIntervalMs: get('pool.healthIntervalMs'), healthTimeoutMs: get('pool.healthTimeoutMs'), selection: get('pool.selection') },
    cors: { origins },
    trustProxies,
    metrics: { public: get('metrics.public') },
    log: {
      store,
      dataDir: resolve(baseDir, get<string>('log.dataDir')),
      ...(get('log.postgresUrl') !== undefined ? { postgresUrl: get<string>('log.postgresUrl') } : {}),
      postgresSchema: get('log.postgresSchema'),
      origin: get('log.origin'),
      ...(get('log.signerKey') !== undefined ? { signerKey: get<string>('log.signerKey') } : {}),
      publishIntervalMs: get('log.publishIntervalMs'),
      publishEveryEntries: get('log.publishEveryEntries'),
    },
    logLevel: get('logLevel'),
    shutdownGraceMs: get('shutdownGraceMs'),
  };
}

/** `attestation.policyFile`: the measurement policy file of docs/policy.md. */
function readPolicyFile(path: string, where: string): LoadedPolicy {
  let json: unknown;
  try {
    json = JSON.parse(readConfigText(path)) as unknown;
  } catch (err) {
    return fail(`${where}: cannot read ${path} as JSON: ${readFailure(err)}`);
  }
  try {
    return parsePolicyFile(json);
  } catch (err) {
    if (isTeegateError(err)) fail(`${where}: ${err.message}`);
    throw err;
  }
}

/**
 * Reads the configuration file (`file`, else `TEEGATE_CONFIG`, else none) and the environment.
 * Relative paths in the file (root certificates) resolve against the file's directory.
 */
export function loadGatewayConfig(options: { file?: string; env?: Readonly<Record<string, string | undefined>> } = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const path = options.file ?? env.TEEGATE_CONFIG;
  if (path === undefined) return parseGatewayConfig({ env });
  let text: string;
  try {
    text = readConfigText(path);
  } catch (err) {
    return fail(`cannot read the configuration file ${path}: ${readFailure(err)}`);
  }
  let file: unknown;
  try {
    file = JSON.parse(text) as unknown;
  } catch (err) {
    return fail(`the configuration file ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseGatewayConfig({ file, env, baseDir: dirname(resolve(path)) });
}
