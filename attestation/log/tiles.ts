/**
 * All C2SP tlog-tiles (https://c2sp.org/tlog-tiles) path math, in one place (as tessera's
 * api/layout): the gateway serves with it, the auditor fetches with it.
 *
 *   tile/<L>/<N>[.p/<W>]        Merkle hashes: L in 0..63, N in 3-digit elements (x001/x234/067)
 *   tile/entries/<N>[.p/<W>]    entry bundles (big-endian uint16 length-prefixed entries)
 *
 * Tiles have height 8: a full tile holds 256 hashes (8,192 bytes). Hash i of tile (L, N) is the
 * Merkle node at level 8L, index N * 256 + i; that is MTH(D[(N*256 + i) * 256^L : (N*256 + i + 1) * 256^L]).
 * A partial tile (width W, 1..255) holds the first W hashes. Indexes are JavaScript safe integers.
 */
import { TeegateError } from '../errors';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
export const MAX_TILE_LEVEL = 63;

/** A Merkle hash tile; `width` is 256 for a full tile, 1..255 for a partial one. */
export interface TileId {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** An entry bundle; `width` is 256 for a full bundle, 1..255 for a partial one. */
export interface EntryBundleId {
  readonly index: number;
  readonly width: number;
}

export type ParsedTilePath = ({ readonly kind: 'tile' } & TileId) | ({ readonly kind: 'entries' } & EntryBundleId);

function invalid(message: string): TeegateError {
  return new TeegateError('LOG_TILE_PATH_INVALID', message);
}

function checkIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) throw invalid(`${what} is not a non-negative safe integer`);
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_TILE_LEVEL) throw invalid(`tile level ${level} is not in 0..${MAX_TILE_LEVEL}`);
}

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw invalid(`tile width ${width} is not in 1..${TILE_WIDTH}`);
}

/** `<N>`: zero-padded 3-digit elements, all but the last prefixed with `x` (1234067 -> x001/x234/067). */
export function formatTileIndex(index: number): string {
  checkIndex(index, 'tile index');
  let n = index;
  let out = String(n % 1000).padStart(3, '0');
  n = Math.floor(n / 1000);
  while (n > 0) {
    out = `x${String(n % 1000).padStart(3, '0')}/${out}`;
    n = Math.floor(n / 1000);
  }
  return out;
}

function suffix(width: number): string {
  checkWidth(width);
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]`. */
export function tilePath(level: number, index: number, width: number = TILE_WIDTH): string {
  checkLevel(level);
  return `tile/${level}/${formatTileIndex(index)}${suffix(width)}`;
}

/** `tile/entries/<N>[.p/<W>]`. */
export function entryBundlePath(index: number, width: number = TILE_WIDTH): string {
  return `tile/entries/${formatTileIndex(index)}${suffix(width)}`;
}

/**
 * Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` strictly: canonical elements only
 * (no leading `x000/`, no leading zeros in L or W), nothing before `tile/` or after the width.
 */
export function parseTilePath(path: string): ParsedTilePath {
  if (typeof path !== 'string' || path.length > 128) throw invalid('tile path is not a short string');
  const parts = path.split('/');
  if (parts.length < 3 || parts[0] !== 'tile') throw invalid('tile path does not start with tile/');
  const head = parts[1]!;
  let rest = parts.slice(2);
  let width = TILE_WIDTH;
  const last = rest.length - 1;
  if (last >= 1 && rest[last - 1]!.endsWith('.p')) {
    const w = rest[last]!;
    if (!/^[1-9][0-9]{0,2}$/.test(w) || Number(w) >= TILE_WIDTH) throw invalid('partial tile width is not in 1..255');
    width = Number(w);
    rest = rest.slice(0, last);
    rest[last - 1] = rest[last - 1]!.slice(0, -2);
  }
  const index = parseIndexElements(rest);
  if (head === 'entries') return { kind: 'entries', index, width };
  if (!/^(?:0|[1-9][0-9]?)$/.test(head) || Number(head) > MAX_TILE_LEVEL) throw invalid('tile level is not in 0..63');
  return { kind: 'tile', level: Number(head), index, width };
}

