/**
 * SigV4 verification of an incoming dev KMS request, with the error names and messages AWS JSON
 * services return: MissingAuthenticationTokenException (no Authorization), IncompleteSignatureException
 * (malformed Authorization or date), UnrecognizedClientException (unknown access key or session
 * token), InvalidSignatureException (wrong scope, clock skew over 15 minutes, payload hash or
 * signature mismatch). Everything read here is attacker-controlled.
 */
import { timingSafeEqual } from 'node:crypto';
import { KmsError } from './kms-error';
import {
  SIGV4_ALGORITHM,
  SigV4FormatError,
  canonicalRequest,
  sha256Hex,
  signature,
  stringToSign,
  type SigV4Scope,
} from './sigv4';

export interface DevKmsCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** When set, requests must carry it in X-Amz-Security-Token (temporary credentials). */
  readonly sessionToken?: string;
  /** IAM principal the key policy sees; default `arn:aws:iam::<account>:user/<accessKeyId>`. */
  readonly principalArn?: string;
}

export interface IncomingSignedRequest {
  readonly method: string;
  /** Request target as received: path and optional query. */
  readonly target: string;
  /** Raw header pairs as received. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;
}

export interface VerifySigV4Options {
  readonly credentials: ReadonlyMap<string, DevKmsCredential>;
  readonly region: string;
  readonly service: string;
  /** Verification time in ms since the epoch. */
  readonly now: number;
  /** Allowed clock difference; AWS allows 15 minutes. */
  readonly maxSkewMs?: number;
}

export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;

function headerValues(req: IncomingSignedRequest, name: string): string[] {
  return req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

function singleHeader(req: IncomingSignedRequest, name: string): string | undefined {
  const values = headerValues(req, name);
  if (values.length > 1) throw new KmsError('IncompleteSignatureException', `Header '${name}' appears more than once.`);
  return values[0];
}

function basicIso(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) throw new KmsError('IncompleteSignatureException', `Date must be in ISO-8601 'basic format'. Got '${value}'.`);
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new KmsError('IncompleteSignatureException', `Date must be in ISO-8601 'basic format'. Got '${value}'.`);
  }
  return ms;
}

interface ParsedAuthorization {
  readonly accessKeyId: string;
  readonly scope: SigV4Scope;
  readonly terminator: string;
  readonly signedHeaders: string[];
  readonly signature: string;
}

function parseAuthorization(header: string): ParsedAuthorization {
  if (!header.startsWith(SIGV4_ALGORITHM + ' ')) {
    const algorithm = header.split(' ')[0] ?? '';
    throw new KmsError('IncompleteSignatureException', `Unsupported AWS 'algorithm': '${algorithm}'.`);
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(SIGV4_ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    if (fields.has(key)) throw new KmsError('IncompleteSignatureException', `Authorization header repeats '${key}'.`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  for (const required of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!fields.get(required)) {
      throw new KmsError('IncompleteSignatureException', `Authorization header requires '${required}' parameter.`);
    }
  }
  const credential = fields.get('Credential')!.split('/');
  if (credential.length !== 5 || credential.some((c) => c === '')) {
    throw new KmsError(
      'IncompleteSignatureException',
      "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.",
    );
  }
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  const signedHeaders = fields.get('SignedHeaders')!.split(';');
  const sorted = [...new Set(signedHeaders)].sort();
  if (signedHeaders.some((h) => h === '' || h !== h.toLowerCase()) || sorted.join(';') !== signedHeaders.join(';')) {
    throw new KmsError('IncompleteSignatureException', 'SignedHeaders must be lowercase, sorted and without duplicates.');
  }
  return { accessKeyId, scope: { date, region, service }, terminator, signedHeaders, signature: fields.get('Signature')! };
}

/** Verify the request's SigV4 signature; returns the credential that signed it. */
export function verifySigV4(req: IncomingSignedRequest, options: VerifySigV4Options): DevKmsCredential {
  const authorization = singleHeader(req, 'authorization');
  if (authorization === undefined) throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const auth = parseAuthorization(authorization);

  const credential = options.credentials.get(auth.accessKeyId);
  if (credential === undefined) {
    throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const token = singleHeader(req, 'x-amz-security-token');
  if (!sameSecret(token, credential.sessionToken)) {
    throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }

  if (auth.terminator !== 'aws4_request') {
    throw new KmsError(
      'InvalidSignatureException',
      `Credential should be scoped with a valid terminator: 'aws4_request', not '${auth.terminator}'.`,
    );
  }
  if (auth.scope.region !== options.region) {
    throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${auth.scope.region}'.`);
  }
  if (auth.scope.service !== options.service) {
    throw new KmsError('InvalidSignatureException', `Credential should be scoped to correct service: '${options.service}'.`);
  }

  const amzDate = singleHeader(req, 'x-amz-date');
  if (amzDate === undefined) {
    throw new KmsError('IncompleteSignatureException', "Authorization header requires existence of a 'X-Amz-Date' header.");
  }
  const signedAt = parseAmzDate(amzDate);
  if (auth.scope.date !== amzDate.slice(0, 8)) {
    throw new KmsError(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scope.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  const maxSkew = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const minutes = Math.round(maxSkew / 60000);
  if (signedAt < options.now - maxSkew) {
    throw new KmsError(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than ${basicIso(options.now - maxSkew)} (${basicIso(options.now)} - ${minutes} min.)`,
    );
  }
  if (signedAt > options.now + maxSkew) {
    throw new KmsError(
      'InvalidSignatureException',
      `Signature not yet current: ${amzDate} is still later than ${basicIso(options.now + maxSkew)} (${basicIso(options.now)} + ${minutes} min.)`,
    );
  }

  if (!auth.signedHeaders.includes('host')) {
    throw new KmsError('InvalidSignatureException', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  // x-amz-target names the operation: unsigned, it could be changed after signing (GenerateDataKeyWithoutPlaintext into GenerateDataKey).
  for (const mustSign of ['x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256', 'x-amz-target']) {
    if (headerValues(req, mustSign).length > 0 && !auth.signedHeaders.includes(mustSign)) {
      throw new KmsError('InvalidSignatureException', `'${mustSign}' must be a 'SignedHeader' in the AWS Authorization.`);
    }
  }

  const payloadHash = sha256Hex(req.body);
  const declaredHash = singleHeader(req, 'x-amz-content-sha256');
  if (declaredHash !== undefined && declaredHash.toLowerCase() !== payloadHash) {
    throw new KmsError('InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  let canonical: string;
  try {
    canonical = canonicalRequest({ method: req.method, target: req.target, headers: req.headers, signedHeaders: auth.signedHeaders, payloadHash });
  } catch (err) {
    if (err instanceof SigV4FormatError) throw new KmsError('IncompleteSignatureException', err.message);
    throw err;
  }
  const expected = signature(credential.secretAccessKey, auth.scope, stringToSign(amzDate, auth.scope, canonical));
  if (!sameSignature(auth.signature, expected)) {
    throw new KmsError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
  return credential;
}

/** Constant-time comparison of two lowercase hex signatures (length is public: 64). */
function sameSignature(given: string, expected: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, 'ascii'), Buffer.from(expected, 'ascii'));
}

function sameSecret(given: string | undefined, expected: string | undefined): boolean {
  if (given === undefined || expected === undefined) return given === expected;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
