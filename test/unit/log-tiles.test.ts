import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { toHex } from '../../attestation/bytes';
import { MerkleTree, rootFromLeafHashes, type Sha256 } from '../../attestation/log/merkle';
import {
  entryBundlePath,
  entryBundlePathFor,
  formatTileIndex,
  parseTilePath,
  partialTiles,
  tileForNode,
  tileNodes,
  tilePath,
  tilePathAt,
  tileWidth,
} from '../../attestation/log/tiles';

const nodeSha256: Sha256 = (data) => new Uint8Array(createHash('sha256').update(data).digest());
const invalid = expect.objectContaining({ code: 'LOG_TILE_PATH_INVALID' });

describe('tlog-tiles paths: examples of the C2SP spec', () => {
  it('encodes index 1234067 as x001/x234/067', () => {
    expect(formatTileIndex(1234067)).toBe('x001/x234/067');
    expect(tilePath(0, 1234067)).toBe('tile/0/x001/x234/067');
    expect(parseTilePath('tile/0/x001/x234/067')).toEqual({ kind: 'tile', level: 0, index: 1234067, width: 256 });
  });

  it('describes a tree of size 70,000: 273 full level-0 tiles, partial widths 112, 17 and 1', () => {
    expect(partialTiles(70000)).toEqual([
      { level: 0, index: 273, width: 112 },
      { level: 1, index: 1, width: 17 },
      { level: 2, index: 0, width: 1 },
    ]);
    expect(tileWidth(0, 272, 70000)).toBe(256);
    expect(tileWidth(0, 273, 70000)).toBe(112);
    expect(tileWidth(0, 274, 70000)).toBe(0);
    expect(tileWidth(1, 0, 70000)).toBe(256);
    expect(tilePathAt(0, 273, 70000)).toBe('tile/0/273.p/112');
    expect(tilePathAt(1, 1, 70000)).toBe('tile/1/001.p/17');
    expect(tilePathAt(2, 0, 70000)).toBe('tile/2/000.p/1');
  });

  it('describes a tree of size 256: one full level-0 tile and a level-1 tile of width 1', () => {
    expect(partialTiles(256)).toEqual([{ level: 1, index: 0, width: 1 }]);
    expect(tilePathAt(0, 0, 256)).toBe('tile/0/000');
    expect(tilePathAt(1, 0, 256)).toBe('tile/1/000.p/1');
    expect(partialTiles(0)).toEqual([]);
  });
});

