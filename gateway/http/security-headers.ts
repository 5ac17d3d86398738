/**
 * Security headers on every answer, and CORS for the configured origins. The API serves JSON and
 * opaque JOSE bodies only: nothing may be framed, sniffed or cached.
 */
import { ENCLAVE_HEADER, LOG_INDEX_HEADER, RECEIPT_HEADER, SEAL_KID_HEADER, SERVER_TIMING_HEADER } from '../../attestation/headers';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Request headers a browser page may send (CORS): the SDK's sealed requests name their seal key. */
const ALLOWED = ['Authorization', 'Content-Type', 'X-Request-Id', SEAL_KID_HEADER].join(', ');

/** Response headers a browser page may read (CORS). */
const EXPOSED = [RECEIPT_HEADER, LOG_INDEX_HEADER, ENCLAVE_HEADER, SERVER_TIMING_HEADER, 'x-request-id', 'retry-after'].join(', ');

export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
}

/**
 * CORS: `origins` lists allowed origins (`*` allows any, without credentials). The returned step
 * sets the CORS headers of an answer, and answers a preflight itself: it returns false then.
 */
export function cors(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    const ok = origin !== undefined && (any || allowed.has(origin));
    // Every answer varies by Origin when only some origins get the CORS headers, or a shared cache
    // could hand an allowed origin the copy made without them (log tiles are cached for a year).
    if (!any && allowed.size > 0) res.setHeader('Vary', 'Origin');
    if (ok) {
      res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
      res.setHeader('Access-Control-Expose-Headers', EXPOSED);
      // The same origins may read the answers' Server-Timing through the Resource Timing API.
      res.setHeader('Timing-Allow-Origin', any ? '*' : origin);
    }
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      if (ok) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', ALLOWED);
        res.setHeader('Access-Control-Max-Age', '600');
      }
      res.statusCode = 204;
      res.end();
      return false;
    }
    return true;
  };
}
