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
 * escape answered REQUEST_INVALID and labelled "unmatched"). One thing is answered here for every
 * method: a request target that Node accepts and url.parse cannot read or finds no path in
 * (REQUEST_INVALID, where express's router answered a bare 404 page). test/integration/gateway-front-parity.test.ts
 * compares the answers, log lines and labels with the express routes'.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import parseurl from 'parseurl';
import { match } from 'path-to-regexp';
import { TeegateError } from '../attestation/errors';
import type { GatewayContext } from './context';
import { answerError } from './http/errors';
import type { Admission, ExchangeNotes, GatewayResponse } from './http/exchange';
import { createInferHandler, INFER_ROUTES } from './routes/oip';

/** As express's router decodes a path parameter (a URIError on a bad escape). */
function decodeParam(value: string): string {
  return value.includes('%') ? decodeURIComponent(value) : value;
}

/** The request target's path, or undefined where url.parse cannot read one (`http://[/...`, `https://:99999`). */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return parseurl(req)?.pathname ?? undefined;
  } catch {
    return undefined;
  }
}

export function createFront(ctx: GatewayContext, admission: Admission, app: RequestListener, onInternal: (err: unknown) => void): RequestListener {
  // Parameters are decoded after admission, so that a bad escape is answered as express answers it
  // (REQUEST_INVALID, with the exchange's headers, labelled "unmatched").
  const routes = INFER_ROUTES.map((pattern) => ({ pattern, match: match<Record<string, string>>(pattern, { sensitive: false, end: true, trailing: true, decode: false }) }));
  const infer = createInferHandler(ctx);

  /**
   * Admission, then `answer`, any failure answered by answerError; what that could not answer (a
   * throwing logger) closes the connection. The route is "unmatched", as express labels what no
   * route took, until `answer` notes one.
   */
  const serve = (req: IncomingMessage, raw: ServerResponse, answer: (res: GatewayResponse) => Promise<void>): void => {
    const res: GatewayResponse = Object.assign(raw, { locals: {} satisfies ExchangeNotes });
    void (async () => {
      try {
        if (admission(req, res, () => res.locals.route ?? 'unmatched')) await answer(res);
      } catch (err) {
        answerError(res, err, onInternal);
      }
    })().catch(() => res.destroy());
  };

  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req);
    if (path === undefined) {
      // Express's router would answer a bare 404 page: refused here in the gateway's JSON.
      return serve(req, res, async () => {
        throw new TeegateError('REQUEST_INVALID', 'the request target is not a valid URL');
      });
    }
    if (req.method === 'POST') {
      for (const route of routes) {
        const found = route.match(path);
        if (found === false) continue;
        return serve(req, res, async (notes) => {
          const params: Record<string, string> = {};
          for (const [name, value] of Object.entries(found.params)) params[name] = decodeParam(value);
          notes.locals.route = route.pattern;
          ctx.authorize(req, notes, 'infer');
          await infer(req, notes, params);
        });
      }
    }
    app(req, res);
  };
}
