/**
 * The enclaves behind the gateway. Each member is `pending` until its attestation is verified
 * (then `ready`), `unhealthy` when its health check or a request fails, `rejected` when its
 * attestation fails verification. Only `ready` members are routed to. A member that was not
 * ready, or reports another boot id, is attested again (and its boot attestation appended to
 * the log) before it takes traffic: a restarted enclave rejoins only with its new, verified
 * attestation.
 */
import { isTeegateError, TeegateError } from '../../attestation/errors';
import { CertificateCache } from '../../attestation/x509/certificate-cache';
import type { SelectionStrategy } from '../config';
import type { ReceiptSink } from '../log/receipt-sink';
import type { GatewayLogger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import { attestEnclave, type AttestationRequirements, type VerifiedEnclave } from './enclave-attestation';
import { EnclaveClient, UpstreamError, type EnclaveClientOptions } from './enclave-client';

export type MemberState = 'pending' | 'ready' | 'unhealthy' | 'rejected';
export const MEMBER_STATES: readonly MemberState[] = ['pending', 'ready', 'unhealthy', 'rejected'];

export interface EnclaveMember {
  readonly id: string;
  readonly client: EnclaveClient;
  state: MemberState;
  identity?: VerifiedEnclave;
  /** Log index of the boot attestation entry of `identity`. */
  attestationLogIndex?: number;
  inFlight: number;
  lastError?: { readonly code: string; readonly message: string; readonly at: string };
}

export interface EnclavePoolOptions {
  readonly enclaves: readonly string[];
  readonly attestation: AttestationRequirements;
  readonly sink: ReceiptSink;
  readonly healthIntervalMs: number;
  readonly healthTimeoutMs: number;
  readonly selection: SelectionStrategy;
  readonly client: EnclaveClientOptions;
  readonly logger: GatewayLogger;
  readonly metrics: GatewayMetrics;
}

export interface ModelSelector {
  readonly name: string;
  readonly version?: string;
  /** Sealed requests: only the enclave holding this seal key can open them. */
  readonly sealKid?: string;
}

/** Whether the member's attested manifest lists the model (and version, when given); its state aside. */
export function servesModel(member: EnclaveMember, model: Pick<ModelSelector, 'name' | 'version'>): boolean {
  return member.identity?.manifest.models.some((x) => x.name === model.name && (model.version === undefined || x.version === model.version)) ?? false;
}

export class EnclavePool {
  readonly members: readonly EnclaveMember[];
  private readonly checks = new Map<EnclaveMember, Promise<void>>();
  private readonly cache = new CertificateCache();
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private stopped = false;

  constructor(private readonly options: EnclavePoolOptions) {
    this.members = options.enclaves.map((url, i) => {
      const id = `enclave-${i}`;
      return { id, client: new EnclaveClient(url, options.client, id), state: 'pending' as MemberState, inFlight: 0 };
    });
    this.publishGauges();
  }

  /** Runs one health round (so a gateway starts with its enclaves attested) and starts the loop. */
  async start(): Promise<void> {
    await this.checkAll();
    if (this.stopped) return;
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.checkAll().finally(() => {
          if (!this.stopped) tick();
        });
      }, this.options.healthIntervalMs);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.checks.values()]);
    for (const m of this.members) m.client.close();
  }

  checkAll(): Promise<void> {
    return Promise.all(this.members.map((m) => this.check(m))).then(() => undefined);
  }

  /** One health check of a member (coalesced: concurrent callers share the running check). */
  check(member: EnclaveMember): Promise<void> {
    const running = this.checks.get(member);
    if (running) return running;
    const run = this.runCheck(member).finally(() => this.checks.delete(member));
    this.checks.set(member, run);
    return run;
  }

  ready(): EnclaveMember[] {
    return this.members.filter((m) => m.state === 'ready');
  }

  /**
   * Whether a model is served here, as far as the attested manifests tell (ready or not):
   * `unknown` before any enclave was attested, since manifests are the only source.
   */
  lists(model: Pick<ModelSelector, 'name' | 'version'>): 'listed' | 'not-listed' | 'unknown' {
    if (this.members.every((m) => m.identity === undefined)) return 'unknown';
    return this.members.some((m) => servesModel(m, model)) ? 'listed' : 'not-listed';
  }

  /** Ready members that serve the model (and version, and seal key, when given). */
  serving(model: ModelSelector): EnclaveMember[] {
    return this.ready().filter((m) => servesModel(m, model) && (model.sealKid === undefined || m.identity!.manifest.keys.seal.kid === model.sealKid));
  }

  /** Ready members (serving `model`, when given) not in `exclude`: those pick() chooses from. */
  candidates(model: ModelSelector | undefined, exclude: ReadonlySet<EnclaveMember>): EnclaveMember[] {
    return (model ? this.serving(model) : this.ready()).filter((m) => !exclude.has(m));
  }

  /** Picks one of candidates(model, exclude), moving the pool's rotation. */
  pick(model: ModelSelector | undefined, exclude: ReadonlySet<EnclaveMember>): EnclaveMember | undefined {
    const candidates = this.candidates(model, exclude);
    if (candidates.length === 0) return undefined;
    const start = this.cursor++ % candidates.length;
    if (this.options.selection === 'round-robin') return candidates[start];
    let best = candidates[start]!;
    for (let i = 1; i < candidates.length; i++) {
      const c = candidates[(start + i) % candidates.length]!;
      if (c.inFlight < best.inFlight) best = c;
    }
    return best;
  }

  /** A request could not reach the member or it said it is not ready: stop routing to it and re-check now. */
  reportDown(member: EnclaveMember, code: string, message: string): void {
    if (member.state === 'ready') {
      this.setState(member, 'unhealthy', { code, message });
      this.options.logger.warn({ enclave: member.id, url: member.client.baseUrl, code, reason: message }, 'enclave taken out of rotation');
    }
    void this.check(member);
  }

  /** The member answered with a receipt key other than the verified one: it must be attested again. */
  reportIdentityChanged(member: EnclaveMember, message: string): void {
    this.setState(member, 'pending', { code: 'ENCLAVE_IDENTITY_CHANGED', message });
    this.options.logger.warn({ enclave: member.id }, message);
    void this.check(member);
  }

  private async runCheck(member: EnclaveMember): Promise<void> {
    if (this.stopped) return;
    let bootId: string | undefined;
    try {
      const { status, json } = await member.client.getJson('/health', this.options.healthTimeoutMs);
      const health = json as { status?: unknown; boot_id?: unknown; reason?: unknown };
      if (status !== 200 || health.status !== 'ready') {
        const reason = typeof health.reason === 'string' ? health.reason : `health answered ${status}`;
        this.markUnhealthy(member, 'ENCLAVE_NOT_READY', reason);
        return;
      }
      bootId = typeof health.boot_id === 'string' ? health.boot_id : undefined;
    } catch (err) {
      this.markUnhealthy(member, err instanceof UpstreamError ? (err.errorCode ?? 'UPSTREAM_INVALID') : 'INTERNAL', (err as Error).message);
      return;
    }
    if (member.state === 'ready' && member.identity && member.identity.bootId === bootId) return;
    // Not ready, or restarted under the same address: no traffic until attested again.
    if (member.state === 'ready') this.setState(member, 'pending', { code: 'ENCLAVE_IDENTITY_CHANGED', message: `boot id changed to ${String(bootId)}` });
    await this.admit(member);
  }

  private async admit(member: EnclaveMember): Promise<void> {
    let identity: VerifiedEnclave;
    try {
      identity = await attestEnclave(member.client, { ...this.options.attestation, cache: this.cache }, this.options.healthTimeoutMs);
    } catch (err) {
      if (err instanceof UpstreamError) {
        this.markUnhealthy(member, err.errorCode ?? 'UPSTREAM_INVALID', err.message);
        return;
      }
      const e = isTeegateError(err) ? err : new TeegateError('ENCLAVE_ATTESTATION_REJECTED', String(err));
      const underlying = isTeegateError(e.cause) ? e.cause.code : e.code;
      this.options.metrics.verificationFailures.inc({ enclave: member.id, code: underlying });
      this.options.logger.error({ enclave: member.id, code: underlying, reason: e.message }, 'enclave attestation rejected');
      member.identity = undefined;
      this.setState(member, 'rejected', { code: e.code, message: e.message });
      return;
    }
    if (this.stopped) return;
    // An enclave takes traffic only once its attestation is in the log; a log that cannot take it
    // now leaves the enclave out until a later health check tries again.
    let index: number;
    try {
      ({ index } = await this.options.sink.appendAttestation(identity.document, identity.manifest));
    } catch (err) {
      this.markUnhealthy(member, isTeegateError(err) ? err.code : 'LOG_STORAGE_FAILED', `its attestation could not be logged: ${(err as Error).message}`);
      return;
    }
    member.identity = identity;
    member.attestationLogIndex = index;
    this.setState(member, 'ready');
    this.options.logger.info({ enclave: member.id, bootId: identity.bootId, logIndex: index }, 'enclave attested and ready');
  }

  private markUnhealthy(member: EnclaveMember, code: string, message: string): void {
    if (member.state !== 'unhealthy') this.options.logger.warn({ enclave: member.id, url: member.client.baseUrl, code, reason: message }, 'enclave unhealthy');
    this.setState(member, 'unhealthy', { code, message });
  }

  private setState(member: EnclaveMember, state: MemberState, error?: { code: string; message: string }): void {
    member.state = state;
    member.lastError = error ? { ...error, at: new Date().toISOString() } : undefined;
    this.publishGauges();
  }

  private publishGauges(): void {
    const { enclaveHealthy, enclavesByState } = this.options.metrics;
    for (const m of this.members) enclaveHealthy.set({ enclave: m.id }, m.state === 'ready' ? 1 : 0);
    for (const s of MEMBER_STATES) enclavesByState.set({ state: s }, this.members.filter((m) => m.state === s).length);
  }
}
