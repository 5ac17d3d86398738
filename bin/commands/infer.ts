/** `teegate infer --url URL (--model NAME --input FILE | --demo) --policy FILE [--plain] [--json] ...` */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type InferResult } from '../../attestation/client/client';
import { AttestationRejectedError } from '../../attestation/client/enclave-attestation';
import { rejectedAttestationReport, type VerificationReport } from '../../attestation/client/report';
import { toBase64 } from '../../attestation/bytes';
import { isTeegateError } from '../../attestation/errors';
import { parseInferTensors } from '../../attestation/tensors';
import { UsageError, parseCommandArgs, parseWholeNumber, readInputFile, readJsonFile, readPolicyOption, readRootOptions } from './usage';
import { formatOutputs, formatSteps, verdictExit } from './report-output';

export const DEMO_MODEL = 'ppocr-v4-rec';
export const DEMO_INPUT = join(__dirname, '../../enclave/models/demo/line.png');

const HELP = `usage: teegate infer --url URL (--model NAME --input FILE | --demo) --policy FILE [options]

Attests the gateway's enclave (fresh nonce, measurement policy, manifest binding), sends one
inference (sealed to the attested enclave unless --plain) and verifies the answer: the receipt's
signature by the attested key, input and output digests re-derived from your own tensors and the
salt, the model, the nonce and, with --log-key, inclusion in the transparency log.

options:
  --url URL          the gateway (default: $TEEGATE_URL)
  --model NAME       the model to run
  --input FILE       an Open Inference Protocol request ({"inputs": [...]}) or a JSON array of tensors
  --demo             send the shipped demo input (a PNG of one line of text) to ${DEMO_MODEL}
  --policy FILE      required: measurement policy file (docs/policy.md): PCRs, debug, max age, trusted roots
  --root PEM         trust this root certificate (repeatable; default: the policy's, else AWS Nitro Root-G1)
  --plain            send the request in the clear (the gateway sees it)
  --version V        model version
  --api-key KEY      gateway API key (default: $TEEGATE_API_KEY)
  --log-key VKEY     the log's verifier key (name+keyid+base64) or a file holding it: check log inclusion
  --log-wait SECONDS wait this long for the log to integrate the receipt (default 5 with --log-key)
  --log-url URL      where the log is served, if not by the gateway (URL/v1/log/...)
  --save DIR         write request.json, response.json, receipt.jws, attestation.b64, manifest.json
                     (for 'teegate verify-receipt')
  --json             print the whole result as JSON
exit: 0 verified, 1 rejected (REJECTED <CODE>: <message>), 2 usage, I/O or gateway error
`;

/** The tensors of an input file (`{"inputs": [...]}` or a bare array), checked before anything goes over the wire. */
function loadInputs(path: string): unknown[] {
  const json = readJsonFile(path, 'input file');
  const inputs = Array.isArray(json) ? json : typeof json === 'object' && json !== null && Array.isArray((json as { inputs?: unknown }).inputs) ? (json as { inputs: unknown[] }).inputs : undefined;
  if (inputs === undefined) throw new UsageError(`input file ${path} must hold {"inputs": [...]} or an array of tensors`);
  try {
    parseInferTensors(inputs, 'inputs');
  } catch (err) {
    if (isTeegateError(err)) throw UsageError.from(err, `input file ${path}: `);
    throw err;
  }
  return inputs;
}

function readLogKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(value.trim())) return value.trim();
  return readInputFile(value, 'log key').toString('utf8').trim();
}

