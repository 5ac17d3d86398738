/**
 * The gateway's request listener: inference requests (`POST` on INFER_ROUTES) are served here on
 * Node's own request and response; every other request goes to the express app.
 *
 * Why inference skips express: express's per-request set-up (it swaps the prototypes of Node's
 * request and response, which also slows every later header and write call on them) and its router
 * cost about 0.15–0.2 ms per request on the development VM, where every request is served cold
 * after the model's run: as much as a tenth of what a gateway may add in all (docs/performance.md).
 * Nothing else changes: the same admission steps (request id, security headers, shutdown refusal,
 * CORS, access log and metrics), the same authorization and rate limits, the same handler and the
 * same error answers as the express routes, and the route is matched as express matches it
 * (path-to-regexp: case-insensitive, an optional trailing slash, parameters percent-decoded, a bad
 * escape answered REQUEST_INVALID).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import parseurl from 'parseurl';
import { match } from 'path-to-regexp';
import type { GatewayContext } from './context';
import { answerError } from './http/errors';
import type { Admission, ExchangeNotes, GatewayResponse } from './http/exchange';
import { createInferHandler, INFER_ROUTES } from './routes/oip';

/** As express's router decodes a path parameter (a URIError on a bad escape). */
function decodeParam(value: string): string {
  return value.includes('%') ? decodeURIComponent(value) : value;
}

export function createFront(ctx: GatewayContext, admission: Admission, app: RequestListener, onInternal: (err: unknown) => void): RequestListener {
  // Parameters are decoded in `serve`, after admission, so that a bad escape is answered as express
  // answers it (REQUEST_INVALID, with the exchange's headers).
  const routes = INFER_ROUTES.map((pattern) => ({ pattern, match: match<Record<string, string>>(pattern, { sensitive: false, end: true, trailing: true, decode: false }) }));
  const infer = createInferHandler(ctx);

  const serve = async (req: IncomingMessage, res: GatewayResponse, route: string, raw: Readonly<Record<string, string>>): Promise<void> => {
    if (!admission(req, res, () => route)) return;
    try {
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(raw)) params[name] = decodeParam(value);
      ctx.authorize(req, res, 'infer');
      await infer(req, res, params);
    } catch (err) {
      answerError(res, err, onInternal);
    }
  };

  return (req: IncomingMessage, res: ServerResponse) => {
    const path = req.method === 'POST' ? parseurl(req)?.pathname : undefined;
    if (typeof path === 'string') {
      for (const route of routes) {
        const found = route.match(path);
        if (found === false) continue;
        const notes: ExchangeNotes = {};
        void serve(req, Object.assign(res, { locals: notes }), route.pattern, found.params);
        return;
      }
    }
    app(req, res);
  };
}
