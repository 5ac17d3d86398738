/**
 * Issue 4 acceptance: the shipped real model (PP-OCRv4 text recognition) sealed by the real CLI
 * (`teegate model seal`, GenerateDataKey through @aws-sdk/client-kms) against the dev KMS on
 * loopback, then released at boot to an enclave (dev NSM) by KMS Decrypt with an attested
 * Recipient, under a key policy that pins the enclave's PCR0. Inference receipts are verified with
 * the attestation/ functions. Every refusal is checked for its AWS exception or typed code, and
 * that the enclave then serves nothing.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateKeyCommand, DecryptCommand, GenerateDataKeyCommand, PutKeyPolicyCommand, type KMSClient } from '@aws-sdk/client-kms';
import canonicalize from 'canonicalize';
import { concatBytes, fromBase64, fromUtf8, toBase64, utf8 } from '../../attestation/bytes';
import { createDevCa, type DevCa } from '../../attestation/dev/dev-ca';
import { verifyManifestBinding } from '../../attestation/manifest';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { verifyReceipt } from '../../attestation/receipt';
import type { InferTensor } from '../../attestation/tensors';
import { prepareSealedModels } from '../../enclave/kms/key-release';
import { createKmsClient, kmsClientConfigFromEnv } from '../../enclave/kms/kms-client';
import { SEALED_MODEL_PREFIX_BYTES, modelEncryptionContext, parseSealedModel, sealModel } from '../../enclave/kms/sealed-model';
import { startEnclave, type RunningEnclave } from '../../enclave/main';
import { measureDevEnclave, pcrHex, REPO_ROOT } from '../../enclave/measurement';
import { PP_OCRV4_REC_CONFIG, defaultModelConfigs, type ModelConfig } from '../../enclave/models/model-config';
import { buildEnvelopedData } from '../../infra/dev-kms/cms-build';
import { startDevKms, type DevKms } from '../../infra/dev-kms/main';
import { DEMO_MODEL, DEMO_TEXT, demoRequest } from '../support/demo';
import { serveHttp, type LoopbackServer } from '../support/loopback';

jest.setTimeout(180_000);

const run = promisify(execFile);
const ACCOUNT = '111122223333';
const SEALER = { accessKeyId: 'AKIDSEALER', secretAccessKey: 'sealer-secret/0123456789abcdef' };
const ENCLAVE = { accessKeyId: 'AKIDENCLAVE', secretAccessKey: 'enclave-secret/0123456789abcdef' };
const arnOf = (accessKeyId: string) => `arn:aws:iam::${ACCOUNT}:user/${accessKeyId}`;

/** The sealer may make data keys; the enclave may Decrypt only with an attested Recipient of this PCR0. */
function keyPolicy(pcr0: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'sealer', Effect: 'Allow', Principal: { AWS: arnOf(SEALER.accessKeyId) }, Action: ['kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:GenerateDataKey'], Resource: '*' },
      {
        Sid: 'enclave',
        Effect: 'Allow',
        Principal: { AWS: arnOf(ENCLAVE.accessKeyId) },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': pcr0 } },
      },
    ],
  });
}

let dir: string;
let devCa: DevCa;
let kms: DevKms;
let sealer: KMSClient;
let keyId: string;
let pcr0: string;
let sealedPath: string;
const enclaves: RunningEnclave[] = [];

function sealedConfig(path = sealedPath, overrides: Partial<ModelConfig> = {}): ModelConfig {
  return { ...defaultModelConfigs()[0]!, sealed: { path }, ...overrides };
}

interface Boot {
  enclave: RunningEnclave;
  events: Record<string, unknown>[];
  health: { status: string; reason?: string; models: { ready: boolean; error?: string }[] };
  healthStatus: number;
}

/** PCR0 of the dev enclave image that ships `config`: the sources, the lock file and the sealed model file. */
async function imagePcr0(config: ModelConfig): Promise<string> {
  return pcrHex(await measureDevEnclave([config]))[0];
}

/**
 * Boots an enclave. Unless `pinPolicy` is false, the key policy is first pinned to the PCR0 of the
 * image being booted (each sealed file is another image), as an operator rolls out an image, so
 * the checks after key release are reached.
 */
