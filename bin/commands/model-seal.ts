/** `teegate model seal MODEL.onnx --key-id ID [--name N] [--version V] [--out FILE] [--kms-endpoint URL] [--region R]` */
import { writeFileAtomic } from '../../enclave/write-file-atomic';
import { basename, extname } from 'node:path';
import { GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { isTeegateError } from '../../attestation/errors';
import { createKmsClient, kmsCallError, kmsClientConfigFromEnv } from '../../enclave/kms/kms-client';
import { SEALED_MODEL_SUFFIX, modelEncryptionContext, parseSealedModel, sealModel } from '../../enclave/kms/sealed-model';
import { MODEL_NAME_PATTERN } from '../../enclave/models/model-config';
import { noteAwsSdkNodeSupport } from './aws-sdk-note';
import { UsageError, parseCommandArgs, readInputFile } from './usage';

const MODEL_HELP = `usage: teegate model <subcommand> [options]

subcommands:
  seal      encrypt a model under a KMS data key (AES-256-GCM) for release to an attested enclave

Run 'teegate model seal --help' for its options.
`;

const SEAL_HELP = `usage: teegate model seal MODEL.onnx --key-id ID [options]

Encrypts MODEL.onnx with AES-256-GCM under a fresh data key from KMS GenerateDataKey (encryption
context {"teegate:model": NAME, "teegate:version": VERSION}) and writes MODEL.onnx.sealed: the
model's SHA-256, the encrypted data key and the ciphertext (format: docs/key-release.md). The
plaintext data key is wiped after use.

options:
  --key-id ID          KMS key id, ARN or alias (required)
  --name N             model name (default: the file name without .onnx)
  --version V          model version (default: 1)
  --out FILE           output file (default: MODEL.onnx.sealed)
  --kms-endpoint URL   KMS endpoint override (the dev KMS, or vsock-proxy)
  --region R           AWS region (default: AWS_REGION, AWS_DEFAULT_REGION; us-east-1 with --kms-endpoint)
credentials: the standard AWS environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN, profiles); with --kms-endpoint, TEEGATE_DEV_KMS_ACCESS_KEY_ID and
  TEEGATE_DEV_KMS_SECRET_ACCESS_KEY when set.
prints one JSON line {out, name, version, sha256, size, keyId}
exit: 0 sealed, 1 KMS refused or unreachable, or no credentials (REJECTED <CODE>: <message>), 2 usage or I/O error
`;

export async function modelCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(MODEL_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'seal') return modelSealCommand(rest);
  throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}\n\n${MODEL_HELP}`);
}

function nameOption(value: string, option: string): string {
  if (!MODEL_NAME_PATTERN.test(value)) throw new UsageError(`${option} ${JSON.stringify(value)}: must match ${MODEL_NAME_PATTERN}`);
  return value;
}

export async function modelSealCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      'key-id': { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      out: { type: 'string' },
      'kms-endpoint': { type: 'string' },
      region: { type: 'string' },
    },
    SEAL_HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`expected exactly one MODEL file\n\n${SEAL_HELP}`);
  const file = positionals[0]!;
  const keyId = values['key-id'];
  if (!keyId) throw new UsageError(`--key-id is required\n\n${SEAL_HELP}`);
  const name = nameOption(values.name ?? basename(file, extname(file)), '--name');
  const version = nameOption(values.version ?? '1', '--version');
  const out = values.out ?? `${file}${SEALED_MODEL_SUFFIX}`;
  const endpoint = values['kms-endpoint'];
  const region = values.region;

  const plaintext = readInputFile(file, 'model', 2 ** 31 - 1); // models are larger than other inputs
  let kms;
  noteAwsSdkNodeSupport();
  try {
    kms = createKmsClient(kmsClientConfigFromEnv({ ...(endpoint !== undefined ? { endpoint } : {}), ...(region !== undefined ? { region } : {}) }));
  } catch (err) {
    if (isTeegateError(err)) throw UsageError.from(err);
    throw err;
  }
  let generated;
  try {
    generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: modelEncryptionContext(name, version) }));
  } catch (err) {
    const typed = kmsCallError('GenerateDataKey', err);
    process.stdout.write(`REJECTED ${typed.code}: ${typed.message}\n`);
    return 1;
  } finally {
    kms.destroy();
  }
  const dataKey = generated.Plaintext;
  try {
    if (!dataKey || !generated.CiphertextBlob || !generated.KeyId) {
      process.stdout.write('REJECTED KEY_RELEASE_REJECTED: KMS GenerateDataKey answered without Plaintext, CiphertextBlob or KeyId\n');
      return 1;
    }
    let sealed: Uint8Array;
    try {
      sealed = sealModel({ plaintext, name, version, dataKey, encryptedDataKey: generated.CiphertextBlob, keyId: generated.KeyId });
    } catch (err) {
      if (!isTeegateError(err)) throw err;
      process.stdout.write(`REJECTED ${err.code}: ${err.message}\n`);
      return 1;
    }
    const { model } = parseSealedModel(sealed).header;
    try {
      await writeFileAtomic(out, sealed, 0o644);
    } catch (err) {
      throw new UsageError(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    process.stdout.write(`${JSON.stringify({ out, name, version, sha256: model.sha256, size: model.size, keyId: generated.KeyId })}\n`);
    return 0;
  } finally {
    dataKey?.fill(0);
  }
}