describe('tlog-tiles paths: transparency-dev/trillian-tessera api/layout/paths_test.go vectors', () => {
  it('TestTilePath', () => {
    // Tile paths at a given tree size (partial suffix when the tile is not full at that size).
    expect(tilePathAt(0, 0, 256)).toBe('tile/0/000');
    expect(tilePathAt(0, 0, 255)).toBe('tile/0/000.p/255');
    expect(tilePathAt(1, 0, Number.MAX_SAFE_INTEGER)).toBe('tile/1/000');
    expect(tilePathAt(1, 0, 256)).toBe('tile/1/000.p/1');
    expect(tilePathAt(1, 0, 1024)).toBe('tile/1/000.p/4');
    // Full tiles (tessera passes a log size of 2^64 - 1 here).
    expect(tilePath(15, 455667)).toBe('tile/15/x455/667');
    expect(tilePath(3, 1234567)).toBe('tile/3/x001/x234/567');
    expect(tilePath(15, 123456789)).toBe('tile/15/x123/x456/789');
    // tessera yields tile/0/000 for an empty tree; an empty tile is never served, so it is an error here.
    expect(() => tilePathAt(0, 0, 0)).toThrow(invalid);
  });

  it('TestEntriesPath and TestEntriesPathForLogIndex', () => {
    expect(entryBundlePathFor(0, 256)).toBe('tile/entries/000');
    expect(entryBundlePathFor(255, 256)).toBe('tile/entries/000');
    expect(entryBundlePathFor(251, 255)).toBe('tile/entries/000.p/255');
    expect(entryBundlePathFor(256, 512)).toBe('tile/entries/001');
    expect(entryBundlePathFor(256, 257)).toBe('tile/entries/001.p/1');
    expect(entryBundlePathFor(123456789 * 256, 123456790 * 256)).toBe('tile/entries/x123/x456/789');
    expect(entryBundlePath(0, 8)).toBe('tile/entries/000.p/8');
    expect(entryBundlePath(255)).toBe('tile/entries/255');
    expect(entryBundlePath(255, 253)).toBe('tile/entries/255.p/253');
    expect(entryBundlePath(256)).toBe('tile/entries/256');
    expect(entryBundlePath(123456789000)).toBe('tile/entries/x123/x456/x789/000');
    expect(() => entryBundlePathFor(5, 5)).toThrow(invalid);
  });

  it('TestParseTileLevelIndexWidth: good paths', () => {
    expect(parseTilePath('tile/0/x001/x234/067.p/89')).toEqual({ kind: 'tile', level: 0, index: 1234067, width: 89 });
    expect(parseTilePath('tile/0/001')).toEqual({ kind: 'tile', level: 0, index: 1, width: 256 });
    expect(parseTilePath('tile/63/x999/x999/x999/x999/999.p/255')).toEqual({ kind: 'tile', level: 63, index: 999999999999999, width: 255 });
    expect(parseTilePath('tile/entries/x123/x456/789')).toEqual({ kind: 'entries', index: 123456789, width: 256 });
    expect(parseTilePath('tile/entries/000.p/8')).toEqual({ kind: 'entries', index: 0, width: 8 });
  });

  it('TestParseTileLevelIndexWidth: bad paths throw LOG_TILE_PATH_INVALID', () => {
    const bad = [
      'tile/0/x001/x234/067.p/',
      'tile/0/x001/x234/067.p',
      'tile/0/x001/x234/',
      'tile/0/x001/x234',
      'tile/0/x001/',
      'tile/0/x001',
      'tile/1/x001/.p/abc',
      'tile/64/x001/002',
      'tile/-1/x001/002',
      'tile/abc/x001/002',
      'tile/8/001/002',
      'tile/8/x001/0002',
      'tile/8/x001/-002',
      'tile/8/x001/002.p/256',
      // Beyond the tessera vectors: strict canonical form and range.
      'tile/63/x999/x999/x999/x999/x999/999.p/255', // 10^18 - 1 exceeds 2^53 - 1
      'tile/0/x000/001', // non-canonical leading x000
      'tile/00/001',
      'tile/0/001.p/0',
      'tile/0/001.p/08',
      'tile/0/001.p/8/',
      'tile/0/001/',
      '/tile/0/001',
      'tiles/0/001',
      'tile/0',
      'tile/0/1',
      'tile/0/0001',
      'tile/entries/x001',
      'tile/entries/001.p/256',
      'tile/0/x001/x234/067.p/89/extra',
      `tile/0/${'x001/'.repeat(40)}001`,
    ];
    for (const p of bad) expect(() => parseTilePath(p)).toThrow(invalid);
  });

  it('a short path with more than six index elements is LOG_TILE_PATH_INVALID before its index is computed', () => {
    for (const p of ['tile/0/x001/x002/x003/x004/x005/x006/007', 'tile/entries/x001/x002/x003/x004/x005/x006/007.p/5', 'tile/0/x000/x000/x000/x000/x000/x000/x000/001']) {
      expect(p.length).toBeLessThanOrEqual(128);
      expect(() => parseTilePath(p)).toThrow(expect.objectContaining({ code: 'LOG_TILE_PATH_INVALID', message: 'tile index has the wrong number of elements' }));
    }
  });

  it('round-trips random coordinates', () => {
    for (let i = 0; i < 2000; i++) {
      const level = i % 64;
      const index = Math.floor(((i * 0.6180339887498949) % 1) * 2 ** (i % 53)); // deterministic spread
      const width = 1 + (i % 256);
      expect(parseTilePath(tilePath(level, index, width))).toEqual({ kind: 'tile', level, index, width });
      expect(parseTilePath(entryBundlePath(index, width))).toEqual({ kind: 'entries', index, width });
    }
  });

  it('rejects out-of-range coordinates when formatting', () => {
    expect(() => tilePath(64, 0)).toThrow(invalid);
    expect(() => tilePath(0, -1)).toThrow(invalid);
    expect(() => tilePath(0, 0.5)).toThrow(invalid);
    expect(() => tilePath(0, 0, 0)).toThrow(invalid);
    expect(() => tilePath(0, 0, 257)).toThrow(invalid);
    expect(() => tilePathAt(0, 1, 256)).toThrow(invalid);
    expect(() => tileForNode(512, 0)).toThrow(invalid);
    expect(() => tileForNode(7, 2 ** 52)).toThrow(invalid);
  });
});

