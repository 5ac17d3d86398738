/**
 * The dev KMS key store file (infra/dev-kms/key-store.ts): what it writes it reads back, and a file
 * it cannot use is CONFIG_INVALID naming it at start, not a failure in the middle of a request.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore, STORE_FILE_NAME, type StoredKey } from '../../infra/dev-kms/key-store';
import { refusalOf } from '../support/error-code';

const KEY: StoredKey = {
  keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
  arn: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  creationDate: 1_764_000_000,
  description: 'test',
  enabled: true,
  policy: '{}',
  material: Buffer.alloc(32, 7).toString('base64'),
};

function saved(): { dir: string; doc: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), 'teegate-kms-store-'));
  const store = new KeyStore(dir);
  store.put(KEY);
  store.putAlias('alias/models', KEY.keyId);
  return { dir, doc: JSON.parse(readFileSync(join(dir, STORE_FILE_NAME), 'utf8')) as Record<string, unknown> };
}

it('reads back the keys and aliases it wrote, in a file only its owner can read', () => {
  const { dir } = saved();
  expect(statSync(join(dir, STORE_FILE_NAME)).mode & 0o777).toBe(0o600);
  const again = new KeyStore(dir);
  expect(again.get(KEY.keyId)).toEqual(KEY);
  expect(again.aliasTarget('alias/models')).toBe(KEY.keyId);
});

it.each<[string, (doc: Record<string, unknown>) => string, string]>([
  ['not JSON', () => '{"format":', 'Unexpected end of JSON input'],
  ['another format', (d) => JSON.stringify({ ...d, format: 'teegate-dev-kms/2' }), 'format must be "teegate-dev-kms/1"'],
  ['keys as an array', (d) => JSON.stringify({ ...d, keys: [KEY] }), 'keys and aliases must be objects'],
  ['a key of 16 bytes', (d) => JSON.stringify({ ...d, keys: { [KEY.keyId]: { ...KEY, material: Buffer.alloc(16).toString('base64') } } }), `key "${KEY.keyId}" is not {keyId`],
  ['a key filed under another id', (d) => JSON.stringify({ ...d, keys: { other: KEY } }), 'key "other" is not {keyId'],
  ['a key without its policy', (d) => JSON.stringify({ ...d, keys: { [KEY.keyId]: { ...KEY, policy: undefined } } }), `key "${KEY.keyId}" is not {keyId`],
  ['an alias to no key', (d) => JSON.stringify({ ...d, aliases: { 'alias/models': 'gone' } }), 'alias "alias/models" does not name a stored key'],
])('refuses a store file with %s: CONFIG_INVALID naming it', async (_what, make, why) => {
  const { dir, doc } = saved();
  const file = join(dir, STORE_FILE_NAME);
  writeFileSync(file, make(doc));
  const refused = await refusalOf(() => new KeyStore(dir));
  expect(refused.code).toBe('CONFIG_INVALID');
  expect(refused.message).toContain(`${file} cannot be used (`);
  expect(refused.message).toContain(why);
});
