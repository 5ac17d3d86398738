/** `teegate`: one CLI, a thin dispatcher into the commands. Exit codes: 0 ok, 1 rejected, 2 usage or I/O error. */
import { UsageError } from './commands/usage';

type Command = (args: string[]) => Promise<number>;

// Commands load lazily (require, not import(): the tsx CommonJS loader resolves it) so that
// `verify-attestation` never loads onnxruntime or express.
const COMMANDS: Record<string, { summary: string; load: () => Command }> = {
  up: {
    summary: 'start the dev stack (dev KMS, enclaves, gateway) on embedded defaults',
    load: () => (require('./commands/up') as typeof import('./commands/up')).upCommand,
  },
  'verify-attestation': {
    summary: 'verify an AWS Nitro attestation document (raw CBOR, base64 or hex)',
    load: () => (require('./commands/verify-attestation') as typeof import('./commands/verify-attestation')).verifyAttestationCommand,
  },
  infer: {
    summary: 'attest the gateway, run one inference (sealed by default) and verify its receipt',
    load: () => (require('./commands/infer') as typeof import('./commands/infer')).inferCommand,
  },
  'verify-receipt': {
    summary: 'verify an inference receipt offline against an attestation document and manifest',
    load: () => (require('./commands/verify-receipt') as typeof import('./commands/verify-receipt')).verifyReceiptCommand,
  },
  audit: {
    summary: 'audit a transparency log: checkpoints, consistency, every entry, receipt sequences',
    load: () => (require('./commands/audit') as typeof import('./commands/audit')).auditCommand,
  },
  model: {
    summary: 'model tools: `model seal MODEL.onnx --key-id ID` encrypts a model under a KMS data key',
    load: () => (require('./commands/model-seal') as typeof import('./commands/model-seal')).modelCommand,
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(20)} ${c.summary}`);
  return `usage: teegate <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'teegate <command> --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`teegate: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.load()(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`teegate ${name}: ${err.code !== undefined ? `${err.code}: ` : ''}${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
