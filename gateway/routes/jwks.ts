/** GET /.well-known/jwks.json: the receipt keys (ES256 public JWKs) of the attested, ready enclaves. */
import type { Express } from 'express';
import type { PublicEcJwk } from '../../attestation/manifest';
import type { GatewayContext } from '../context';

export function registerJwksRoutes(app: Express, ctx: GatewayContext): void {
  app.get('/.well-known/jwks.json', (_req, res) => {
    const keys = new Map<string, PublicEcJwk>();
    for (const m of ctx.pool.ready()) keys.set(m.identity!.receiptKid, m.identity!.manifest.keys.receipt);
    res.setHeader('Cache-Control', 'no-cache');
    res.json({ keys: [...keys.values()] });
  });
}
