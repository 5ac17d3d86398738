import { createHash } from 'node:crypto';
import { ApiKeyStore, generateApiKey, hashApiKey } from '../../gateway/auth/api-keys';
import { RateLimiter, RateLimitedError } from '../../gateway/limits/rate-limit';
import { clientSubject } from '../../gateway/limits/client-subject';
import { refusalOfSync } from '../support/error-code';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('API keys', () => {
  const inferKey = generateApiKey();
  const adminKey = generateApiKey();
  const store = new ApiKeyStore([
    { id: 'app', sha256: hashApiKey(inferKey), scopes: ['infer'] },
    { id: 'ops', sha256: hashApiKey(adminKey), scopes: ['infer', 'admin'], rateLimit: { requestsPerSecond: 1, burst: 1 } },
  ]);

  it('generates distinct keys and stores only their SHA-256', () => {
    expect(inferKey).toMatch(/^tg_[A-Za-z0-9_-]{43}$/);
    expect(inferKey).not.toBe(adminKey);
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('authenticates a Bearer key and reports its id and scopes', () => {
    const key = store.authenticate(`Bearer ${adminKey}`);
    expect(key.id).toBe('ops');
    expect([...key.scopes]).toEqual(['infer', 'admin']);
    expect(key.rateLimit).toEqual({ requestsPerSecond: 1, burst: 1 });
    expect(store.authenticate(`bearer ${inferKey}`).id).toBe('app');
  });

  it('answers AUTH_REQUIRED without a usable header and AUTH_INVALID for an unknown key', () => {
    expect(code(() => store.authenticate(undefined))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(''))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Basic ${inferKey}`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate('Bearer '))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Bearer ${'x'.repeat(300)}`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Bearer ${inferKey}x`))).toBe('AUTH_INVALID');
    expect(code(() => store.authenticate(`Bearer ${hashApiKey(inferKey)}`))).toBe('AUTH_INVALID');
  });

  it('takes the header only as a whole "Bearer <key>" token: anything before or after it, or a space inside it, is AUTH_REQUIRED', () => {
    expect(code(() => store.authenticate(`Token Bearer ${inferKey}`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`xBearer ${inferKey}`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Bearer ${inferKey} ${adminKey}`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Bearer ${inferKey} x`))).toBe('AUTH_REQUIRED');
    expect(code(() => store.authenticate(`Bearer  ${inferKey}`))).toBe('AUTH_REQUIRED');
    // Whitespace around the whole value is not part of it.
    expect(store.authenticate(` Bearer ${inferKey}\t`).id).toBe('app');
  });

  it('accepts a configured key of up to 256 characters; a longer one is AUTH_REQUIRED before it is hashed', () => {
    const longest = `tg_${'k'.repeat(253)}`;
    const tooLong = `${longest}k`;
    const longStore = new ApiKeyStore([
      { id: 'longest', sha256: hashApiKey(longest), scopes: ['infer'] },
      { id: 'too-long', sha256: hashApiKey(tooLong), scopes: ['infer'] },
    ]);
    expect(longest).toHaveLength(256);
    expect(longStore.authenticate(`Bearer ${longest}`).id).toBe('longest');
    expect(code(() => longStore.authenticate(`Bearer ${tooLong}`))).toBe('AUTH_REQUIRED');
    // One character short of a key is a key that is not valid.
    expect(code(() => longStore.authenticate(`Bearer ${longest.slice(0, 255)}`))).toBe('AUTH_INVALID');
  });

  it('hashes exactly the bytes of the key: surrounding whitespace changes the hash', () => {
    expect(hashApiKey(' abc')).toBe(createHash('sha256').update(' abc').digest('hex'));
    expect(hashApiKey('abc\n')).not.toBe(hashApiKey('abc'));
  });

  it('an empty Authorization header is answered as no key at all, with the message that asks for one', () => {
    for (const header of [undefined, '']) {
      expect(refusalOfSync(() => store.authenticate(header))).toEqual({ code: 'AUTH_REQUIRED', message: 'this route needs an API key: send Authorization: Bearer <key>' });
    }
    expect(refusalOfSync(() => store.authenticate('Bearer'))).toEqual({ code: 'AUTH_REQUIRED', message: 'the Authorization header must be "Bearer <key>"' });
  });

  it('answers AUTH_FORBIDDEN when the scope is missing', () => {
    const key = store.authenticate(`Bearer ${inferKey}`);
    expect(code(() => ApiKeyStore.requireScope(key, 'admin'))).toBe('AUTH_FORBIDDEN');
    expect(code(() => ApiKeyStore.requireScope(key, 'infer'))).toBeUndefined();
  });
});

describe('token bucket rate limit', () => {
  it('allows a burst, refuses with Retry-After, refills at the rate, per subject', () => {
    let now = 0;
    const limiter = new RateLimiter({ requestsPerSecond: 2, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) limiter.take('a');
    let refused: unknown;
    try {
      limiter.take('a');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', status: 429, retryAfterSeconds: 1 });
    limiter.take('b'); // another subject has its own bucket
    now += 500; // one token back at 2/s
    limiter.take('a');
    expect(code(() => limiter.take('a'))).toBe('RATE_LIMITED');
    now += 10_000; // never more than the burst
    for (let i = 0; i < 3; i++) limiter.take('a');
    expect(code(() => limiter.take('a'))).toBe('RATE_LIMITED');
  });

  it('uses a per-subject limit when given and bounds its memory', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 100, burst: 100 }, () => 0, 2);
    const strict = { requestsPerSecond: 0.1, burst: 1 };
    limiter.take('k', strict);
    expect(code(() => limiter.take('k', strict))).toBe('RATE_LIMITED');
    let err: unknown;
    try {
      limiter.take('k', strict);
    } catch (e) {
      err = e;
    }
    expect((err as RateLimitedError).retryAfterSeconds).toBe(10);
    limiter.take('x');
    limiter.take('y'); // evicts the oldest bucket ('k'), which starts full again
    limiter.take('k', strict);
  });

  it('keeps a subject\'s bucket per limit: the same subject under another limit starts with that limit\'s full burst', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 100, burst: 3 }, () => 0);
    const strict = { requestsPerSecond: 0.1, burst: 1 };
    limiter.take('k', strict);
    expect(code(() => limiter.take('k', strict))).toBe('RATE_LIMITED');
    for (let i = 0; i < 3; i++) limiter.take('k');
    expect(code(() => limiter.take('k'))).toBe('RATE_LIMITED');
  });

  it('check refuses as take would but takes nothing, and keeps no bucket for a subject it has not seen', () => {
    let now = 0;
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 1 }, () => now, 1);
    limiter.check('new'); // nothing kept: 'new' does not evict 'a' below
    limiter.take('a');
    expect(code(() => limiter.check('a'))).toBe('RATE_LIMITED');
    now += 1000;
    limiter.check('a');
    limiter.check('a'); // check took nothing
    limiter.take('a');
    expect(code(() => limiter.take('a'))).toBe('RATE_LIMITED');
  });
});

describe('the bucket a client address fills (clientSubject)', () => {
  it('an IPv4 address is its own; an IPv4-mapped IPv6 address is that IPv4 address', () => {
    expect(clientSubject('192.0.2.7')).toBe('192.0.2.7');
    expect(clientSubject('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientSubject('192.0.2.8')).not.toBe(clientSubject('192.0.2.7'));
  });

  it('IPv6 addresses of one /64 share a bucket, however written; another /64 has its own', () => {
    const subjects = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:9', '2001:DB8:1:2::abcd'].map(clientSubject);
    expect(new Set(subjects)).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(clientSubject('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
  });

  it('so a host rotating through its /64 is limited like one address', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 2 }, () => 0);
    limiter.take(clientSubject('2001:db8:1:2::1'));
    limiter.take(clientSubject('2001:db8:1:2::2'));
    expect(() => limiter.take(clientSubject('2001:db8:1:2::3'))).toThrow(RateLimitedError);
    limiter.take(clientSubject('2001:db8:9:9::1')); // another network
  });

  it('an address that is not one (a Unix socket has none) still gets a bucket of its own', () => {
    expect(clientSubject(undefined)).toBe('address:unknown');
    expect(clientSubject('not an address')).toBe('address:not an address');
  });
});
