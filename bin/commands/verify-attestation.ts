/** `teegate verify-attestation FILE [--at TIME] [--root PEM] [--expect-pcr N=HEX]... [--nonce HEX] [--allow-debug] [--json]` */
import { formatSteps, verdictExit } from './report-output';
import { fromHex } from '../../attestation/bytes';
import { decodeDocumentInput } from '../../attestation/document-input';
import { TeegateError, isTeegateError } from '../../attestation/errors';
import { attestationToJSON, verifyAttestationReport } from '../../attestation/nitro/verify';
import { UsageError, parseCommandArgs, parseTime, parseWholeNumber, readInputFile, readRootOptions } from './usage';

const HELP = `usage: teegate verify-attestation FILE [options]

Verifies an AWS Nitro Enclaves attestation document. FILE holds raw CBOR, base64 (line breaks
allowed) or hex; the encoding is detected.

options:
  --at TIME            verification time, ISO 8601 or ms since the epoch (default: now)
  --root PEM           trust this root certificate instead of AWS Nitro Root-G1 (repeatable)
  --expect-pcr N=HEX   require PCR N to equal HEX (repeatable)
  --nonce HEX          require this nonce
  --user-data HEX      require this user_data
  --public-key HEX     require this public_key
  --max-age SECONDS    reject documents older than this (against their own timestamp)
  --allow-debug        accept debug-mode enclaves (PCR0, PCR1, PCR2 all zero)
  --json               print the whole report as JSON
exit: 0 valid, 1 rejected (REJECTED <CODE>: <message>), 2 usage or I/O error
`;

function hexOption(value: string | undefined, option: string): Uint8Array | undefined {
  if (value === undefined) return undefined;
  try {
    return fromHex(value);
  } catch {
    throw new UsageError(`${option}: not valid hex`);
  }
}

export async function verifyAttestationCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      at: { type: 'string' },
      root: { type: 'string', multiple: true },
      'expect-pcr': { type: 'string', multiple: true },
      nonce: { type: 'string' },
      'user-data': { type: 'string' },
      'public-key': { type: 'string' },
      'max-age': { type: 'string' },
      'allow-debug': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`expected exactly one FILE\n\n${HELP}`);
  const file = positionals[0]!;

  const pcrs: Record<number, string> = {};
  for (const spec of values['expect-pcr'] ?? []) {
    const m = /^(\d{1,2})=([0-9a-fA-F]+)$/.exec(spec);
    if (!m) throw new UsageError(`--expect-pcr ${JSON.stringify(spec)}: expected N=HEX`);
    pcrs[Number(m[1])] = m[2]!.toLowerCase();
  }
  const maxAgeMs = values['max-age'] !== undefined ? parseWholeNumber(values['max-age'], '--max-age (seconds)', 0, 1_000_000_000) * 1000 : undefined;
  const roots = readRootOptions(values.root);
  const raw = readInputFile(file, 'document');

  let report;
  let encoding = 'unknown';
  try {
    const input = decodeDocumentInput(new Uint8Array(raw));
    encoding = input.encoding;
    report = await verifyAttestationReport(input.bytes, {
      ...(values.at !== undefined ? { at: parseTime(values.at, '--at') } : {}),
      ...(roots.length ? { rootCertificates: roots } : {}),
      policy: { pcrs, allowDebug: values['allow-debug'] ?? false, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) },
      nonce: hexOption(values.nonce, '--nonce'),
      userData: hexOption(values['user-data'], '--user-data'),
      publicKey: hexOption(values['public-key'], '--public-key'),
    });
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    if (err.code === 'POLICY_INVALID') throw UsageError.from(err);
    report = { valid: false, steps: [], error: (err as TeegateError).toJSON() };
  }

  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ file, encoding, valid: report.valid, steps: report.steps, error: report.error ?? null, attestation: 'attestation' in report && report.attestation ? attestationToJSON(report.attestation) : null }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`${file} (${raw.length} bytes, ${encoding})\n`);
    process.stdout.write(formatSteps(report.steps, 9));
    if (report.valid && 'attestation' in report && report.attestation) {
      const a = report.attestation;
      process.stdout.write(`VALID module ${a.moduleId}, ${new Date(a.timestamp).toISOString()}${a.debug ? ', DEBUG MODE' : ''}\n`);
    }
  }
  return verdictExit(report, values.json === true);
}