async function boot(options: { config?: ModelConfig; credentials?: typeof ENCLAVE; ca?: DevCa; kmsUrl?: string; pinPolicy?: boolean } = {}): Promise<Boot> {
  const config = options.config ?? sealedConfig();
  if (options.pinPolicy !== false && options.kmsUrl === undefined) {
    await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy(await imagePcr0(config)) }));
  }
  const events: Record<string, unknown>[] = [];
  const client = createKmsClient({ endpoint: options.kmsUrl ?? kms.url, credentials: options.credentials ?? ENCLAVE, maxAttempts: 1 });
  const enclave = await startEnclave({
    host: '127.0.0.1',
    models: [config],
    devCa: options.ca ?? devCa,
    prepareModels: prepareSealedModels(client, [config], { log: (e) => events.push(e) }),
    log: (e) => events.push(e),
  });
  enclaves.push(enclave);
  const res = await fetch(`${enclave.url}/health`);
  return { enclave, events, healthStatus: res.status, health: (await res.json()) as Boot['health'] };
}

/** Boots, expects the enclave to refuse the model with `code`, and checks that it serves nothing. */
async function expectRefusal(b: Boot, code: string, reasonPart: string, model = `${DEMO_MODEL}@1`): Promise<void> {
  expect(b.healthStatus).toBe(503);
  expect(b.health.status).toBe('failed');
  expect(b.health.reason).toContain(reasonPart);
  expect(b.health.models).toEqual([expect.objectContaining({ ready: false, error: b.health.reason })]);
  const failed = b.events.find((e) => e['msg'] === 'model key release failed');
  expect(failed).toMatchObject({ level: 'error', model, code });
  expect(String(failed!['reason'])).toContain(reasonPart);
  expect(b.events).toContainEqual(expect.objectContaining({ level: 'error', msg: 'enclave serves no models', reason: b.health.reason }));
  expect(b.enclave.manifest.models).toEqual([]);
  const infer = await fetch(`${b.enclave.url}/v2/models/${DEMO_MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoRequest()) });
  expect(infer.status).toBe(503);
  expect(await infer.json()).toMatchObject({ code: 'ENCLAVE_NOT_READY' });
}

/** A copy of the sealed file with its header edited (re-framed canonically) or a byte flipped. */
function writeVariant(name: string, edit: { header?: (h: Record<string, Record<string, unknown>>) => void; flipAt?: (file: Uint8Array) => number }): string {
  let file: Uint8Array = readFileSync(sealedPath);
  if (edit.header) {
    const length = new DataView(file.buffer, file.byteOffset).getUint32(5, false);
    const header = JSON.parse(fromUtf8(file.subarray(SEALED_MODEL_PREFIX_BYTES, SEALED_MODEL_PREFIX_BYTES + length))) as Record<string, Record<string, unknown>>;
    edit.header(header);
    const text = utf8(canonicalize(header)!);
    const prefix = Uint8Array.from(file.subarray(0, SEALED_MODEL_PREFIX_BYTES));
    new DataView(prefix.buffer).setUint32(5, text.length, false);
    file = concatBytes(prefix, text, file.subarray(SEALED_MODEL_PREFIX_BYTES + length));
  }
  if (edit.flipAt) {
    file = Uint8Array.from(file);
    file[edit.flipAt(file)]! ^= 0x01;
  }
  const path = join(dir, name);
  writeFileSync(path, file);
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'teegate-key-release-'));
  devCa = await createDevCa();
  kms = await startDevKms({ credentials: [SEALER, ENCLAVE], accountId: ACCOUNT, attestationRoots: [devCa.rootPem] });
  sealer = createKmsClient({ endpoint: kms.url, credentials: SEALER, maxAttempts: 1 });
  // The policy is pinned to the image's PCR0 once the sealed model (part of the image) exists.
  keyId = (await sealer.send(new CreateKeyCommand({ Description: 'teegate models', Policy: keyPolicy('00'.repeat(48)) }))).KeyMetadata!.KeyId!;

  // Seal the shipped model with the real CLI, as an operator would.
  sealedPath = join(dir, 'ppocr-v4-rec.onnx.sealed');
  const modelPath = defaultModelConfigs()[0]!.path;
  const { stdout } = await run(
    process.execPath,
    ['bin/teegate', 'model', 'seal', modelPath, '--key-id', keyId, '--name', DEMO_MODEL, '--version', '1', '--out', sealedPath, '--kms-endpoint', kms.url],
    { cwd: REPO_ROOT, env: { ...process.env, TEEGATE_DEV_KMS_ACCESS_KEY_ID: SEALER.accessKeyId, TEEGATE_DEV_KMS_SECRET_ACCESS_KEY: SEALER.secretAccessKey } },
  );
  expect(JSON.parse(stdout)).toEqual({
    out: sealedPath,
    name: DEMO_MODEL,
    version: '1',
    sha256: PP_OCRV4_REC_CONFIG.sha256,
    size: readFileSync(modelPath).length,
    keyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${keyId}`,
  });
  // The image measurement the dev NSM will report: sources, lock file and the sealed model file.
  pcr0 = await imagePcr0(sealedConfig());
  await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy(pcr0) }));
});

