/**
 * infra/README.md names only things that exist: every repository path in its code (inline and
 * blocks) and links, every `teegate <command>` (checked against the CLI's own usage) and every
 * `npm run <script>` (against package.json). Generated files live under build/ and are not checked.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { usage } from '../../bin/cli';

const REPO = join(__dirname, '../..');
const README = join(REPO, 'infra/README.md');
const text = readFileSync(README, 'utf8');

/** Code: fenced or indented blocks and inline spans. */
function codeOf(markdown: string): string[] {
  const out: string[] = [];
  const lines = markdown.split('\n');
  let fenced = false;
  for (const line of lines) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced || /^( {4}|\t)/.test(line)) out.push(line);
    else for (const m of line.matchAll(/`([^`]+)`/g)) out.push(m[1]!);
  }
  return out;
}

const code = codeOf(text);
const ROOTS = '(?:attestation|enclave|gateway|infra|bin|docs|test|node_modules)';
const PATH = new RegExp(`(?<![\\w./@$-])(${ROOTS}/[\\w.@*/-]*|docker-compose\\.yml|package\\.json)`, 'g');

function exists(path: string): boolean {
  if (!path.includes('*')) return existsSync(join(REPO, path));
  const dir = dirname(path);
  const pattern = new RegExp(`^${path.slice(dir.length + 1).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return existsSync(join(REPO, dir)) && readdirSync(join(REPO, dir)).some((f) => pattern.test(f));
}

const paths = [...new Set(code.flatMap((c) => [...c.matchAll(PATH)].map((m) => m[1]!.replace(/[.,:;)]+$/, ''))))].sort();
const links = [...text.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
const commands = [...new Set(code.flatMap((c) => [...c.matchAll(/(?<![\w/-])(?:bin\/)?teegate[ \t]+([a-z][a-z-]*)/g)].map((m) => m[1]!)))].sort();
const npmScripts = [...new Set(code.flatMap((c) => [...c.matchAll(/\bnpm run ([\w:-]+)/g)].map((m) => m[1]!)))];
const cliCommands = new Set([...usage().matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1]!));

describe('infra/README.md', () => {
  it('names the deployment files', () => {
    expect(paths).toEqual(expect.arrayContaining(['docker-compose.yml', 'infra/nitro/build-enclave.sh', 'infra/nitro/run-enclave.sh', 'infra/tools/kms-policy.ts']));
  });

  it.each(paths)('path %s exists', (path) => {
    expect(exists(path)).toBe(true);
  });

  it('links only to files that exist', () => {
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) expect({ link, exists: existsSync(normalize(join(dirname(README), link))) }).toEqual({ link, exists: true });
  });

  it('uses only teegate commands the CLI has', () => {
    expect(cliCommands.size).toBeGreaterThan(0);
    expect(commands).toEqual(expect.arrayContaining(['infer', 'model']));
    for (const command of commands) expect({ command, known: cliCommands.has(command) }).toEqual({ command, known: true });
  });

  it('uses only npm scripts package.json has', () => {
    const scripts = Object.keys((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
    for (const script of npmScripts) expect(scripts).toContain(script);
  });

  it('passes only flags the infra tools and scripts accept', () => {
    const accepted: Record<string, string> = {
      'infra/tools/kms-policy.ts': readFileSync(join(REPO, 'infra/tools/kms-policy.ts'), 'utf8'),
      'infra/nitro/build-enclave.sh': readFileSync(join(REPO, 'infra/nitro/build-enclave.sh'), 'utf8'),
    };
    for (const line of code) {
      for (const [tool, source] of Object.entries(accepted)) {
        if (!line.includes(tool)) continue;
        for (const f of line.slice(line.indexOf(tool)).match(/(?<=\s)--[a-z][a-z-]*/g) ?? []) {
          const name = f.slice(2);
          expect({ tool, flag: f, accepted: source.includes(`'${name}'`) || source.includes(`${name}:`) || source.includes(`${f})`) }).toEqual({ tool, flag: f, accepted: true });
        }
      }
    }
  });
});