function save(dir: string, inputs: unknown[], result: InferResult, attestation: { document: Uint8Array; manifest: unknown }): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'request.json'), `${JSON.stringify({ inputs, parameters: { nonce: result.nonce } }, null, 2)}\n`);
    writeFileSync(join(dir, 'response.json'), `${JSON.stringify({ outputs: result.outputs, parameters: { receipt: result.receipt, salt: result.salt, ...(result.logIndex !== undefined ? { log_index: result.logIndex } : {}) } }, null, 2)}\n`);
    writeFileSync(join(dir, 'receipt.jws'), `${result.receipt}\n`);
    writeFileSync(join(dir, 'attestation.b64'), `${toBase64(attestation.document)}\n`);
    writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(attestation.manifest, null, 2)}\n`);
  } catch (err) {
    throw new UsageError(`cannot write to ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export async function inferCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      url: { type: 'string' },
      model: { type: 'string' },
      input: { type: 'string' },
      demo: { type: 'boolean' },
      policy: { type: 'string' },
      root: { type: 'string', multiple: true },
      plain: { type: 'boolean' },
      version: { type: 'string' },
      'api-key': { type: 'string' },
      'log-key': { type: 'string' },
      'log-wait': { type: 'string' },
      'log-url': { type: 'string' },
      save: { type: 'string' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${HELP}`);
  const url = values.url ?? process.env.TEEGATE_URL;
  if (!url) throw new UsageError(`--url is required (or set TEEGATE_URL)\n\n${HELP}`);
  if (values.demo && (values.model !== undefined || values.input !== undefined)) throw new UsageError('--demo takes no --model or --input');
  if (!values.demo && (values.model === undefined || values.input === undefined)) throw new UsageError(`give --model NAME --input FILE, or --demo\n\n${HELP}`);
  const model = values.demo ? DEMO_MODEL : values.model!;
  const inputs = values.demo
    ? [{ name: 'image', datatype: 'BYTES', shape: [1], data: [readInputFile(DEMO_INPUT, 'demo input').toString('base64')] }]
    : loadInputs(values.input!);
  if (values.policy === undefined) throw new UsageError(`--policy FILE is required: the measurement policy of the enclave images you trust with your data (docs/policy.md; 'teegate up' writes data/measurement-policy.json)\n\n${HELP}`);
  const policy = readPolicyOption(values.policy);
  const roots = readRootOptions(values.root);
  const logKey = readLogKey(values['log-key']);
  const logWaitMs = values['log-wait'] !== undefined ? parseWholeNumber(values['log-wait'], '--log-wait (seconds)', 0, 9999) * 1000 : logKey !== undefined ? 5000 : 0;
  const apiKey = values['api-key'] ?? process.env.TEEGATE_API_KEY;
  const out = (text: string) => (values.json ? undefined : process.stdout.write(text));

  let result: InferResult | undefined;
  let report: VerificationReport;
  let bootDocument: { document: Uint8Array; manifest: unknown } | undefined;
  try {
    const client = await connect(url, {
      policy,
      ...(roots.length ? { rootCertificates: roots } : {}),
      ...(apiKey ? { apiKey } : {}),
      ...(logKey !== undefined ? { logKey } : {}),
      ...(values['log-url'] !== undefined ? { logUrl: values['log-url'] } : {}),
    });
    const a = client.attestation;
    out(`gateway ${client.url}\nattested enclave ${a.bootId}${a.enclaveId ? ` (${a.enclaveId})` : ''}, module ${a.fresh.moduleId}\n`);
    result = await client.infer(model, inputs, { sealed: !values.plain, logWaitMs, ...(values.version !== undefined ? { version: values.version } : {}) });
    report = result.report;
    if (values.save) {
      const signer = await client.enclave(result.bootId).catch(() => client.attestation);
      bootDocument = { document: signer.bootDocument, manifest: signer.manifest };
    }
  } catch (err) {
    if (err instanceof AttestationRejectedError) report = rejectedAttestationReport(err);
    else if (isTeegateError(err) && err.action === 'stop') report = { valid: false, steps: [], error: err.toJSON() };
    else if (isTeegateError(err)) {
      const hint = err.code === 'AUTH_REQUIRED' || err.code === 'AUTH_INVALID' ? '\n  pass --api-key KEY or set TEEGATE_API_KEY (teegate up saves the key in data/api-key)' : '';
      process.stderr.write(`teegate infer: ${err.code}: ${err.message}${hint}\n`);
      return 2;
    } else throw err;
  }

  if (values.save && result && bootDocument) save(values.save, inputs, result, bootDocument);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          url,
          model,
          sealed: !values.plain,
          valid: report.valid,
          steps: report.steps,
          error: report.error ?? null,
          boot_id: result?.bootId ?? null,
          outputs: result?.outputs ?? null,
          receipt: result?.receipt ?? null,
          claims: result?.claims ?? null,
          salt: result?.salt ?? null,
          nonce: result?.nonce ?? null,
          log_index: result?.logIndex ?? null,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    out(formatSteps(report.steps));
    if (result) out(`outputs (${model}, ${result.sealed ? 'sealed' : 'plain'}):\n${formatOutputs(result.outputs)}`);
    if (report.valid && result?.claims) {
      const logStep = report.steps.find((s) => s.step === 'log');
      out(`VERIFIED receipt ${result.claims.jti} seq ${result.claims.seq} from enclave ${result.claims.iss}${result.logIndex !== undefined ? `, log index ${result.logIndex} (${logStep?.status === 'passed' ? 'inclusion verified' : logStep?.status === 'pending' ? 'inclusion pending' : 'inclusion not checked: pin the log key with --log-key'})` : ''}\n`);
    }
    if (values.save && result) out(`saved to ${values.save}/ (check offline: ${offlineCheck(values.save, { policy: values.policy, root: values.root }, `${model}${values.version !== undefined ? `@${values.version}` : ''}`, result.sealed)})\n`);
  }
  return verdictExit(report, values.json === true);
}

/** A word as the shell reads it: bare when it is plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `teegate verify-receipt` command that checks what `--save` wrote, under the same trust as
 * this run (the policy and any --root) and for the model and mode asked for: runnable as printed.
 */
function offlineCheck(dir: string, trust: { readonly policy: string; readonly root?: readonly string[] }, model: string, sealed: boolean): string {
  const file = (name: string) => shellWord(`${dir}/${name}`);
  return [
    'teegate verify-receipt',
    file('receipt.jws'),
    `--attestation ${file('attestation.b64')} --manifest ${file('manifest.json')} --request ${file('request.json')} --response ${file('response.json')}`,
    `--policy ${shellWord(trust.policy)}`,
    ...(trust.root ?? []).map((root) => `--root ${shellWord(root)}`),
    `--model ${shellWord(model)}`,
    sealed ? '--sealed' : '--plain',
  ].join(' ');
}