function parseIndexElements(elements: readonly string[]): number {
  // 6 elements reach 10^18 > 2^53: anything longer is out of range for sure.
  if (elements.length === 0 || elements.length > 6) throw invalid('tile index has the wrong number of elements');
  let index = 0;
  elements.forEach((el, i) => {
    const isLast = i === elements.length - 1;
    const m = (isLast ? /^([0-9]{3})$/ : /^x([0-9]{3})$/).exec(el);
    if (!m) throw invalid(`tile index element ${JSON.stringify(el)} is malformed`);
    if (i === 0 && !isLast && m[1] === '000') throw invalid('tile index has a leading x000 element');
    index = index * 1000 + Number(m[1]);
  });
  if (!Number.isSafeInteger(index)) throw invalid('tile index exceeds 2^53 - 1');
  return index;
}

/** Hashes (0..256) that tile (level, index) holds in a tree of `treeSize` leaves. */
export function tileWidth(level: number, index: number, treeSize: number): number {
  checkLevel(level);
  checkIndex(index, 'tile index');
  checkIndex(treeSize, 'tree size');
  const hashesAtLevel = Math.floor(treeSize / TILE_WIDTH ** level);
  return Math.max(0, Math.min(TILE_WIDTH, hashesAtLevel - index * TILE_WIDTH));
}

/** The path of tile (level, index) as it exists at `treeSize` (partial suffix when not full). */
export function tilePathAt(level: number, index: number, treeSize: number): string {
  const width = tileWidth(level, index, treeSize);
  if (width === 0) throw invalid(`tile ${level}/${index} is empty at tree size ${treeSize}`);
  return tilePath(level, index, width);
}

/** The path of the entry bundle holding entry `entryIndex` at `treeSize`. */
export function entryBundlePathFor(entryIndex: number, treeSize: number): string {
  checkIndex(entryIndex, 'entry index');
  checkIndex(treeSize, 'tree size');
  if (entryIndex >= treeSize) throw invalid(`entry ${entryIndex} is not below tree size ${treeSize}`);
  const bundle = Math.floor(entryIndex / TILE_WIDTH);
  return entryBundlePath(bundle, tileWidth(0, bundle, treeSize));
}

/** The Merkle nodes a tile holds: level 8L, indexes start .. start + width - 1. */
export function tileNodes(tile: TileId): { merkleLevel: number; start: number; count: number } {
  checkLevel(tile.level);
  checkIndex(tile.index, 'tile index');
  checkWidth(tile.width);
  return { merkleLevel: TILE_HEIGHT * tile.level, start: tile.index * TILE_WIDTH, count: tile.width };
}

/**
 * Where Merkle node (level, index) comes from: `count` consecutive hashes of tile (tileLevel,
 * tileIndex) starting at `offset`, whose MTH (rootFromLeafHashes) is the node. count is 1 when
 * level is a multiple of 8. The tile must be at least offset + count wide.
 */
export function tileForNode(level: number, index: number): { tileLevel: number; tileIndex: number; offset: number; count: number } {
  if (!Number.isInteger(level) || level < 0 || level >= TILE_HEIGHT * (MAX_TILE_LEVEL + 1)) throw invalid(`node level ${level} is out of range`);
  checkIndex(index, 'node index');
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const count = 2 ** (level % TILE_HEIGHT);
  const first = index * count;
  if (!Number.isSafeInteger(first)) throw invalid('node index out of range');
  return { tileLevel, tileIndex: Math.floor(first / TILE_WIDTH), offset: first % TILE_WIDTH, count };
}

/** The partial tiles of a tree: at most one per level, widths floor(s / 256^L) mod 256. */
export function partialTiles(treeSize: number): TileId[] {
  checkIndex(treeSize, 'tree size');
  const out: TileId[] = [];
  for (let level = 0; level <= MAX_TILE_LEVEL; level++) {
    const hashes = Math.floor(treeSize / TILE_WIDTH ** level);
    if (hashes === 0) break;
    const width = hashes % TILE_WIDTH;
    if (width > 0) out.push({ level, index: Math.floor(hashes / TILE_WIDTH), width });
  }
  return out;
}