afterAll(async () => {
  await Promise.all(enclaves.map((e) => e.close()));
  sealer?.destroy();
  await kms?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('teegate model seal', () => {
  it('writes a sealed file that names the model, its digest and the KMS key, without the plaintext', () => {
    const file = readFileSync(sealedPath);
    const sealed = parseSealedModel(file);
    expect(sealed.header.model).toMatchObject({ name: DEMO_MODEL, version: '1', sha256: PP_OCRV4_REC_CONFIG.sha256 });
    expect(sealed.header.kms.encryptionContext).toEqual(modelEncryptionContext(DEMO_MODEL, '1'));
    const model = readFileSync(defaultModelConfigs()[0]!.path);
    expect(file.includes(model.subarray(1000, 1064))).toBe(false);
  });

  it('neither the sealer nor the enclave principal without an attested Recipient can decrypt the data key: AccessDeniedException', async () => {
    const { header } = parseSealedModel(readFileSync(sealedPath));
    const parent = createKmsClient({ endpoint: kms.url, credentials: ENCLAVE, maxAttempts: 1 });
    try {
      for (const client of [sealer, parent]) {
        await expect(client.send(new DecryptCommand({ CiphertextBlob: header.kms.encryptedDataKey, EncryptionContext: { ...header.kms.encryptionContext } }))).rejects.toMatchObject({
          name: 'AccessDeniedException',
        });
      }
    } finally {
      parent.destroy();
    }
  });

  it('exits 1 with REJECTED and the AWS exception when KMS refuses, 2 on usage errors', async () => {
    const env = { ...process.env, TEEGATE_DEV_KMS_ACCESS_KEY_ID: SEALER.accessKeyId, TEEGATE_DEV_KMS_SECRET_ACCESS_KEY: SEALER.secretAccessKey };
    const model = join(dir, 'tiny.onnx');
    writeFileSync(model, 'not really onnx, sealing does not care');
    const missing = await run(process.execPath, ['bin/teegate', 'model', 'seal', model, '--key-id', '00000000-0000-0000-0000-000000000000', '--kms-endpoint', kms.url], { cwd: REPO_ROOT, env }).catch((e: { code: number; stdout: string }) => e);
    expect(missing).toMatchObject({ code: 1, stdout: expect.stringMatching(/^REJECTED KEY_RELEASE_REJECTED: KMS GenerateDataKey failed: NotFoundException: /) });
    const usage = await run(process.execPath, ['bin/teegate', 'model', 'seal', model], { cwd: REPO_ROOT, env }).catch((e: { code: number; stderr: string }) => e);
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringContaining('--key-id is required') });
  });
});

