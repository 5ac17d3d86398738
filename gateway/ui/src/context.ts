/** What every page gets: the gateway connection, the current trust, and a way to reload it. */
import { GatewayHttp } from '../../../attestation/client/http';
import { trustAnchors, type TrustAnchors } from '../../../attestation/client/enclave-attestation';
import { CertificateCache } from '../../../attestation/x509/certificate-cache';
import { loadTrust, requirePolicy, type Trust } from './trust';

export interface UiContext {
  readonly http: GatewayHttp;
  trust: Trust;
  readonly certificates: CertificateCache;
}

export async function createContext(origin: string): Promise<UiContext> {
  const http = new GatewayHttp(origin, { timeoutMs: 60_000 });
  return { http, trust: await loadTrust(http), certificates: new CertificateCache() };
}

/** Roots and policy for the verifier (throws POLICY_INVALID when there is no policy). */
export function anchors(ctx: UiContext): TrustAnchors {
  return trustAnchors(requirePolicy(ctx.trust), undefined, ctx.certificates);
}
