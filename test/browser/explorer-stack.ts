/**
 * The stack the browser tests drive: a real enclave (dev NSM, the shipped PP-OCRv4 model), a real
 * transparency log (file store in a temp dir), the real gateway, and Debian's Chromium through
 * playwright-core. Routes the gateway does not serve yet (`/ui/`, `/v1/policy`, `/v1/log`) are
 * served by a thin front that proxies everything else to the gateway, so the tests run the same
 * whether or not the gateway mounts them itself.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDevCa } from '../../attestation/dev/dev-ca';
import type { PolicyFile } from '../../attestation/policy-file';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { parseGatewayConfig } from '../../gateway/config';
import { openTransparencyLog } from '../../gateway/log/open-log';
import { logRouter } from '../../gateway/log/routes';
import type { TransparencyLog } from '../../gateway/log/transparency-log';
import { createLogger } from '../../gateway/observability/logger';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { publishedPolicyFile } from '../../gateway/ui/published-policy';
import { createUiRouter } from '../../gateway/ui/router';

export const CHROMIUM = process.env.TEEGATE_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const SCREENSHOTS = join(__dirname, '../../test-artifacts/screenshots');

export interface ExplorerStack {
  /** Where the browser goes: the gateway, or the front when the gateway lacks a UI route. */
  readonly url: string;
  readonly enclave: RunningEnclave;
  readonly gateway: RunningGateway;
  readonly log: TransparencyLog;
  readonly policy: PolicyFile;
  /** Routes the front served because the gateway did not. */
  readonly fronted: readonly string[];
  close(): Promise<void>;
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

function proxyTo(target: string): express.RequestHandler {
  const { hostname, port } = new URL(target);
  return (req, res) => {
    const upstream = httpRequest({ hostname, port, method: req.method, path: req.originalUrl, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
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
      attestation: { rootCertificates: [enclave.devRootPem!], policy: { pcrs: { 0: enclave.pcrs[0], 1: enclave.pcrs[1], 2: enclave.pcrs[2] } } },
      auth: { disabled: true },
      logLevel: 'silent',
      pool: { healthIntervalMs: 1000, healthTimeoutMs: 5000 },
    },
  });
  const policy = publishedPolicyFile(config.attestation);
  const gateway = await startGateway(config, { sink: log, logger: createLogger({ level: 'silent' }) });

  const fronted: string[] = [];
  if ((await status(`${gateway.url}/ui/`)) !== 200) fronted.push('/ui');
  if ((await status(`${gateway.url}/v1/policy`)) !== 200) fronted.push('/v1/policy');
  if ((await status(`${gateway.url}/v1/log/checkpoint`)) !== 200) fronted.push('/v1/log');
  let front: Server | undefined;
  let url = gateway.url;
  if (fronted.length > 0) {
    const app = express();
    if (fronted.includes('/ui')) app.use('/ui', createUiRouter());
    if (fronted.includes('/v1/policy')) app.get('/v1/policy', (_req, res) => void res.json(policy));
    if (fronted.includes('/v1/log')) app.use('/v1/log', logRouter(log));
    app.use(proxyTo(gateway.url));
    front = createServer(app);
    await new Promise<void>((resolve) => front!.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
  }
  return {
    url,
    enclave,
    gateway,
    log,
    policy,
    fronted,
    async close() {
      if (front) {
        front.closeAllConnections();
        await new Promise<void>((resolve) => front!.close(() => resolve()));
      }
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
