/** `teegate audit --url URL [--state FILE] [--policy FILE] [--log-key VKEY] [--root PEM]... [--json]` */
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../../enclave/write-file-atomic';
import { auditLog } from '../../attestation/audit/audit-log';
import type { AuditReport } from '../../attestation/audit/audit-report';
import { formatAuditState, parseAuditState, type AuditState } from '../../attestation/audit/audit-state';
import { LogClient } from '../../attestation/audit/log-client';
import { isTeegateError } from '../../attestation/errors';
import { UsageError, parseCommandArgs, readInputFile, readPolicyOption, readRootOptions } from './usage';

const HELP = `usage: teegate audit --url URL [options]

Audits a teegate transparency log: checks the checkpoint signature and its consistency with the
last checkpoint seen (kept in the state file), replays every entry, verifies each attestation
against the tree and the policy and each receipt against the logged attestation of its enclave,
and reports per enclave image (PCR0): boots, receipts, time range, sequence gaps.

options:
  --url URL          the gateway (or its /v1/log)
  --state FILE       last checkpoint seen and the pinned log key; updated when the audit passes
  --policy FILE      measurement policy file (docs/policy.md): PCRs, debug, max age, trusted roots
  --log-key VKEY     the log's verifier key <origin>+<id>+<base64> (default: pinned in the state,
                     else fetched from the log on first use)
  --root PEM         trust this root for attestation documents instead of AWS Nitro Root-G1 (repeatable)
  --json             print the report as JSON
exit: 0 passed, 1 failed, the log unreachable or malformed included (FAILED <CODE>[ at entry <index>]: <reason>),
      2 usage error, or a state file, policy file or log key that cannot be used
`;


function readState(path: string): AuditState | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return parseAuditState(readInputFile(path, 'state').toString('utf8'));
  } catch (err) {
    throw UsageError.from(err, `state ${path}: `);
  }
}

function progressBar(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} entries`);
    if (done >= total) process.stderr.write('\n');
  };
}

function printText(report: AuditReport): void {
  const out: string[] = [];
  out.push(`log ${report.origin ?? '?'} (key ${report.keySource ?? '?'}: ${report.verifierKey ?? '?'})`);
  if (report.checkpoint) out.push(`checkpoint size ${report.checkpoint.size} root ${report.checkpoint.rootHash}`);
  if (report.previous) out.push(`last seen size ${report.previous.size} root ${report.previous.rootHash}`);
  out.push(`entries ${report.entries}: ${report.attestations} attestations, ${report.receipts} receipts`);
  for (const img of report.images) {
    out.push(`image PCR0 ${img.pcr0}`);
    out.push(`  boots ${img.boots}, receipts ${img.receipts}, from ${img.firstSeen ?? '-'} to ${img.lastSeen ?? '-'}`);
    for (const gap of img.gaps) out.push(`  gap: boot ${gap.bootId} is missing seq ${gap.missing.map(([a, b]) => (a === b ? `${a}` : `${a} to ${b}`)).join(', ')} (${gap.count} in all)`);
  }
  for (const f of report.failures) out.push(`FAILED ${f.code}${f.index !== undefined ? ` at entry ${f.index}` : ''}: ${f.message}`);
  out.push(report.ok ? 'PASSED' : `FAILED (${report.failures.length} failure${report.failures.length === 1 ? '' : 's'})`);
  process.stdout.write(`${out.join('\n')}\n`);
}

export async function auditCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      url: { type: 'string' },
      state: { type: 'string' },
      policy: { type: 'string' },
      'log-key': { type: 'string' },
      root: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n\n${HELP}`);
  if (!values.url) throw new UsageError(`--url is required\n\n${HELP}`);
  if (!/^https?:\/\//.test(values.url)) throw new UsageError('--url must be an http(s) URL');
  const loaded = values.policy ? readPolicyOption(values.policy) : undefined;
  const policy = loaded?.policy;
  const state = values.state ? readState(values.state) : undefined;
  const roots = [...readRootOptions(values.root), ...(loaded?.rootCertificates ?? [])];
  const onProgress = values.json ? undefined : progressBar();

  let report: AuditReport;
  try {
    report = await auditLog({
      client: new LogClient(values.url),
      ...(values['log-key'] ? { verifierKey: values['log-key'] } : {}),
      ...(state ? { state } : {}),
      ...(policy ? { policy } : {}),
      ...(roots.length > 0 ? { rootCertificates: roots } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
  } catch (err) {
    if (!isTeegateError(err)) throw err;
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, error: err.toJSON() })}\n`);
    else process.stderr.write(`FAILED ${err.code}: ${err.message}\n`);
    return err.code === 'AUDIT_STATE_INVALID' ? 2 : 1;
  }
  if (report.ok && values.state && report.state) {
    await writeFileAtomic(values.state, formatAuditState(report.state), 0o644);
  }
  if (values.json) {
    const { state: _state, ...rest } = report;
    void _state;
    process.stdout.write(`${JSON.stringify(rest)}\n`);
  } else printText(report);
  return report.ok ? 0 : 1;
}