describe('tiles against a real tree of 70,000 leaves', () => {
  const SIZE = 70000;
  let tree: MerkleTree;
  beforeAll(async () => {
    tree = new MerkleTree(nodeSha256);
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < SIZE; i++) leaves.push(nodeSha256(Uint8Array.of(0, i & 0xff, (i >> 8) & 0xff, i >> 16)) as Uint8Array);
    await tree.appendAll(leaves);
  });

  /** A tile's bytes as a log serves them: its hashes concatenated. */
  const tileHashes = (level: number, index: number, width: number): Uint8Array[] => {
    const { merkleLevel, start, count } = tileNodes({ level, index, width });
    return Array.from({ length: count }, (_, i) => tree.node(merkleLevel, start + i));
  };

  it('a full level-1 tile holds the roots of the 256 full level-0 tiles', async () => {
    const level1 = tileHashes(1, 0, 256);
    for (const n of [0, 1, 137, 255]) {
      expect(toHex(level1[n]!)).toBe(toHex(await rootFromLeafHashes(tileHashes(0, n, 256), nodeSha256)));
    }
  });

  it('every Merkle node can be rebuilt from the tile hashes tileForNode names', async () => {
    for (const [level, index] of [[0, 69999], [3, 5], [7, 272], [8, 272], [11, 3], [15, 1], [16, 0]] as const) {
      const { tileLevel, tileIndex, offset, count } = tileForNode(level, index);
      const width = tileWidth(tileLevel, tileIndex, SIZE);
      expect(offset + count).toBeLessThanOrEqual(width);
      const hashes = tileHashes(tileLevel, tileIndex, width).slice(offset, offset + count);
      expect(toHex(await rootFromLeafHashes(hashes, nodeSha256))).toBe(toHex(tree.node(level, index)));
    }
  });

  it('the partial tiles of the tree are exactly the hashes that exist at its size', () => {
    for (const { level, index, width } of partialTiles(SIZE)) {
      expect(() => tree.node(8 * level, index * 256 + width - 1)).not.toThrow();
      expect(() => tree.node(8 * level, index * 256 + width)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    }
  });
});

describe('fuzz: parseTilePath gives LOG_TILE_PATH_INVALID or a path that formats back identically', () => {
  it('holds for arbitrary path-like strings', () => {
    const pathish = fc
      .array(fc.constantFrom('tile', 'entries', '/', 'x', '0', '1', '9', '00', '.p', '255', '256', '63', '64', '-'), { maxLength: 30 })
      .map((a) => a.join(''));
    fc.assert(
      fc.property(fc.oneof(pathish, fc.string()), (p) => {
        let parsed;
        try {
          parsed = parseTilePath(p);
        } catch (e) {
          expect(e).toEqual(invalid);
          return;
        }
        const again = parsed.kind === 'tile' ? tilePath(parsed.level, parsed.index, parsed.width) : entryBundlePath(parsed.index, parsed.width);
        expect(again).toBe(p);
      }),
      { numRuns: 5000 },
    );
  });
});
