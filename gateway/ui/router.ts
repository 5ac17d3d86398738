/**
 * The web explorer at `/ui/`: one HTML page, its stylesheet, the browser bundle (built in memory by
 * esbuild on the first request, then cached for the life of the process) and the demo input. All
 * assets come from this router: no CDN, no network at run time. Mount with
 * `app.use('/ui', createUiRouter())` before the gateway's ROUTE_NOT_FOUND handler.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Router, type Response } from 'express';
import { buildUiBundle, type UiBundle } from './build';

export const DEMO_IMAGE = join(__dirname, '../../enclave/models/demo/line.png');
const STATIC = join(__dirname, 'static');

/** The page may load its own script, style and images, and talk to its own origin only. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface UiRouterOptions {
  /** Builds the bundle (default: buildUiBundle); called once, the result is cached. */
  readonly build?: () => Promise<UiBundle>;
}

/** The page's placeholder until the script renders (static/index.html). */
const LOADING = '<p class="muted">Loading the explorer…</p>';

function buildFailure(err: unknown): string {
  return `The explorer could not be built: ${err instanceof Error ? err.message : String(err)}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function send(res: Response, type: string, body: string | Buffer): void {
  res.setHeader('Content-Security-Policy', UI_CSP);
  res.setHeader('Cache-Control', 'no-cache');
  res.type(type).send(body);
}

export function createUiRouter(options: UiRouterOptions = {}): Router {
  const router = Router();
  const html = readFileSync(join(STATIC, 'index.html'), 'utf8');
  if (!html.includes(LOADING)) throw new Error(`${STATIC}/index.html has no "${LOADING}" placeholder`);
  const css = readFileSync(join(STATIC, 'app.css'), 'utf8');
  const icon = readFileSync(join(STATIC, 'icon.svg'), 'utf8');
  let bundle: Promise<UiBundle> | undefined;
  const getBundle = (): Promise<UiBundle> => {
    bundle ??= (options.build ?? buildUiBundle)().catch((err: unknown) => {
      bundle = undefined; // a fixed source builds on the next request
      throw err;
    });
    return bundle;
  };

  let demoImage: Buffer | undefined;
  router.get('/', async (req, res) => {
    // Relative asset URLs need the trailing slash.
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) return res.redirect(301, `${req.baseUrl}/`);
    try {
      await getBundle();
      send(res, 'text/html; charset=utf-8', html);
    } catch (err) {
      // Browsers run no script answered with an error status, so the page itself says why.
      res.status(503);
      send(res, 'text/html; charset=utf-8', html.replace(LOADING, `<div class="error-box"><strong>${escapeHtml(buildFailure(err))}</strong></div>`));
    }
  });
  router.get('/app.css', (_req, res) => send(res, 'text/css; charset=utf-8', css));
  router.get('/icon.svg', (_req, res) => send(res, 'image/svg+xml', icon));
  router.get('/demo/line.png', (_req, res) => send(res, 'image/png', (demoImage ??= readFileSync(DEMO_IMAGE))));
  router.get('/app.js', async (_req, res) => {
    try {
      send(res, 'text/javascript; charset=utf-8', (await getBundle()).js);
    } catch (err) {
      // For whoever fetches it by hand: browsers run no script answered 503 (the page says why).
      res.status(503);
      send(res, 'text/plain; charset=utf-8', buildFailure(err));
    }
  });
  return router;
}
