/**
 * Prometheus metrics of one gateway (own registry, so several gateways in one process, as in
 * tests, do not collide): request latency by route and model, inferences, retries, enclave
 * verification failures, enclave health, and how long a receipt's durable log append takes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'route' | 'method' | 'model' | 'status'>;
  readonly inferences: Counter<'model' | 'mode' | 'outcome'>;
  readonly upstreamRetries: Counter<'reason'>;
  readonly verificationFailures: Counter<'enclave' | 'code'>;
  readonly enclaveHealthy: Gauge<'enclave'>;
  readonly enclavesByState: Gauge<'state'>;
  readonly logAppendDuration: Histogram;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requestDuration = new Histogram({
      name: 'teegate_gateway_request_duration_seconds',
      help: 'Gateway request latency by route and model',
      labelNames: ['route', 'method', 'model', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.inferences = new Counter({
      name: 'teegate_gateway_inferences_total',
      help: 'Inference requests relayed, by model, mode (plain|sealed) and outcome (ok|client_error|enclave_error|gateway_error)',
      labelNames: ['model', 'mode', 'outcome'],
      registers,
    });
    this.upstreamRetries = new Counter({
      name: 'teegate_gateway_upstream_retries_total',
      help: 'Requests moved to another enclave because the first could not take them (before they ran)',
      labelNames: ['reason'],
      registers,
    });
    this.verificationFailures = new Counter({
      name: 'teegate_gateway_enclave_verification_failures_total',
      help: 'Enclave attestations the gateway rejected, by enclave and error code',
      labelNames: ['enclave', 'code'],
      registers,
    });
    this.enclaveHealthy = new Gauge({
      name: 'teegate_gateway_enclave_healthy',
      help: '1 when the enclave is attested and ready to take traffic, else 0',
      labelNames: ['enclave'],
      registers,
    });
    this.enclavesByState = new Gauge({
      name: 'teegate_gateway_enclaves',
      help: 'Enclaves by pool state (pending|ready|unhealthy|rejected)',
      labelNames: ['state'],
      registers,
    });
    this.logAppendDuration = new Histogram({
      name: 'teegate_gateway_log_append_duration_seconds',
      help: "Time to append an inference's receipt to the transparency log durably (the answer waits for it)",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'teegate_gateway_' });
  }
}
