/** `teegate`: one CLI, a thin dispatcher into the commands. Exit codes: 0 ok, 1 rejected, 2 usage or I/O error. */
import { UsageError } from './commands/usage';

type Command = (args: string[]) => Promise<number>;

// Commands load lazily (require, not import(): the tsx CommonJS loader resolves it) so that
// `verify-attestation` never loads onnxruntime or express.
const COMMANDS: Record<string, { summary: string; load: () => Command }> = {
  'verify-attestation': {
    summary: 'verify an AWS Nitro attestation document (raw CBOR, base64 or hex)',
    load: () => (require('./commands/verify-attestation') as typeof import('./commands/verify-attestation')).verifyAttestationCommand,
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
      process.stderr.write(`teegate ${name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
