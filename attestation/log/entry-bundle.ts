/**
 * C2SP tlog-tiles entry bundles (https://c2sp.org/tlog-tiles, "Log Entries"): the entries of one
 * bundle, in order, each as a big-endian uint16 length followed by that many bytes. A full bundle
 * holds 256 entries; a partial one (path suffix .p/<W>) the first W.
 *
 * Parsing treats the bundle as attacker-controlled: a truncated length or entry, trailing bytes or
 * a count other than the expected width throw LOG_ENTRY_MALFORMED.
 */
import { TeegateError } from '../errors';
import { MAX_ENTRY_BYTES } from './entry';
import { TILE_WIDTH } from './tiles';

function malformed(message: string): TeegateError {
  return new TeegateError('LOG_ENTRY_MALFORMED', message);
}

/** Concatenates uint16-length-prefixed entries (at most 256 of them). */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length > TILE_WIDTH) throw malformed(`an entry bundle holds at most ${TILE_WIDTH} entries`);
  let total = 0;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_BYTES) throw new TeegateError('LOG_ENTRY_TOO_LARGE', `entry of ${e.length} bytes does not fit a uint16 length`);
    total += 2 + e.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const e of entries) {
    out[off] = e.length >>> 8;
    out[off + 1] = e.length & 0xff;
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/** Splits a bundle into its entries; with `expectedCount`, the bundle must hold exactly that many. */
export function parseEntryBundle(bundle: Uint8Array, expectedCount?: number): Uint8Array[] {
  if (!(bundle instanceof Uint8Array)) throw malformed('entry bundle is not bytes');
  const entries: Uint8Array[] = [];
  let off = 0;
  while (off < bundle.length) {
    if (entries.length === TILE_WIDTH) throw malformed(`entry bundle holds more than ${TILE_WIDTH} entries`);
    if (off + 2 > bundle.length) throw malformed('entry bundle ends inside a length prefix');
    const len = (bundle[off]! << 8) | bundle[off + 1]!;
    if (off + 2 + len > bundle.length) throw malformed('entry bundle ends inside an entry');
    entries.push(bundle.slice(off + 2, off + 2 + len));
    off += 2 + len;
  }
  if (expectedCount !== undefined && entries.length !== expectedCount) {
    throw malformed(`entry bundle holds ${entries.length} entries, expected ${expectedCount}`);
  }
  return entries;
}
