/**
 * Bundles the web explorer (gateway/ui/src/main.ts and what it imports, the verifier library and
 * client SDK included) for browsers with esbuild, in memory. Any import of a Node built-in fails the
 * build with the importer named: the same code must run in a browser with fetch and WebCrypto only.
 * The error meanings of docs/errors.md are compiled in as `__TEEGATE_ERROR_MEANINGS__`.
 */
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import type { Plugin } from 'esbuild';
import { loadErrorMeanings } from './error-meanings';

export const UI_ENTRY = join(__dirname, 'src/main.ts');
const ROOT = join(__dirname, '../..');

export interface UiBundle {
  /** The browser bundle (IIFE, ES2022). */
  readonly js: string;
  /** Source files that went into it, relative to the repository root. */
  readonly inputs: readonly string[];
}

export interface UiBuildOptions {
  readonly entry?: string;
}

const BUILTINS = new Set(builtinModules);

/** Whether an import specifier names a Node built-in: `node:x`, `fs`, or a subpath such as `fs/promises`. */
export function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0]!);
}

/** Fails the build on any Node built-in (`fs`, `node:crypto`, `buffer`, ...), naming who imports it. */
export const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (!isNodeBuiltin(args.path)) return undefined;
      return { errors: [{ text: `${relative(ROOT, args.importer) || args.importer} imports the Node built-in "${args.path}": browser code may use fetch and WebCrypto only` }] };
    });
  },
};

export async function buildUiBundle(options: UiBuildOptions = {}): Promise<UiBundle> {
  // Loaded on first use: a gateway installed without esbuild still starts (the page then says why it has no bundle).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { build } = require('esbuild') as typeof import('esbuild');
  const result = await build({
    entryPoints: [options.entry ?? UI_ENTRY],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
    define: { __TEEGATE_ERROR_MEANINGS__: JSON.stringify(loadErrorMeanings()) },
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  return { js: out.text, inputs: Object.keys(result.metafile.inputs) };
}