describe('boot with key release', () => {
  it('releases the key to the attested enclave, serves the real model, and the receipt verifies', async () => {
    const { enclave, events, healthStatus, health } = await boot();
    expect(enclave.pcrs[0]).toBe(pcr0);
    expect({ healthStatus, status: health.status }).toEqual({ healthStatus: 200, status: 'ready' });
    expect(events).toContainEqual(expect.objectContaining({ level: 'info', msg: 'model key released', model: `${DEMO_MODEL}@1` }));

    const body = (await (await fetch(`${enclave.url}/attestation`)).json()) as { document: string; manifest: unknown };
    const attestation = await verifyAttestation(fromBase64(body.document), { rootCertificates: [devCa.rootPem], policy: { pcrs: { 0: pcr0 } } });
    const manifest = await verifyManifestBinding(attestation, body.manifest);
    expect(manifest.models).toEqual([{ name: DEMO_MODEL, version: '1', sha256: PP_OCRV4_REC_CONFIG.sha256 }]);

    const request = { ...demoRequest(), parameters: { nonce: 'feedface' } };
    const res = await fetch(`${enclave.url}/v2/models/${DEMO_MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
    expect(res.status).toBe(200);
    const response = (await res.json()) as { outputs: InferTensor[]; parameters: { receipt: string; salt: string } };
    expect(response.outputs.find((o) => o.name === 'text')!.data).toEqual([DEMO_TEXT]);
    const claims = await verifyReceipt({ receipt: response.parameters.receipt, attestation, manifest, inputs: request.inputs, outputs: response.outputs, salt: response.parameters.salt, nonce: 'feedface', sealed: false });
    expect(claims.model).toEqual({ name: DEMO_MODEL, version: '1', sha256: PP_OCRV4_REC_CONFIG.sha256 });
  });

  it('a key policy that demands another PCR0: AccessDeniedException, no model loaded', async () => {
    await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy('ab'.repeat(48)) }));
    try {
      const b = await boot({ pinPolicy: false });
      await expectRefusal(b, 'KEY_RELEASE_REJECTED', 'AccessDeniedException: User: arn:aws:iam::111122223333:user/AKIDENCLAVE is not authorized to perform: kms:Decrypt');
    } finally {
      await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy(pcr0) }));
    }
  });

  it('an attestation document signed by another root: AccessDeniedException', async () => {
    const b = await boot({ ca: await createDevCa() });
    expect(b.enclave.pcrs[0]).toBe(pcr0);
    await expectRefusal(b, 'KEY_RELEASE_REJECTED', 'AccessDeniedException: The attestation document in the Recipient was rejected (CHAIN_UNTRUSTED_ROOT)');
  });

  it('a forged SigV4 signature (wrong secret): InvalidSignatureException', async () => {
    const b = await boot({ credentials: { ...ENCLAVE, secretAccessKey: 'not-the-secret' } });
    await expectRefusal(b, 'KEY_RELEASE_REJECTED', 'InvalidSignatureException: ');
  });

  it('a wrong encryption context (the file relabelled as version 2): InvalidCiphertextException', async () => {
    const path = writeVariant('relabelled.sealed', {
      header: (h) => {
        h.model!.version = '2';
        h.kms!.encryptionContext = modelEncryptionContext(DEMO_MODEL, '2');
      },
    });
    const b = await boot({ config: sealedConfig(path, { version: '2' }) });
    await expectRefusal(b, 'KEY_RELEASE_REJECTED', 'InvalidCiphertextException: ', `${DEMO_MODEL}@2`);
  });

  it('a file naming another KMS key than the one its data key was made under: IncorrectKeyException', async () => {
    const otherId = (await sealer.send(new CreateKeyCommand({ Description: 'another key', Policy: keyPolicy('00'.repeat(48)) }))).KeyMetadata!.KeyId!;
    const path = writeVariant('other-key.sealed', { header: (h) => (h.kms!.keyId = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${otherId}`) });
    await sealer.send(new PutKeyPolicyCommand({ KeyId: otherId, PolicyName: 'default', Policy: keyPolicy(await imagePcr0(sealedConfig(path))) }));
    await expectRefusal(await boot({ config: sealedConfig(path) }), 'KEY_RELEASE_REJECTED', 'IncorrectKeyException: ');
  });

  it('a tampered encrypted data key: InvalidCiphertextException', async () => {
    const path = writeVariant('tampered-key.sealed', {
      header: (h) => {
        const blob = fromBase64(h.kms!.encryptedDataKey as string);
        blob[40]! ^= 0x01;
        h.kms!.encryptedDataKey = toBase64(blob);
      },
    });
    await expectRefusal(await boot({ config: sealedConfig(path) }), 'KEY_RELEASE_REJECTED', 'InvalidCiphertextException: ');
  });

  it('a tampered encrypted model: SEALED_MODEL_DECRYPT_FAILED after the key was released', async () => {
    const path = writeVariant('tampered-model.sealed', { flipAt: (file) => file.length - 100_000 });
    await expectRefusal(await boot({ config: sealedConfig(path) }), 'SEALED_MODEL_DECRYPT_FAILED', 'AES-256-GCM authentication failed');
  });

  it('a tampered model in an image the policy was pinned for: the image measures differently, KMS refuses', async () => {
    // The operator pinned the policy to the good image; the image at hand carries a changed model.
    await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy(pcr0) }));
    const path = writeVariant('tampered-model-unpinned.sealed', { flipAt: (file) => file.length - 200_000 });
    expect(await imagePcr0(sealedConfig(path))).not.toBe(pcr0);
    const b = await boot({ config: sealedConfig(path), pinPolicy: false });
    await expectRefusal(b, 'KEY_RELEASE_REJECTED', 'AccessDeniedException');
  });

  it('a file sealed for another model digest than configured: SEALED_MODEL_DIGEST_MISMATCH before any key release', async () => {
    const b = await boot({ config: sealedConfig(sealedPath, { sha256: 'cd'.repeat(32) }) });
    await expectRefusal(b, 'SEALED_MODEL_DIGEST_MISMATCH', `header SHA-256 is ${PP_OCRV4_REC_CONFIG.sha256}, configured ${'cd'.repeat(32)}`);
  });

  it('a file that is not a sealed model: SEALED_MODEL_INVALID', async () => {
    const path = join(dir, 'plain.onnx.sealed');
    writeFileSync(path, readFileSync(defaultModelConfigs()[0]!.path).subarray(0, 4096));
    await expectRefusal(await boot({ config: sealedConfig(path) }), 'SEALED_MODEL_INVALID', 'not a sealed model');
  });
});

