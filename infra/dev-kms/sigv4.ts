/**
 * AWS Signature Version 4 computation (the signing half, shared by the verifier and the tests):
 * canonical request, string to sign, signing key derivation and signature, as specified in
 * "Create a signed AWS API request" (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
 * Checked against the aws-sig-v4-test-suite vectors in test/unit/sigv4.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_PAYLOAD_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SigV4Scope {
  /** YYYYMMDD */
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

export interface CanonicalRequestInput {
  readonly method: string;
  /** The request target as sent on the wire: percent-encoded path and optional `?query`. */
  readonly target: string;
  /** Raw header pairs as received (names in any case, repeated names allowed). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Lowercase names of the signed headers, as listed in SignedHeaders. */
  readonly signedHeaders: readonly string[];
  /** Lowercase hex SHA-256 of the payload. */
  readonly payloadHash: string;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 percent-encoding of everything but the unreserved characters (A-Z a-z 0-9 - _ . ~). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decodeComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, '%20'));
  } catch {
    throw new SigV4FormatError('the request URI is not valid percent-encoding');
  }
}

/** Thrown for a request that cannot even be put in canonical form. */
export class SigV4FormatError extends Error {
  override readonly name = 'SigV4FormatError';
}

/** Canonical URI (non-S3 rules): dot segments removed, each segment decoded then encoded once. */
export function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  const out: string[] = [];
  for (const segment of path.split('/').slice(1)) {
    const decoded = decodeComponent(segment);
    if (decoded === '.') continue;
    if (decoded === '..') {
      out.pop();
      continue;
    }
    out.push(uriEncode(decoded));
  }
  return '/' + out.join('/');
}

/** Canonical query string: parameters decoded, re-encoded, sorted by name then value. */
export function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      const value = eq < 0 ? '' : p.slice(eq + 1);
      return [uriEncode(decodeComponent(name)), uriEncode(decodeComponent(value))] as const;
    });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Header value canonical form: trimmed, runs of spaces collapsed to one. */
function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

export function canonicalRequest(input: CanonicalRequestInput): string {
  const q = input.target.indexOf('?');
  const path = q < 0 ? input.target : input.target.slice(0, q);
  const query = q < 0 ? '' : input.target.slice(q + 1);
  const values = new Map<string, string[]>();
  for (const [name, value] of input.headers) {
    const lower = name.toLowerCase();
    const list = values.get(lower) ?? [];
    list.push(canonicalHeaderValue(value));
    values.set(lower, list);
  }
  const headerLines = input.signedHeaders.map((name) => {
    const list = values.get(name);
    if (list === undefined) throw new SigV4FormatError(`signed header '${name}' is not present in the request`);
    return `${name}:${list.join(',')}\n`;
  });
  return [
    input.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query),
    headerLines.join(''),
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

export function credentialScope(scope: SigV4Scope): string {
  return `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
}

export function stringToSign(amzDate: string, scope: SigV4Scope, canonical: string): string {
  return [SIGV4_ALGORITHM, amzDate, credentialScope(scope), sha256Hex(canonical)].join('\n');
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function signingKey(secretAccessKey: string, scope: SigV4Scope): Buffer {
  const kDate = hmac('AWS4' + secretAccessKey, scope.date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  return hmac(kService, 'aws4_request');
}

export function signature(secretAccessKey: string, scope: SigV4Scope, toSign: string): string {
  return hmac(signingKey(secretAccessKey, scope), toSign).toString('hex');
}

export interface SignInput extends Omit<CanonicalRequestInput, 'signedHeaders'> {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly service: string;
  /** ISO 8601 basic form, e.g. 20150830T123600Z; its first 8 characters are the scope date. */
  readonly amzDate: string;
  /** Defaults to every header given, lowercased and sorted. */
  readonly signedHeaders?: readonly string[];
}

export interface SignResult {
  readonly canonicalRequest: string;
  readonly stringToSign: string;
  readonly signature: string;
  readonly authorization: string;
}

/** Sign a request (used by tests and by tools that call the dev KMS without the SDK). */
export function signRequest(input: SignInput): SignResult {
  const signedHeaders =
    input.signedHeaders ?? [...new Set(input.headers.map(([n]) => n.toLowerCase()))].sort();
  const scope: SigV4Scope = { date: input.amzDate.slice(0, 8), region: input.region, service: input.service };
  const canonical = canonicalRequest({ ...input, signedHeaders });
  const toSign = stringToSign(input.amzDate, scope, canonical);
  const sig = signature(input.secretAccessKey, scope, toSign);
  return {
    canonicalRequest: canonical,
    stringToSign: toSign,
    signature: sig,
    authorization:
      `${SIGV4_ALGORITHM} Credential=${input.accessKeyId}/${credentialScope(scope)}, ` +
      `SignedHeaders=${signedHeaders.join(';')}, Signature=${sig}`,
  };
}
