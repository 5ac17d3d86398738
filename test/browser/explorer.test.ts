/**
 * The web explorer in real Chromium against a real enclave, gateway and transparency log: the live
 * enclave verified in the browser, a verified inference on the demo model with every step passing,
 * a receipt tampered two ways and rejected with the exact code, the log view with its inclusion
 * check and chart, and a wrong policy explained in words. Screenshots go to
 * test-artifacts/screenshots/.
 */
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { DEMO_TEXT } from '../support/demo';
import { launchChromium, openPage, screenshot, startExplorerStack, type ExplorerStack } from './explorer-stack';

jest.setTimeout(120_000);

let stack: ExplorerStack;
let browser: Browser;
let page: Page;
const errors: string[] = [];
let downloaded = '';

beforeAll(async () => {
  stack = await startExplorerStack();
  browser = await launchChromium();
  page = await openPage(browser, errors);
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

afterEach(() => {
  expect(errors).toEqual([]);
});

async function stepStates(p: Page, container: string): Promise<Record<string, string>> {
  return p.$$eval(`${container} [data-step]`, (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-step'), e.getAttribute('data-status')])));
}

async function finalVerdict(p: Page, container: string): Promise<string> {
  const el = await p.waitForSelector(`${container} [data-verdict]:not([data-verdict="running"])`, { timeout: 60_000 });
  return (await el.getAttribute('data-verdict'))!;
}

test('loads /ui/ and verifies the live enclave in the browser', async () => {
  await page.goto(`${stack.url}/ui/`);
  const card = await page.waitForSelector('[data-enclave][data-verified]', { timeout: 60_000 });
  expect(await card.getAttribute('data-verified')).toBe('true');
  expect(await stepStates(page, '[data-enclave]')).toEqual({
    parse: 'passed', chain: 'passed', 'doc-signature': 'passed', time: 'passed', policy: 'passed', binding: 'passed', manifest: 'passed', boot: 'passed',
  });
  const pinned = await page.$$eval('table.pcrs tr[data-pcr] .pill.ok', (els) => els.length);
  expect(pinned).toBe(3);
  expect(await page.textContent('#trust-banner')).toContain('3 PCRs pinned');
  expect(await page.textContent('.chain')).toMatch(/valid, expires in/);
  await screenshot(page, 'enclaves');
});

test('runs an inference on the demo model and sees every step verified', async () => {
  await page.goto(`${stack.url}/ui/#/infer`);
  await page.click('#run-inference');
  expect(await finalVerdict(page, '#infer-status')).toBe('verified');
  const states = await stepStates(page, '#infer-steps');
  expect(Object.keys(states)).toEqual(['attestation', 'manifest', 'signature', 'model', 'input', 'output', 'nonce', 'mode', 'log']);
  expect(Object.values(states).every((s) => s === 'passed')).toBe(true);
  expect(await page.textContent('#ocr-text')).toBe(DEMO_TEXT);
  await screenshot(page, 'inference-verified');
});

test('the receipt bundle downloads as the JSON the verifier reads', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download receipt bundle')]);
  expect(download.suggestedFilename()).toMatch(/^receipt-[0-9a-f-]+\.json$/);
  const bundle = JSON.parse(readFileSync((await download.path())!, 'utf8')) as Record<string, unknown>;
  expect(bundle).toMatchObject({ format: 'teegate-receipt-bundle', version: 1, model: 'ppocr-v4-rec', sealed: true });
  expect(typeof bundle.receipt).toBe('string');
  downloaded = JSON.stringify(bundle);
});

test('the receipt verifier accepts the untouched receipt and rejects tampered ones with the exact code', async () => {
  await page.click('#open-in-verifier');
  expect(await finalVerdict(page, '#receipt-result')).toBe('verified');
  expect(Object.values(await stepStates(page, '#receipt-result')).every((s) => s === 'passed')).toBe(true);
  await screenshot(page, 'receipt-verified');
  const original = await page.inputValue('#receipt-text');

  // The downloaded file, dropped on the verifier, verifies the same.
  await page.fill('#receipt-text', '');
  await page.evaluate((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], 'receipt.json', { type: 'application/json' }));
    document.getElementById('receipt-drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, downloaded);
  await page.waitForFunction(() => (document.getElementById('receipt-text') as HTMLTextAreaElement).value.length > 0);
  expect(await finalVerdict(page, '#receipt-result')).toBe('verified');

  // The answer changed on the way: the output the bundle holds is not the one the receipt covers.
  const bundle = JSON.parse(original) as { outputs: { name: string; data: unknown[] }[]; receipt: string };
  bundle.outputs.find((o) => o.name === 'text')!.data = ['Confidential inference verifled'];
  await page.fill('#receipt-text', JSON.stringify(bundle, null, 2));
  await page.click('#verify-receipt');
  expect(await finalVerdict(page, '#receipt-result')).toBe('rejected');
  const output = await page.$('#receipt-result [data-step="output"]');
  expect(await output!.getAttribute('data-status')).toBe('failed');
  expect(await output!.getAttribute('data-code')).toBe('RECEIPT_MISMATCH');
  expect(await output!.textContent()).toContain('Do not trust this result');
  await screenshot(page, 'receipt-tampered-output');

  // A forged signature: one character of the receipt's signature changed.
  const forged = JSON.parse(original) as { receipt: string };
  const last = forged.receipt.length - 5;
  forged.receipt = forged.receipt.slice(0, last) + (forged.receipt[last] === 'A' ? 'B' : 'A') + forged.receipt.slice(last + 1);
  await page.fill('#receipt-text', JSON.stringify(forged));
  await page.click('#verify-receipt');
  expect(await finalVerdict(page, '#receipt-result')).toBe('rejected');
  const signature = await page.$('#receipt-result [data-step="signature"]');
  expect(await signature!.getAttribute('data-status')).toBe('failed');
  expect(await signature!.getAttribute('data-code')).toBe('RECEIPT_SIGNATURE_INVALID');
  await screenshot(page, 'receipt-tampered-signature');
});

test('a plain (unsealed) inference verifies too, and says the gateway could read it', async () => {
  await page.goto(`${stack.url}/ui/#/infer`);
  await page.uncheck('#sealed');
  await page.click('#run-inference');
  expect(await finalVerdict(page, '#infer-status')).toBe('verified');
  expect(await page.textContent('#infer-steps [data-step="mode"]')).toContain('plain request');
  expect(await page.textContent('#infer-result')).toContain('the gateway could read it');
});

test('text that is not a receipt is explained, not crashed on', async () => {
  await page.goto(`${stack.url}/ui/#/receipt`);
  await page.fill('#receipt-text', 'hello, is this a receipt?');
  await page.click('#verify-receipt');
  expect(await finalVerdict(page, '#receipt-result')).toBe('rejected');
  const box = await page.waitForSelector('#receipt-result .error-box');
  expect(await box.getAttribute('data-code')).toBe('RECEIPT_INVALID');
  expect(await box.textContent()).toContain('neither a receipt');

  // Shaped like a receipt, but its claims are no JSON: no enclave is named, so nothing before the
  // signature step was checked, and the page must not show it as passed.
  const b64url = (x: string) => Buffer.from(x).toString('base64url');
  await page.fill('#receipt-text', `${b64url('{"alg":"ES256"}')}.${b64url('not json')}.${b64url('sig')}`);
  await page.click('#verify-receipt');
  expect(await finalVerdict(page, '#receipt-result')).toBe('rejected');
  const states = await stepStates(page, '#receipt-result');
  expect([states.attestation, states.manifest, states.signature]).toEqual(['skipped', 'skipped', 'failed']);
});

test('the log view verifies the checkpoint, charts receipts per image and checks inclusion', async () => {
  await page.goto(`${stack.url}/ui/#/log`);
  await page.waitForSelector('[data-checkpoint="verified"]', { timeout: 30_000 });
  const size = Number(await page.textContent('#checkpoint-size'));
  expect(size).toBeGreaterThanOrEqual(2); // the enclave's boot attestation and the receipt
  expect(await page.$$eval('#receipts-chart svg rect', (els) => els.length)).toBeGreaterThanOrEqual(1);
  expect(await page.getAttribute('#receipts-chart .legend li', 'data-image')).toBe(stack.enclave.pcrs[0]);
  const kinds = await page.$$eval('#log-entries tr[data-kind]', (els) => els.map((e) => e.getAttribute('data-kind')));
  expect(kinds).toContain('receipt');
  expect(kinds).toContain('attestation');
  await page.click('#log-entries tr[data-kind="receipt"] button');
  await page.waitForSelector('#log-entries tr[data-kind="receipt"] [data-inclusion="passed"]');
  await page.click('#log-entries tr[data-kind="attestation"] button');
  await page.waitForSelector('#log-entries tr[data-kind="attestation"] [data-inclusion="passed"]');
  await screenshot(page, 'log');
  // A second visit checks consistency with the checkpoint the first one remembered.
  await page.reload();
  await page.waitForSelector('[data-consistency="passed"]');
  // A remembered checkpoint larger than the log: under the same key the log shrank; under another
  // key (a new log that took the same origin, e.g. after `rm -rf data`) it is a first visit.
  const remember = (logKey?: string) =>
    page.evaluate((k) => {
      const seen = JSON.parse(localStorage.getItem('teegate.ui.checkpoint')!) as { size: number; logKey: string };
      localStorage.setItem('teegate.ui.checkpoint', JSON.stringify({ ...seen, size: seen.size + 100, logKey: k ?? seen.logKey }));
    }, logKey);
  await remember();
  await page.reload();
  expect(await (await page.waitForSelector('.error-box')).getAttribute('data-code')).toBe('LOG_INCONSISTENT');
  await remember('another.log+01234567+AQ==');
  await page.reload();
  expect(await (await page.waitForSelector('[data-consistency="first-visit"]')).textContent()).toContain('first visit from this browser');
});

test('a policy that pins another image rejects the enclave, in words', async () => {
  await page.goto(`${stack.url}/ui/#/trust`);
  const wrong = { ...stack.policy, pcrs: { ...stack.policy.pcrs, 0: 'ab'.repeat(48) } };
  await page.fill('#policy-text', JSON.stringify(wrong));
  await page.click('#pin-policy');
  await page.waitForSelector('#policy-card .pill.ok');
  await screenshot(page, 'trust-pinned-policy');
  await page.goto(`${stack.url}/ui/#/enclaves`);
  const card = await page.waitForSelector('[data-enclave][data-verified]', { timeout: 60_000 });
  expect(await card.getAttribute('data-verified')).toBe('false');
  const policy = await page.$('[data-enclave] [data-step="policy"]');
  expect(await policy!.getAttribute('data-status')).toBe('failed');
  expect(await policy!.getAttribute('data-code')).toBe('PCR_MISMATCH');
  expect(await policy!.textContent()).toContain('Do not trust this result');
  expect(await page.textContent('[data-enclave] tr[data-pcr="0"]')).toContain('differs');
  await screenshot(page, 'enclave-rejected-policy');
  await page.evaluate(() => localStorage.clear());
});
