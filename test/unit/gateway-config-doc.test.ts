/**
 * docs/gateway-config.md documents exactly the settings of CONFIG_FIELDS (gateway/config.ts), each
 * with its variable, type, default and range as the schema has them, and a meaning.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FIELDS } from '../../gateway/config';

const ROW = /^\| `([A-Za-z.]+)` \| `(TEEGATE_[A-Z_]+)` \| (string|int|bool|list|json) \| (.+?) \| (.+?) \| (.+) \|$/;

function documented(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readFileSync(join(__dirname, '../../docs/gateway-config.md'), 'utf8').split('\n')) {
    const m = ROW.exec(line);
    if (!m) continue;
    expect(rows.has(m[1]!)).toBe(false);
    rows.set(m[1]!, m.slice(2));
  }
  return rows;
}

/** A schema field as the table writes it: variable, type, default (JSON, or — for none), range. */
function expected(field: (typeof CONFIG_FIELDS)[number]): string[] {
  const dflt = field.default === undefined ? '—' : `\`${JSON.stringify(field.default)}\``;
  const range = field.oneOf ? field.oneOf.map((o) => `\`${o}\``).join(', ') : field.min !== undefined ? `${field.min}..${field.max}` : '—';
  return [field.env, field.kind, dflt, range];
}

describe('docs/gateway-config.md', () => {
  const docs = documented();

  it('documents every setting with its variable, type, default and range, and says what it does', () => {
    for (const field of CONFIG_FIELDS) {
      const row = docs.get(field.path);
      expect([field.path, ...(row ?? ['missing']).slice(0, 4)]).toEqual([field.path, ...expected(field)]);
      expect(row![4]!.length).toBeGreaterThan(20);
    }
  });

  it('documents no setting the schema does not have', () => {
    expect([...docs.keys()].sort()).toEqual(CONFIG_FIELDS.map((f) => f.path).sort());
  });
});