describe('a misbehaving or unreachable KMS', () => {
  /** A dev KMS with its own key whose CiphertextForRecipient comes from `encryptForRecipient`; the model sealed under it. */
  async function sealUnder(encryptForRecipient: (plaintext: Uint8Array, spki: Uint8Array) => Uint8Array): Promise<{ other: DevKms; config: ModelConfig }> {
    const other = await startDevKms({ credentials: [SEALER, ENCLAVE], accountId: ACCOUNT, attestationRoots: [devCa.rootPem], encryptForRecipient });
    const client = createKmsClient({ endpoint: other.url, credentials: SEALER, maxAttempts: 1 });
    try {
      const id = (await client.send(new CreateKeyCommand({ Policy: keyPolicy(pcr0) }))).KeyMetadata!.KeyId!;
      const { header } = parseSealedModel(readFileSync(sealedPath));
      const generated = await client.send(new GenerateDataKeyCommand({ KeyId: id, KeySpec: 'AES_256', EncryptionContext: { ...header.kms.encryptionContext } }));
      const path = join(dir, `under-${id}.sealed`);
      writeFileSync(path, sealModel({ plaintext: readFileSync(defaultModelConfigs()[0]!.path), name: DEMO_MODEL, version: '1', dataKey: generated.Plaintext!, encryptedDataKey: generated.CiphertextBlob!, keyId: generated.KeyId! }));
      await client.send(new PutKeyPolicyCommand({ KeyId: id, PolicyName: 'default', Policy: keyPolicy(await imagePcr0(sealedConfig(path))) }));
      return { other, config: sealedConfig(path) };
    } finally {
      client.destroy();
    }
  }

  it('CiphertextForRecipient that is not CMS: CMS_MALFORMED', async () => {
    const { other, config } = await sealUnder(() => utf8('not a CMS structure'));
    try {
      await expectRefusal(await boot({ kmsUrl: other.url, config }), 'CMS_MALFORMED', 'CMS');
    } finally {
      await other.close();
    }
  });

  it('CiphertextForRecipient to another RSA key than the attested one: CMS_DECRYPT_FAILED', async () => {
    const stranger = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }));
    const { other, config } = await sealUnder((plaintext) => buildEnvelopedData(plaintext, stranger));
    try {
      await expectRefusal(await boot({ kmsUrl: other.url, config }), 'CMS_DECRYPT_FAILED', 'model ppocr-v4-rec@1: ');
    } finally {
      await other.close();
    }
  });

  it('a released data key that is not 32 bytes: KEY_RELEASE_REJECTED', async () => {
    const { other, config } = await sealUnder((plaintext, spki) => buildEnvelopedData(plaintext.subarray(0, 16), spki));
    try {
      await expectRefusal(await boot({ kmsUrl: other.url, config }), 'KEY_RELEASE_REJECTED', 'KMS released a data key of 16 bytes, expected 32');
    } finally {
      await other.close();
    }
  });

  /**
   * A relay in front of the dev KMS that rewrites the JSON of its Decrypt answers (answers are not
   * signed; requests go through unchanged, Host header included, so SigV4 still verifies).
   */
  async function rewritingKms(rewrite: (answer: Record<string, unknown>) => Record<string, unknown>): Promise<LoopbackServer> {
    const target = new URL(kms.url);
    return serveHttp((req, res) => {
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          let body = Buffer.concat(chunks);
          if (req.headers['x-amz-target'] === 'TrentService.Decrypt' && answer.statusCode === 200) {
            body = Buffer.from(JSON.stringify(rewrite(JSON.parse(body.toString('utf8')) as Record<string, unknown>)));
          }
          res.writeHead(answer.statusCode ?? 500, { 'content-type': answer.headers['content-type'] ?? 'application/x-amz-json-1.1', 'content-length': body.length });
          res.end(body);
        });
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
  }

  it.each([
    ['the data key in plaintext instead of CiphertextForRecipient', ({ CiphertextForRecipient: _, ...rest }: Record<string, unknown>) => ({ ...rest, Plaintext: toBase64(new Uint8Array(32).fill(7)) }), 'answered with the data key in plaintext'],
    ['neither a plaintext nor CiphertextForRecipient', ({ CiphertextForRecipient: _, ...rest }: Record<string, unknown>) => rest, 'answered without CiphertextForRecipient'],
    ['an empty CiphertextForRecipient', (answer: Record<string, unknown>) => ({ ...answer, CiphertextForRecipient: '' }), 'answered without CiphertextForRecipient'],
  ])('a Decrypt answer with %s: KEY_RELEASE_REJECTED', async (_what, rewrite, reason) => {
    await sealer.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keyPolicy(await imagePcr0(sealedConfig())) }));
    const relay = await rewritingKms(rewrite);
    try {
      // Unchanged, the relay's answers release the key: the refusals below are the rewrite's doing.
      const passing = await rewritingKms((answer) => answer);
      try {
        expect((await boot({ kmsUrl: passing.url })).healthStatus).toBe(200);
      } finally {
        await passing.close();
      }
      await expectRefusal(await boot({ kmsUrl: relay.url }), 'KEY_RELEASE_REJECTED', reason);
    } finally {
      await relay.close();
    }
  });

  it('KMS unreachable: KEY_RELEASE_UNAVAILABLE', async () => {
    const gone = await startDevKms({ credentials: [ENCLAVE] });
    await gone.close();
    await expectRefusal(await boot({ kmsUrl: gone.url }), 'KEY_RELEASE_UNAVAILABLE', 'KMS Decrypt failed: ');
  });
});

describe('KMS client configuration', () => {
  it('createKmsClient needs a region or an endpoint, and an http(s) endpoint: CONFIG_INVALID', () => {
    for (const config of [{}, { endpoint: 'not a url' }, { endpoint: 'ftp://127.0.0.1:1' }]) {
      expect(() => createKmsClient(config)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
    createKmsClient({ region: 'eu-west-1' }).destroy();
  });

  it('kmsClientConfigFromEnv: dev credentials only with an endpoint override, region from flags or AWS_REGION', () => {
    const env = { AWS_REGION: 'eu-central-1', TEEGATE_DEV_KMS_ACCESS_KEY_ID: 'AK', TEEGATE_DEV_KMS_SECRET_ACCESS_KEY: 'SK' };
    expect(kmsClientConfigFromEnv({ endpoint: 'http://127.0.0.1:4599' }, env)).toEqual({ region: 'eu-central-1', endpoint: 'http://127.0.0.1:4599', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
    expect(kmsClientConfigFromEnv({ region: 'us-west-2' }, env)).toEqual({ region: 'us-west-2' });
    expect(kmsClientConfigFromEnv({}, { AWS_DEFAULT_REGION: 'ap-south-1' })).toEqual({ region: 'ap-south-1' });
  });
});
