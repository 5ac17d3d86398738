/** `teegate verify-receipt RECEIPT --attestation DOC --manifest FILE [--request FILE --response FILE] [--model NAME[@V]] [--policy FILE] [--json]` */
import { existsSync } from 'node:fs';
import type { ModelRef } from '../../attestation/manifest';
import { MODEL_NAME } from '../../enclave/models/model-config';
import { verifyReceiptOffline } from '../../attestation/client/verify-offline';
import { decodeDocumentInput } from '../../attestation/document-input';
import { isTeegateError } from '../../attestation/errors';
import { parseInferTensors, type InferTensor } from '../../attestation/tensors';
import { formatSteps, verdictExit } from './report-output';
import { UsageError, parseCommandArgs, readInputFile, readJsonFile, readPolicyOption, readRootOptions } from './usage';

const HELP = `usage: teegate verify-receipt RECEIPT --attestation DOC --manifest FILE [options]

Verifies an inference receipt offline against the boot attestation document of the enclave that
signed it (the receipt names it by SHA-384) and the manifest bound to that document. With
--request and --response, re-derives the input and output digests from the tensors and the salt.
RECEIPT is a file holding the compact JWS (or the JWS itself).

options:
  --attestation DOC  the enclave's boot attestation document: raw CBOR, base64 or hex
  --manifest FILE    the manifest JSON (or a {"document", "manifest"} answer of /v1/enclaves)
  --request FILE     the OIP request you sent ({"inputs": [...], "parameters": {"nonce"?}})
  --response FILE    the OIP response you received ({"outputs": [...], "parameters": {"salt"}})
  --policy FILE      measurement policy file (docs/policy.md), including trusted roots for dev
  --root PEM         trust this root certificate (repeatable)
  --model NAME[@V]   require the receipt to be for the model you asked for (and version V)
  --sealed           require the receipt to say the request was sealed (--plain: plain)
  --plain
  --json             print the whole report as JSON
exit: 0 valid, 1 rejected (REJECTED <CODE>: <message>), 2 usage or I/O error
`;

/** `--model NAME[@VERSION]`. */
const MODEL_REF = new RegExp(`^(${MODEL_NAME})(?:@(${MODEL_NAME}))?$`);

function readJson(path: string, what: string): Record<string, unknown> {
  const json = readJsonFile(path, what);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${what} ${path} must hold a JSON object`);
  return json as Record<string, unknown>;
}

function tensors(value: unknown, what: string, path: string): InferTensor[] {
  try {
    return parseInferTensors(value, what);
  } catch (err) {
    if (isTeegateError(err)) throw UsageError.from(err, `${path}: `);
    throw err;
  }
}

function params(o: Record<string, unknown>): Record<string, unknown> {
  const p = o.parameters;
  return typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

export async function verifyReceiptCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      attestation: { type: 'string' },
      manifest: { type: 'string' },
      request: { type: 'string' },
      response: { type: 'string' },
      policy: { type: 'string' },
      root: { type: 'string', multiple: true },
      model: { type: 'string' },
      sealed: { type: 'boolean' },
      plain: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`expected exactly one RECEIPT\n\n${HELP}`);
  if (values.attestation === undefined || values.manifest === undefined) throw new UsageError(`--attestation and --manifest are required\n\n${HELP}`);
  if (values.sealed && values.plain) throw new UsageError('--sealed and --plain exclude each other');
  const arg = positionals[0]!;
  const receipt = (existsSync(arg) || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(arg) ? readInputFile(arg, 'receipt').toString('utf8') : arg).trim();

  let document: Uint8Array;
  try {
    document = decodeDocumentInput(new Uint8Array(readInputFile(values.attestation, 'attestation document'))).bytes;
  } catch (err) {
    if (isTeegateError(err)) throw UsageError.from(err, `${values.attestation}: `);
    throw err;
  }
  const manifestFile = readJson(values.manifest, 'manifest');
  const manifest = 'manifest' in manifestFile && !('keys' in manifestFile) ? manifestFile.manifest : manifestFile;

  let model: ModelRef | undefined;
  if (values.model !== undefined) {
    const m = MODEL_REF.exec(values.model);
    if (!m) throw new UsageError(`--model ${JSON.stringify(values.model)} must be NAME or NAME@VERSION`);
    model = { name: m[1]!, version: m[2] };
  }
  const policy = values.policy !== undefined ? readPolicyOption(values.policy) : undefined;
  const roots = readRootOptions(values.root);

  let inputs: InferTensor[] | undefined;
  let nonce: string | undefined;
  if (values.request !== undefined) {
    const request = readJson(values.request, 'request');
    inputs = tensors(request.inputs, 'inputs', values.request);
    const n = params(request).nonce;
    if (typeof n === 'string') nonce = n;
  }
  let outputs: InferTensor[] | undefined;
  let salt: string | undefined;
  if (values.response !== undefined) {
    const response = readJson(values.response, 'response');
    outputs = tensors(response.outputs, 'outputs', values.response);
    const s = params(response).salt;
    if (typeof s !== 'string' || !/^[0-9a-fA-F]{64}$/.test(s)) throw new UsageError(`${values.response}: parameters.salt must be 32 bytes of hex`);
    salt = s;
  }

  const { report, claims } = await verifyReceiptOffline({
    receipt,
    document,
    manifest,
    ...(policy ? { policy } : {}),
    ...(roots.length ? { rootCertificates: roots } : {}),
    ...(inputs ? { inputs } : {}),
    ...(outputs ? { outputs } : {}),
    ...(salt !== undefined ? { salt } : {}),
    ...(nonce !== undefined ? { nonce } : {}),
    ...(values.sealed || values.plain ? { sealed: values.sealed === true } : {}),
    ...(model !== undefined ? { model } : {}),
  });

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ receipt: arg, valid: report.valid, steps: report.steps, error: report.error ?? null, claims: claims ?? null }, null, 2)}\n`);
  } else {
    process.stdout.write(`receipt ${claims ? `${claims.jti} seq ${claims.seq} from enclave ${claims.iss}` : arg}\n`);
    process.stdout.write(formatSteps(report.steps));
    if (report.valid && claims) {
      process.stdout.write(`VALID ${claims.model.name}@${claims.model.version}, ${claims.sealed ? 'sealed' : 'plain'}, issued ${new Date(claims.iat * 1000).toISOString()}${inputs && outputs ? '' : ' (tensors not checked: give --request and --response)'}\n`);
    }
  }
  return verdictExit(report, values.json === true);
}
