/**
 * API keys: `Authorization: Bearer <key>`. The gateway stores only SHA-256 hashes of keys; a
 * presented key is hashed and compared against every stored hash in constant time, so neither
 * the comparison nor the lookup order reveals how close a guess was.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TeegateError } from '../../attestation/errors';
import type { ApiKeyConfig, ApiKeyScope, RateLimitConfig } from '../config';

export interface AuthenticatedKey {
  readonly id: string;
  readonly scopes: ReadonlySet<ApiKeyScope>;
  readonly rateLimit?: RateLimitConfig;
}

const KEY_PREFIX = 'tg_';
const MAX_KEY_CHARS = 256;

/** A new random API key (`tg_` + 32 random bytes, base64url). Show it once; store only its hash. */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

function keyDigest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/** Lower-case hex SHA-256 of a key: what the configuration stores. */
export function hashApiKey(key: string): string {
  return keyDigest(key).toString('hex');
}

export class ApiKeyStore {
  private readonly entries: readonly { readonly hash: Buffer; readonly key: AuthenticatedKey }[];

  constructor(keys: readonly ApiKeyConfig[]) {
    this.entries = keys.map((k) => ({
      hash: Buffer.from(k.sha256, 'hex'),
      key: { id: k.id, scopes: new Set(k.scopes), ...(k.rateLimit ? { rateLimit: k.rateLimit } : {}) },
    }));
  }

  /**
   * The key named by an Authorization header value. Throws AUTH_REQUIRED (no or malformed header)
   * or AUTH_INVALID (unknown key).
   */
  authenticate(header: string | undefined): AuthenticatedKey {
    if (header === undefined || header.length === 0) throw new TeegateError('AUTH_REQUIRED', 'this route needs an API key: send Authorization: Bearer <key>');
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header.trim());
    if (!match || match[1]!.length > MAX_KEY_CHARS) throw new TeegateError('AUTH_REQUIRED', 'the Authorization header must be "Bearer <key>"');
    const presented = keyDigest(match[1]!);
    let found: AuthenticatedKey | undefined;
    // Compare against every entry (no early exit) so timing does not depend on which one matches.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.hash, presented) && found === undefined) found = entry.key;
    }
    if (!found) throw new TeegateError('AUTH_INVALID', 'the API key is not valid');
    return found;
  }

  /** Throws AUTH_FORBIDDEN when the key lacks the scope. */
  static requireScope(key: AuthenticatedKey, scope: ApiKeyScope): void {
    if (!key.scopes.has(scope)) throw new TeegateError('AUTH_FORBIDDEN', `the API key ${key.id} lacks the ${scope} scope`);
  }
}
