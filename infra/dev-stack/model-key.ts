/**
 * The dev stack's model key: a KMS key made on first start, the shipped model sealed under it
 * (GenerateDataKey, AES-256-GCM), and a key policy that lets the enclave principal Decrypt only
 * with an attested Recipient whose PCR0 (ImageSha384) is the dev enclave image's. PCR0 depends on
 * the sources, so the policy is pinned again on every start: the rollout of a new image.
 */
import { CreateKeyCommand, GenerateDataKeyCommand, PutKeyPolicyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { modelEncryptionContext, parseSealedModel, sealModel } from '../../enclave/kms/sealed-model';
import type { ModelConfig } from '../../enclave/models/model-config';
import type { DevCredentials } from './dev-credentials';
import { readOrCreate, writeFileAtomic } from '../../enclave/write-file-atomic';

export const DEV_ACCOUNT = '111122223333';
const arnOf = (accessKeyId: string) => `arn:aws:iam::${DEV_ACCOUNT}:user/${accessKeyId}`;

export function devKeyPolicy(credentials: DevCredentials, pcr0: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'operator',
        Effect: 'Allow',
        Principal: { AWS: arnOf(credentials.operator.accessKeyId) },
        Action: ['kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:GenerateDataKey'],
        Resource: '*',
      },
      {
        Sid: 'enclave-image',
        Effect: 'Allow',
        Principal: { AWS: arnOf(credentials.enclave.accessKeyId) },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': pcr0 } },
      },
    ],
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Creates the key on first start (its id kept in `<data>/model-key.json`). */
export async function ensureModelKey(kms: KMSClient, dataDir: string): Promise<string> {
  const kept = await readOrCreate(join(dataDir, 'model-key.json'), {
    parse: (text) => JSON.parse(text) as { keyId: string },
    create: async () => ({ keyId: (await kms.send(new CreateKeyCommand({ Description: 'teegate dev stack: model data keys' }))).KeyMetadata!.KeyId! }),
    serialize: (value) => JSON.stringify(value),
    mode: 0o644,
  });
  return kept.keyId;
}

/** Seals each plain model once into `<data>/models/<name>-<version>.onnx.sealed`; returns configs that name the sealed files. */
export async function ensureSealedModels(kms: KMSClient, keyId: string, dataDir: string, configs: readonly ModelConfig[]): Promise<ModelConfig[]> {
  const out: ModelConfig[] = [];
  for (const config of configs) {
    const sealedPath = join(dataDir, 'models', `${config.name}-${config.version}.onnx.sealed`);
    if (await exists(sealedPath)) {
      const { model } = parseSealedModel(await readFile(sealedPath)).header;
      if (model.sha256 === config.sha256) {
        out.push({ ...config, sealed: { path: sealedPath } });
        continue;
      }
    }
    const plaintext = await readFile(config.path);
    const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: modelEncryptionContext(config.name, config.version) }));
    try {
      const sealed = sealModel({ plaintext, name: config.name, version: config.version, dataKey: generated.Plaintext!, encryptedDataKey: generated.CiphertextBlob!, keyId: generated.KeyId! });
      await writeFileAtomic(sealedPath, sealed, 0o644);
    } finally {
      generated.Plaintext?.fill(0);
    }
    out.push({ ...config, sealed: { path: sealedPath } });
  }
  return out;
}

export async function pinKeyPolicy(kms: KMSClient, keyId: string, credentials: DevCredentials, pcr0: string): Promise<void> {
  await kms.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: devKeyPolicy(credentials, pcr0) }));
}
