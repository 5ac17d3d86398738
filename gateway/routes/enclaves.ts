/** GET /v1/enclaves: every configured enclave, its state and, once verified, its boot document and manifest. */
import type { Express } from 'express';
import type { GatewayContext } from '../context';

export function registerEnclaveRoutes(app: Express, ctx: GatewayContext): void {
  app.get('/v1/enclaves', (_req, res) => {
    res.json({
      enclaves: ctx.pool.members.map((m) => ({
        id: m.id,
        state: m.state,
        in_flight: m.inFlight,
        ...(m.identity
          ? {
              boot_id: m.identity.bootId,
              document: m.identity.documentBase64,
              manifest: m.identity.manifest,
              verified_at: new Date(m.identity.verifiedAt).toISOString(),
              log_index: m.attestationLogIndex,
            }
          : {}),
        ...(m.lastError ? { last_error: m.lastError } : {}),
      })),
    });
  });
}
