/**
 * Loopback fixtures for the gateway tests: real enclaves (dev NSM) sharing one dev CA, the tiny
 * `affine` model and `mymodel` (the model of the Open Inference Protocol specification's example),
 * API keys, a log-capturing logger, a configuration builder and a TCP proxy that records the bytes
 * between the gateway and an enclave and can inject delays and broken connections.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { DevCa } from '../../attestation/dev/dev-ca';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import type { ModelConfig } from '../../enclave/models/model-config';
import { ONNX_ELEMENT_TYPE } from '../../enclave/models/onnx-proto';
import { buildOnnxModel } from '../../enclave/models/testing/tiny-onnx';
import { generateApiKey, hashApiKey } from '../../gateway/auth/api-keys';
import { parseGatewayConfig, type GatewayConfig } from '../../gateway/config';
import { createLogger, type GatewayLogger } from '../../gateway/observability/logger';
import { tinyModelConfigs } from './tiny-models';

/** The output the specification's example response shows for output0 ([3, 2] FP32). */
export const SPEC_OUTPUT0 = [1.0, 1.1, 2.0, 2.1, 3.0, 3.1];

/**
 * `mymodel` as the specification's example describes it: inputs input0 (UINT32 [2, 2]) and input1
 * (BOOL [3]), output output0 (FP32 [3, 2]); here a constant, so the example response is exact.
 */
export function myModelBytes(): Uint8Array {
  const { FLOAT, UINT32, BOOL } = ONNX_ELEMENT_TYPE;
  return buildOnnxModel({
    name: 'mymodel',
    inputs: [
      { name: 'input0', elemType: UINT32, shape: [2, 2] },
      { name: 'input1', elemType: BOOL, shape: [3] },
    ],
    outputs: [{ name: 'output0', elemType: FLOAT, shape: [3, 2] }],
    initializers: [{ name: 'table', elemType: FLOAT, dims: [3, 2], values: SPEC_OUTPUT0 }],
    nodes: [{ opType: 'Identity', inputs: ['table'], outputs: ['output0'] }],
  });
}

export function testModelConfigs(dir = mkdtempSync(join(tmpdir(), 'teegate-gw-models-'))): ModelConfig[] {
  const bytes = myModelBytes();
  const path = join(dir, 'mymodel.onnx');
  writeFileSync(path, bytes);
  return [...tinyModelConfigs(dir), { name: 'mymodel', version: '1', kind: 'onnx', path, sha256: createHash('sha256').update(bytes).digest('hex') }];
}

export async function startTestEnclave(ca: DevCa, models: readonly ModelConfig[], port?: number): Promise<RunningEnclave> {
  return startEnclave({ models, devCa: ca, ...(port !== undefined ? { port } : {}), host: '127.0.0.1' });
}

/** Policy pinning PCR0, 1 and 2 as measured by the enclave. */
export function policyFor(pcrs: Readonly<Record<number, string>>): { pcrs: Record<number, string> } {
  return { pcrs: { 0: pcrs[0]!, 1: pcrs[1]!, 2: pcrs[2]! } };
}

export interface TestKeys {
  readonly infer: string;
  readonly admin: string;
  /** Infer scope, one request per 100 s after a burst of 2. */
  readonly limited: string;
}

export function testKeys(): { keys: TestKeys; config: unknown[] } {
  const keys = { infer: generateApiKey(), admin: generateApiKey(), limited: generateApiKey() };
  return {
    keys,
    config: [
      { id: 'app', sha256: hashApiKey(keys.infer), scopes: ['infer'] },
      { id: 'ops', sha256: hashApiKey(keys.admin), scopes: ['infer', 'admin'] },
      { id: 'tiny', sha256: hashApiKey(keys.limited), scopes: ['infer'], rateLimit: { requestsPerSecond: 0.01, burst: 2 } },
    ],
  };
}

export function testGatewayConfig(file: Record<string, unknown>): GatewayConfig {
  return parseGatewayConfig({ file: { port: 0, logLevel: 'info', pool: { healthIntervalMs: 200, healthTimeoutMs: 2000 }, ...file } });
}

export function captureLogger(): { logger: GatewayLogger; lines: () => string[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  return { logger, lines: () => chunks.join('').split('\n').filter((l) => l.length > 0) };
}

export type ProxyMode = 'pass' | 'delay-post' | 'reset-post';

/** A TCP proxy in front of an enclave: records both directions; can delay or break POST requests. */
export class RecordingProxy {
  mode: ProxyMode = 'pass';
  delayMs = 0;
  upstreamBytes: Buffer[] = [];
  downstreamBytes: Buffer[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<RecordingProxy> {
    const { hostname, port } = new URL(target);
    let proxy: RecordingProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect(Number(port), hostname);
      const p = proxy!;
      p.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', () => p.sockets.delete(client));
      upstream.on('close', () => p.sockets.delete(upstream));
      client.on('error', drop);
      upstream.on('error', drop);
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('data', (chunk: Buffer) => {
        p.upstreamBytes.push(chunk);
        const isPost = chunk.subarray(0, 5).toString('latin1') === 'POST ';
        if (isPost && p.mode === 'reset-post') {
          client.resetAndDestroy();
          upstream.destroy();
        } else if (isPost && p.mode === 'delay-post') {
          client.pause();
          setTimeout(() => {
            upstream.write(chunk);
            client.resume();
          }, p.delayMs);
        } else upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        p.downstreamBytes.push(chunk);
        client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    proxy = new RecordingProxy(server, `http://127.0.0.1:${address.port}`);
    return proxy;
  }

  upstream(): Buffer {
    return Buffer.concat(this.upstreamBytes);
  }

  downstream(): Buffer {
    return Buffer.concat(this.downstreamBytes);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
