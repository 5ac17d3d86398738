/**
 * SigV4 against the AWS Signature Version 4 test suite (aws-sig-v4-test-suite, as published by AWS
 * in "Signature Version 4 test suite", https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html,
 * and vendored by aws-c-auth under tests/aws-sig-v4-test-suite/). Every case uses access key
 * AKIDEXAMPLE, secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service",
 * time 20150830T123600Z. The expected signatures below are the suite's published values.
 */
import { canonicalQuery, canonicalUri, signRequest, signingKey, EMPTY_PAYLOAD_SHA256, sha256Hex } from '../../infra/dev-kms/sigv4';
import { verifySigV4, type DevKmsCredential } from '../../infra/dev-kms/sigv4-verify';
import { isKmsError, type KmsErrorType } from '../../infra/dev-kms/kms-error';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const AMZ_DATE = '20150830T123600Z';
const SUITE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET, region: 'us-east-1', service: 'service', amzDate: AMZ_DATE };
const BASE_HEADERS: Array<[string, string]> = [
  ['Host', 'example.amazonaws.com'],
  ['X-Amz-Date', AMZ_DATE],
];
const NOW = Date.UTC(2015, 7, 30, 12, 36, 0);
const CREDENTIALS = new Map<string, DevKmsCredential>([['AKIDEXAMPLE', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET }]]);

