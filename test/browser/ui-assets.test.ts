/**
 * The explorer's server side and pure parts, without a browser: the bundle builds for browsers and
 * any Node built-in fails the build; every registered error code has its meaning from
 * docs/errors.md; the router serves page, bundle, style and demo input under the explorer's CSP;
 * the published policy file round-trips; pasted receipts are parsed strictly.
 */
import { AWS_NITRO_ROOT_G1_PEM } from '../../attestation/nitro/aws-root';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { ERROR_REGISTRY, isTeegateError } from '../../attestation/errors';
import { parsePolicyFile } from '../../attestation/policy-file';
import { parseGatewayConfig } from '../../gateway/config';
import { buildUiBundle } from '../../gateway/ui/build';
import { loadErrorMeanings, parseErrorMeanings } from '../../gateway/ui/error-meanings';
import { publishedPolicyFile } from '../../gateway/ui/published-policy';
import { parseReceiptInput } from '../../gateway/ui/src/receipt-bundle';
import { DEMO_IMAGE, UI_CSP, createUiRouter } from '../../gateway/ui/router';

jest.setTimeout(60_000);

describe('browser bundle', () => {
  test('builds from gateway/ui/src with the verifier and the client SDK, no Node built-ins', async () => {
    const bundle = await buildUiBundle();
    expect(bundle.inputs).toEqual(expect.arrayContaining(['gateway/ui/src/main.ts', 'attestation/client/client.ts', 'attestation/nitro/verify.ts', 'attestation/receipt.ts', 'attestation/log/merkle.ts']));
    expect(bundle.inputs.filter((i) => i.startsWith('node_modules/jose/')).every((i) => i.startsWith('node_modules/jose/dist/browser/'))).toBe(true);
    expect(bundle.js).not.toMatch(/require\(["'](node:)?(fs|crypto|buffer|path)["']\)/);
    expect(bundle.js.length).toBeLessThan(400_000);
    expect(bundle.js).toContain('RECEIPT_MISMATCH'); // the error meanings are compiled in
  });

  const dir = mkdtempSync(join(tmpdir(), 'teegate-ui-build-'));
  test.each([
    ['node:crypto', "import { randomBytes } from 'node:crypto'; console.log(randomBytes(1));"],
    ['fs', "import { readFileSync } from 'fs'; console.log(readFileSync);"],
    ['buffer', "import { Buffer } from 'buffer'; console.log(Buffer);"],
    ['node:fs/promises', "import { readFile } from 'node:fs/promises'; console.log(readFile);"],
  ])('an import of %s fails the build, naming the importer', async (name, source) => {
    const leaf = join(dir, `leaf-${name.replace(/\W/g, '_')}.ts`);
    writeFileSync(leaf, source);
    const entry = join(dir, `entry-${name.replace(/\W/g, '_')}.ts`);
    writeFileSync(entry, `import './${leaf.split('/').pop()!.replace(/\.ts$/, '')}';`);
    await expect(buildUiBundle({ entry })).rejects.toThrow(`imports the Node built-in "${name}"`);
    await expect(buildUiBundle({ entry })).rejects.toThrow(leaf.split('/').pop()!);
  });
});

describe('error meanings', () => {
  test('every registered code has its meaning from docs/errors.md, as plain text', () => {
    const meanings = loadErrorMeanings();
    for (const code of Object.keys(ERROR_REGISTRY) as (keyof typeof ERROR_REGISTRY)[]) {
      expect(meanings[code]?.meaning.length).toBeGreaterThan(10);
      expect(meanings[code]?.action).toBe(ERROR_REGISTRY[code].action);
    }
    expect(Object.values(meanings).some((m) => m.meaning.includes('`'))).toBe(false);
  });

  test('rows of unknown codes and other lines are ignored', () => {
    const md = '| `NOT_A_CODE` | 400 | stop | x |\n| `PCR_MISMATCH` | 400 | stop | A `PCR` **differs**. |\ntext';
    expect(parseErrorMeanings(md)).toEqual({ PCR_MISMATCH: { action: 'stop', meaning: 'A PCR differs.' } });
  });
});

describe('router', () => {
  let server: Server;
  let url: string;
  let builds = 0;
  beforeAll(async () => {
    const app = express();
    app.use('/ui', createUiRouter());
    app.use(
      '/broken',
      createUiRouter({
        build: () => {
          builds += 1;
          return Promise.reject(new Error('src/main.ts imports the Node built-in "fs"'));
        },
      }),
    );
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('/ui redirects to /ui/, which serves the page under the explorer CSP', async () => {
    const redirect = await fetch(`${url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(UI_CSP);
    const html = await page.text();
    expect(html).toContain('<script src="app.js" defer></script>');
    expect(html).not.toMatch(/https?:\/\//); // nothing from another origin
  });

  test('serves the bundle, the style sheet and the demo input', async () => {
    const js = await fetch(`${url}/ui/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await js.text()).length).toBeGreaterThan(10_000);
    const css = await fetch(`${url}/ui/app.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    const png = await fetch(`${url}/ui/demo/line.png`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await png.arrayBuffer()).equals(readFileSync(DEMO_IMAGE))).toBe(true);
    expect((await fetch(`${url}/ui/missing.js`)).status).toBe(404);
  });

  test('a failed build answers 503 with the reason, and is retried on the next request', async () => {
    const first = await fetch(`${url}/broken/app.js`);
    expect(first.status).toBe(503);
    expect(await first.text()).toContain('imports the Node built-in');
    await fetch(`${url}/broken/app.js`);
    expect(builds).toBe(2);
  });

  test('a page whose script could not be built says why (browsers run no script answered 503)', async () => {
    const page = await fetch(`${url}/broken/`);
    expect(page.status).toBe(503);
    const html = await page.text();
    expect(html).toContain('The explorer could not be built: src/main.ts imports the Node built-in &#34;fs&#34;');
    expect(html).not.toContain('Loading the explorer');
  });
});

describe('published policy', () => {
  const pem = AWS_NITRO_ROOT_G1_PEM.trim();
  const pcr = (b: string) => b.repeat(96);

  test('round-trips through the policy file parser', () => {
    const config = parseGatewayConfig({ file: { auth: { disabled: true }, attestation: { rootCertificates: [pem], policy: { pcrs: { 0: pcr('a'), 2: pcr('b') }, maxAgeMs: 90_500 } } } });
    const loaded = parsePolicyFile(JSON.parse(JSON.stringify(publishedPolicyFile(config.attestation))));
    expect(loaded.policy).toEqual({ pcrs: { 0: pcr('a'), 2: pcr('b') }, allowDebug: false, maxAgeMs: 90_000 });
    expect(loaded.rootCertificates).toEqual([pem]);
  });

  test('no configured root means the AWS root: the file names none', () => {
    const config = parseGatewayConfig({ file: { auth: { disabled: true }, attestation: { policy: { pcrs: { 0: pcr('c') }, allowDebug: true } } } });
    const file = publishedPolicyFile(config.attestation);
    expect(file.rootCertificates).toBeUndefined();
    expect(file.allowDebug).toBe(true);
  });
});

describe('pasted receipts', () => {
  const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln';
  const salt = 'ab'.repeat(32);
  const tensor = { name: 'text', datatype: 'BYTES', shape: [1], data: ['hi'] };

  test('a bare receipt and a bundle are accepted', () => {
    expect(parseReceiptInput(`  ${jws}\n`)).toEqual({ format: 'teegate-receipt-bundle', version: 1, receipt: jws });
    const bundle = { format: 'teegate-receipt-bundle', version: 1, receipt: jws, salt, nonce: 'cafe', sealed: true, model: 'm', inputs: [tensor], outputs: [tensor], log_index: 3 };
    expect(parseReceiptInput(JSON.stringify(bundle))).toEqual(bundle);
  });

  test.each([
    ['empty', '   '],
    ['not JSON or JWS', 'hello'],
    ['an array', '[1]'],
    ['another format', JSON.stringify({ format: 'x', version: 1, receipt: jws })],
    ['no receipt', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1 })],
    ['a receipt that is not a JWS', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: 'a.b' })],
    ['a short salt', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: jws, salt: 'abcd' })],
    ['a nonce that is not hex', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: jws, nonce: 'xyz' })],
    ['sealed not boolean', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: jws, sealed: 'yes' })],
    ['a negative log index', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: jws, log_index: -1 })],
    ['tensors of the wrong shape', JSON.stringify({ format: 'teegate-receipt-bundle', version: 1, receipt: jws, outputs: [{ ...tensor, shape: [2] }] })],
  ])('%s is RECEIPT_INVALID', (_what, text) => {
    let caught: unknown;
    try {
      parseReceiptInput(text);
    } catch (err) {
      caught = err;
    }
    expect(isTeegateError(caught, 'RECEIPT_INVALID')).toBe(true);
  });
});
