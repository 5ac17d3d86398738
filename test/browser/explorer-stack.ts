/**
 * The stack the browser tests drive: a real enclave (dev NSM, the shipped PP-OCRv4 model), a real
 * transparency log (file store in a temp dir), the real gateway, and Debian's Chromium through
 * playwright-core. The gateway serves the explorer (`/ui/`), `/v1/policy` and the log (`/v1/log`)
 * itself.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDevCa } from '../../attestation/dev/dev-ca';
import type { PolicyFile } from '../../attestation/policy-file';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { parseGatewayConfig } from '../../gateway/config';
import { openTransparencyLog } from '../../gateway/log/open-log';
import type { TransparencyLog } from '../../gateway/log/transparency-log';
import { createLogger } from '../../gateway/observability/logger';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { publishedPolicyFile } from '../../gateway/ui/published-policy';
import { policyFor } from '../support/gateway-harness';

export const CHROMIUM = process.env.TEEGATE_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const SCREENSHOTS = join(__dirname, '../../test-artifacts/screenshots');

export interface ExplorerStack {
  /** Where the browser goes: the gateway. */
  readonly url: string;
  readonly enclave: RunningEnclave;
  readonly gateway: RunningGateway;
  readonly log: TransparencyLog;
  readonly policy: PolicyFile;
  close(): Promise<void>;
}

export async function startExplorerStack(): Promise<ExplorerStack> {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-ui-'));
  const ca = await createDevCa();
  const enclave = await startEnclave({ devCa: ca, host: '127.0.0.1' });
  const log = await openTransparencyLog({ store: 'file', dataDir: dir }, { publishIntervalMs: 100 });
  const config = parseGatewayConfig({
    file: {
      host: '127.0.0.1',
      port: 0,
      enclaves: [enclave.url],
      attestation: { rootCertificates: [enclave.devRootPem!], policy: policyFor(enclave.pcrs) },
      auth: { disabled: true },
      logLevel: 'silent',
      pool: { healthIntervalMs: 1000, healthTimeoutMs: 5000 },
    },
  });
  const policy = publishedPolicyFile(config.attestation);
  const gateway = await startGateway(config, { sink: log, logger: createLogger({ level: 'silent' }) });

  return {
    url: gateway.url,
    enclave,
    gateway,
    log,
    policy,
    async close() {
      await gateway.close();
      await log.close();
      await enclave.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A page that fails the test on any uncaught error or console error, and never reaches the network. */
export async function openPage(browser: Browser, errors: string[]): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.hostname !== '127.0.0.1' && u.protocol !== 'blob:' && u.protocol !== 'data:') errors.push(`network: ${req.url()}`);
  });
  return page;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