describe('SigV4 signing: aws-sig-v4-test-suite', () => {
  it('get-vanilla: canonical request, string to sign and signature', () => {
    const r = signRequest({ ...SUITE, method: 'GET', target: '/', headers: BASE_HEADERS, payloadHash: EMPTY_PAYLOAD_SHA256 });
    expect(r.canonicalRequest).toBe(
      'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n' + EMPTY_PAYLOAD_SHA256,
    );
    expect(r.stringToSign).toBe(
      'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n' +
        'bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
    );
    expect(r.signature).toBe('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
    expect(r.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('get-vanilla-query-order-key-case: query parameters sorted by name', () => {
    const r = signRequest({ ...SUITE, method: 'GET', target: '/?Param2=value2&Param1=value1', headers: BASE_HEADERS, payloadHash: EMPTY_PAYLOAD_SHA256 });
    expect(r.canonicalRequest.split('\n')[2]).toBe('Param1=value1&Param2=value2');
    expect(r.signature).toBe('b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500');
  });

  it('get-utf8: path segment decoded and re-encoded', () => {
    const r = signRequest({ ...SUITE, method: 'GET', target: '/%E1%88%B4', headers: BASE_HEADERS, payloadHash: EMPTY_PAYLOAD_SHA256 });
    expect(r.canonicalRequest.split('\n')[1]).toBe('/%E1%88%B4');
    expect(r.signature).toBe('8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85');
  });

  it('post-vanilla: empty body hashes as the empty string', () => {
    const r = signRequest({ ...SUITE, method: 'POST', target: '/', headers: BASE_HEADERS, payloadHash: sha256Hex('') });
    expect(r.signature).toBe('5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b');
  });

  it('derives the signing key of the suite scope', () => {
    expect(signingKey(SECRET, { date: '20150830', region: 'us-east-1', service: 'service' }).toString('hex')).toBe(
      '938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75',
    );
  });

  it('normalizes paths and queries', () => {
    expect(canonicalUri('/a/./b/../c')).toBe('/a/c');
    expect(canonicalUri('/example%20space/')).toBe('/example%20space/');
    expect(canonicalQuery('b=2&a=1&A=0&a=0')).toBe('A=0&a=0&a=1&b=2');
    expect(canonicalQuery("x=a b*'")).toBe('x=a%20b%2A%27');
  });
});

describe('SigV4 verification', () => {
  const body = new TextEncoder().encode('{"KeyId":"k"}');
  function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}, extraHeaders: Array<[string, string]> = []) {
    const headers: Array<[string, string]> = [...BASE_HEADERS, ['Content-Type', 'application/x-amz-json-1.1'], ...extraHeaders];
    const r = signRequest({ ...SUITE, method: 'POST', target: '/', headers, payloadHash: sha256Hex(body), ...overrides });
    return { method: 'POST', target: '/', headers: [...headers, ['Authorization', r.authorization] as [string, string]], body };
  }
  const options = { credentials: CREDENTIALS, region: 'us-east-1', service: 'service', now: NOW };

  function rejects(fn: () => unknown, type: KmsErrorType, message?: RegExp): void {
    try {
      fn();
    } catch (err) {
      expect(isKmsError(err, type)).toBe(true);
      if (message) expect((err as Error).message).toMatch(message);
      return;
    }
    throw new Error(`expected ${type}`);
  }

  it('accepts the get-vanilla request of the suite', () => {
    const req = {
      method: 'GET',
      target: '/',
      headers: [
        ...BASE_HEADERS,
        ['Authorization', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
      ] as Array<[string, string]>,
      body: new Uint8Array(0),
    };
    expect(verifySigV4(req, options).accessKeyId).toBe('AKIDEXAMPLE');
  });

  it('accepts a signed POST and rejects a changed body', () => {
    const req = signed();
    expect(verifySigV4(req, options).accessKeyId).toBe('AKIDEXAMPLE');
    rejects(() => verifySigV4({ ...req, body: new TextEncoder().encode('{"KeyId":"x"}') }, options), 'InvalidSignatureException', /does not match/);
  });

  it('rejects a signature made with another secret', () => {
    rejects(() => verifySigV4(signed({ secretAccessKey: 'not-the-secret' }), options), 'InvalidSignatureException', /signature we calculated/);
  });

  it('rejects an unknown access key', () => {
    rejects(() => verifySigV4(signed({ accessKeyId: 'AKIDUNKNOWN' }), options), 'UnrecognizedClientException');
  });

  it('rejects a missing Authorization header', () => {
    rejects(() => verifySigV4({ method: 'POST', target: '/', headers: BASE_HEADERS, body }, options), 'MissingAuthenticationTokenException');
  });

  it('rejects malformed Authorization headers', () => {
    const base = signed();
    const withAuth = (value: string) => ({ ...base, headers: [...BASE_HEADERS, ['Authorization', value] as [string, string]] });
    rejects(() => verifySigV4(withAuth('AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00'), options), 'IncompleteSignatureException');
    rejects(() => verifySigV4(withAuth('AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00'), options), 'IncompleteSignatureException', /Credential/);
    rejects(() => verifySigV4(withAuth('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830, SignedHeaders=host, Signature=00'), options), 'IncompleteSignatureException');
    rejects(
      () => verifySigV4(withAuth('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date;host, Signature=00'), options),
      'IncompleteSignatureException',
    );
    rejects(
      () => verifySigV4(withAuth('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=' + '0'.repeat(64)), options),
      'InvalidSignatureException',
      /Host/,
    );
  });

  it('rejects a signature scoped to another region, service or terminator', () => {
    rejects(() => verifySigV4(signed({ region: 'eu-west-1' }), options), 'InvalidSignatureException', /region/);
    rejects(() => verifySigV4(signed({ service: 'kms' }), options), 'InvalidSignatureException', /service/);
  });

  it('enforces the 15 minute clock skew both ways', () => {
    const req = signed();
    expect(verifySigV4(req, { ...options, now: NOW + 14 * 60_000 }).accessKeyId).toBe('AKIDEXAMPLE');
    rejects(() => verifySigV4(req, { ...options, now: NOW + 16 * 60_000 }), 'InvalidSignatureException', /^Signature expired: 20150830T123600Z is now earlier than/);
    rejects(() => verifySigV4(req, { ...options, now: NOW - 16 * 60_000 }), 'InvalidSignatureException', /^Signature not yet current/);
  });

  it('rejects a credential scope date that differs from X-Amz-Date, and a malformed date', () => {
    const req = signed();
    const auth = req.headers.find(([n]) => n === 'Authorization')![1].replace('/20150830/', '/20150831/');
    rejects(() => verifySigV4({ ...req, headers: [...req.headers.filter(([n]) => n !== 'Authorization'), ['Authorization', auth]] }, options), 'InvalidSignatureException', /Date in Credential scope/);
    const badDate = req.headers.map(([n, v]): [string, string] => (n === 'X-Amz-Date' ? [n, '2015-08-30T12:36:00Z'] : [n, v]));
    rejects(() => verifySigV4({ ...req, headers: badDate }, options), 'IncompleteSignatureException', /ISO-8601/);
    const noDate = req.headers.filter(([n]) => n !== 'X-Amz-Date');
    rejects(() => verifySigV4({ ...req, headers: noDate }, options), 'IncompleteSignatureException', /X-Amz-Date/);
  });

  it('checks x-amz-content-sha256 against the payload', () => {
    const good = signed({}, [['X-Amz-Content-Sha256', sha256Hex(body)]]);
    expect(verifySigV4(good, options).accessKeyId).toBe('AKIDEXAMPLE');
    const lying = signed({}, [['X-Amz-Content-Sha256', sha256Hex('other')]]);
    rejects(() => verifySigV4(lying, options), 'InvalidSignatureException', /x-amz-content-sha256/);
  });

  it('requires the configured session token, and only it', () => {
    const withToken = new Map([['AKIDEXAMPLE', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET, sessionToken: 'tok' }]]);
    expect(verifySigV4(signed({}, [['X-Amz-Security-Token', 'tok']]), { ...options, credentials: withToken }).accessKeyId).toBe('AKIDEXAMPLE');
    rejects(() => verifySigV4(signed({}, [['X-Amz-Security-Token', 'bad']]), { ...options, credentials: withToken }), 'UnrecognizedClientException');
    rejects(() => verifySigV4(signed(), { ...options, credentials: withToken }), 'UnrecognizedClientException');
    rejects(() => verifySigV4(signed({}, [['X-Amz-Security-Token', 'tok']]), options), 'UnrecognizedClientException');
  });

  it('rejects an unsigned header that must be signed', () => {
    const req = signed({ signedHeaders: ['content-type', 'host'] });
    rejects(() => verifySigV4(req, options), 'InvalidSignatureException', /x-amz-date/);
    // The operation name too: else GenerateDataKeyWithoutPlaintext could become GenerateDataKey after signing.
    const target: Array<[string, string]> = [['X-Amz-Target', 'TrentService.GenerateDataKeyWithoutPlaintext']];
    expect(verifySigV4(signed({}, target), options).accessKeyId).toBe('AKIDEXAMPLE');
    rejects(() => verifySigV4(signed({ signedHeaders: ['content-type', 'host', 'x-amz-date'] }, target), options), 'InvalidSignatureException', /'x-amz-target' must be a 'SignedHeader'/);
  });
});
