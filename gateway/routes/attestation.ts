/**
 * GET /v1/attestation?nonce=<64 hex>[&enclave=<id>]: a fresh attestation document from an attested
 * enclave's NSM carrying the client's nonce, with the manifest it is bound to. The gateway relays
 * the enclave's answer unchanged; the client verifies it (the gateway is not trusted).
 */
import type { Express } from 'express';
import { TeegateError } from '../../attestation/errors';
import type { GatewayContext } from '../context';
import type { EnclaveMember } from '../pool/enclave-pool';
import { relay, sendRelayed } from '../pool/relay';

const NONCE = /^[0-9a-fA-F]{64}$/;

export function registerAttestationRoutes(app: Express, ctx: GatewayContext): void {
  app.get('/v1/attestation', ctx.limitAnonymous, async (req, res) => {
    const { nonce, enclave } = req.query;
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) {
      throw new TeegateError('NONCE_INVALID', 'nonce must be exactly 64 hex characters (32 bytes), e.g. from crypto.getRandomValues');
    }
    let only: EnclaveMember | undefined;
    if (enclave !== undefined) {
      only = typeof enclave === 'string' ? ctx.pool.members.find((m) => m.id === enclave) : undefined;
      if (!only) throw new TeegateError('REQUEST_INVALID', `no enclave ${JSON.stringify(enclave)}: see GET /v1/enclaves`);
      if (only.state !== 'ready') throw new TeegateError('NO_ENCLAVE_AVAILABLE', `enclave ${only.id} is ${only.state}`);
    }
    const relayed = await relay(
      ctx.pool,
      { method: 'GET', path: `/attestation?nonce=${nonce.toLowerCase()}` },
      undefined,
      { maxAttempts: ctx.config.limits.maxAttempts, metrics: ctx.metrics, ...(only ? { only } : {}) },
    );
    sendRelayed(res, relayed);
  });
}
