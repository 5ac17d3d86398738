/**
 * RFC 9162 section 2.1 Merkle tree (SHA-256, leaf prefix 0x00, node prefix 0x01): hashing, proof
 * verification exactly as RFC 9162 sections 2.1.3.2 and 2.1.4.2, proof generation from stored
 * complete subtrees, and a compact in-memory tree.
 *
 * Nodes are addressed as in C2SP tlog-tiles and transparency-dev/merkle: node (level, index) is the
 * Merkle Tree Hash of the complete subtree D[index * 2^level : (index + 1) * 2^level]. A storage
 * layer only keeps complete subtrees; the at most one incomplete ("ephemeral") node of a proof is
 * recomputed from them.
 *
 * Sizes and indexes are JavaScript numbers (safe integers, below 2^53). All arithmetic on them is
 * done with division and remainder, never with 32-bit bit operators.
 *
 * Browser-safe: WebCrypto by default; callers (the gateway) may inject a synchronous SHA-256.
 */
import { bytesEqual, sha256 } from '../bytes';
import { TeegateError } from '../errors';

/** SHA-256 of a byte string, synchronous or not (WebCrypto by default). */
export type Sha256 = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** The hash of the complete subtree (level, index); may read from storage. */
export type GetNode = (level: number, index: number) => Uint8Array | Promise<Uint8Array>;

export const HASH_SIZE = 32;
/** Upper bound on proof elements accepted from the wire (2 * 53 levels is the true maximum). */
export const MAX_PROOF_ELEMENTS = 128;

const defaultHash: Sha256 = sha256;

/** RFC 9162 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
export async function leafHash(data: Uint8Array, hash: Sha256 = defaultHash): Promise<Uint8Array> {
  const buf = new Uint8Array(1 + data.length);
  buf[0] = 0x00;
  buf.set(data, 1);
  return hash(buf);
}

/** RFC 9162 2.1.1: SHA-256(0x01 || left || right). */
export async function nodeHash(left: Uint8Array, right: Uint8Array, hash: Sha256 = defaultHash): Promise<Uint8Array> {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return hash(buf);
}

/** RFC 9162 2.1.1: MTH({}) = SHA-256() (the hash of the empty string). */
export async function emptyRoot(hash: Sha256 = defaultHash): Promise<Uint8Array> {
  return hash(new Uint8Array(0));
}

/** MTH over already-hashed leaves (or over tile hashes, which are roots of complete subtrees). */
export async function rootFromLeafHashes(hashes: readonly Uint8Array[], hash: Sha256 = defaultHash): Promise<Uint8Array> {
  if (hashes.length === 0) return emptyRoot(hash);
  return mth(hashes, 0, hashes.length, hash);
}

async function mth(hashes: readonly Uint8Array[], lo: number, hi: number, hash: Sha256): Promise<Uint8Array> {
  if (hi - lo === 1) return hashes[lo]!;
  const k = largestPowerOfTwoBelow(hi - lo);
  return nodeHash(await mth(hashes, lo, lo + k, hash), await mth(hashes, lo + k, hi, hash), hash);
}

/** The largest power of two strictly smaller than n (n >= 2): the split point k of RFC 9162. */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

function log2Exact(k: number): number {
  let level = 0;
  while (k > 1) {
    k /= 2;
    level++;
  }
  return level;
}

function proofError(message: string): TeegateError {
  return new TeegateError('LOG_PROOF_INVALID', message);
}

// ---------------------------------------------------------------------------------------------
// Verification (all inputs are attacker-controlled: sizes, indexes, proof elements and roots).

function checkSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw proofError(`${what} is not a non-negative safe integer`);
}

function checkHashes(proof: readonly Uint8Array[], what: string): void {
  if (!Array.isArray(proof)) throw proofError(`${what} is not an array`);
  if (proof.length > MAX_PROOF_ELEMENTS) throw proofError(`${what} has more than ${MAX_PROOF_ELEMENTS} elements`);
  proof.forEach((p, i) => {
    if (!(p instanceof Uint8Array) || p.length !== HASH_SIZE) throw proofError(`${what}[${i}] is not a ${HASH_SIZE}-byte hash`);
  });
}

function checkHash(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw proofError(`${what} is not a ${HASH_SIZE}-byte hash`);
}

/**
 * RFC 9162 2.1.3.2 steps 1-4: the root an inclusion proof leads to. Throws LOG_PROOF_INVALID when
 * the proof is malformed or has the wrong number of elements for (index, treeSize).
 */
export async function rootFromInclusionProof(
  leaf: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  hash: Sha256 = defaultHash,
): Promise<Uint8Array> {
  checkSize(index, 'leaf index');
  checkSize(treeSize, 'tree size');
  checkHash(leaf, 'leaf hash');
  checkHashes(proof, 'inclusion proof');
  // 1. leaf_index must be below tree_size.
  if (index >= treeSize) throw proofError(`leaf index ${index} is not below tree size ${treeSize}`);
  // 2.-3.
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  // 4.
  for (const p of proof) {
    if (sn === 0) throw proofError('inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r, hash);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p, hash);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5. (first half) sn must have reached 0.
  if (sn !== 0) throw proofError('inclusion proof is too short');
  return r;
}

/** RFC 9162 2.1.3.2: throws LOG_PROOF_INVALID unless `proof` proves `leaf` at `index` under `root`. */
export async function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
  hash: Sha256 = defaultHash,
): Promise<void> {
  checkHash(root, 'root hash');
  const computed = await rootFromInclusionProof(leaf, index, treeSize, proof, hash);
  if (!bytesEqual(computed, root)) throw proofError('inclusion proof does not lead to the root hash');
}

/**
 * RFC 9162 2.1.4.2, with the trivial cases of transparency-dev/merkle: size1 = 0 (the empty tree is
 * a prefix of every tree; root1 must be the empty root) and size1 = size2 (roots equal) need an
 * empty proof. Malformed proofs throw LOG_PROOF_INVALID; a proof that does not reproduce both
 * roots, a shrinking tree or a fork at equal size throw LOG_INCONSISTENT.
 */
export async function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
  hash: Sha256 = defaultHash,
): Promise<void> {
  checkSize(size1, 'size1');
  checkSize(size2, 'size2');
  checkHash(root1, 'root1');
  checkHash(root2, 'root2');
  checkHashes(proof, 'consistency proof');
  if (size1 > size2) throw new TeegateError('LOG_INCONSISTENT', `tree shrank from ${size1} to ${size2}`);
  if (size1 === size2 || size1 === 0) {
    if (proof.length !== 0) throw proofError('consistency proof must be empty for these sizes');
    if (size1 === 0 && !bytesEqual(root1, await emptyRoot(hash))) {
      throw new TeegateError('LOG_INCONSISTENT', 'root of the empty tree is not SHA-256 of the empty string');
    }
    if (size1 === size2 && !bytesEqual(root1, root2)) {
      throw new TeegateError('LOG_INCONSISTENT', `two different roots for tree size ${size1}`);
    }
    return;
  }
  // 1. An empty proof fails.
  if (proof.length === 0) throw proofError('consistency proof is empty');
  // 2. If size1 is an exact power of 2, prepend root1 to the path.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  // 3.
  let fn = size1 - 1;
  let sn = size2 - 1;
  // 4.
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw proofError('consistency proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr, hash);
      sr = await nodeHash(c, sr, hash);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c, hash);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 7.
  if (sn !== 0) throw proofError('consistency proof is too short');
  if (!bytesEqual(fr, root1)) throw new TeegateError('LOG_INCONSISTENT', 'consistency proof does not lead to root1');
  if (!bytesEqual(sr, root2)) throw new TeegateError('LOG_INCONSISTENT', 'consistency proof does not lead to root2');
}

/** Wire form of a proof: the 32-byte hashes concatenated. */
export function encodeProof(proof: readonly Uint8Array[]): Uint8Array {
  checkHashes(proof, 'proof');
  const out = new Uint8Array(proof.length * HASH_SIZE);
  proof.forEach((p, i) => out.set(p, i * HASH_SIZE));
  return out;
}

/** Strict inverse of encodeProof: the length must be a multiple of 32 (no trailing garbage). */
export function decodeProof(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length % HASH_SIZE !== 0) throw proofError(`proof length ${bytes.length} is not a multiple of ${HASH_SIZE}`);
  if (bytes.length / HASH_SIZE > MAX_PROOF_ELEMENTS) throw proofError(`proof has more than ${MAX_PROOF_ELEMENTS} elements`);
  const out: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; off += HASH_SIZE) out.push(bytes.slice(off, off + HASH_SIZE));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generation from stored complete subtrees (inputs come from our own API callers: range errors are
// LOG_RANGE_INVALID, a "fix" for the caller).

function rangeError(message: string): TeegateError {
  return new TeegateError('LOG_RANGE_INVALID', message);
}

function checkRange(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw rangeError(`${what} is not a non-negative safe integer`);
}

/**
 * The hash of D[start:end] where start is a multiple of the smallest power of two >= end - start
 * (every subtree that appears in RFC 9162 proofs is of this form). Complete subtrees are read;
 * an incomplete one is folded from the complete subtrees covering it, right to left.
 */
type RangeHash = (start: number, end: number) => Promise<Uint8Array>;

function makeRangeHash(getNode: GetNode, hash: Sha256, cache?: Map<string, Uint8Array>): RangeHash {
  return async (start, end) => {
    const size = end - start;
    if (isPowerOfTwo(size)) return getNode(log2Exact(size), start / size);
    const key = `${start}:${end}`;
    const cached = cache?.get(key);
    if (cached) return cached;
    const parts: Uint8Array[] = [];
    let lo = start;
    while (lo < end) {
      let k = 1;
      while (k * 2 <= end - lo) k *= 2;
      parts.push(await getNode(log2Exact(k), lo / k));
      lo += k;
    }
    let h = parts[parts.length - 1]!;
    for (let i = parts.length - 2; i >= 0; i--) h = await nodeHash(parts[i]!, h, hash);
    if (cache) {
      if (cache.size >= 4096) cache.clear();
      cache.set(key, h);
    }
    return h;
  };
}

/** MTH(D[0:treeSize]) from stored complete subtrees. */
export async function treeRoot(treeSize: number, getNode: GetNode, hash: Sha256 = defaultHash): Promise<Uint8Array> {
  checkRange(treeSize, 'tree size');
  if (treeSize === 0) return emptyRoot(hash);
  return makeRangeHash(getNode, hash)(0, treeSize);
}

/** RFC 9162 2.1.3.1 PATH(index, D[0:treeSize]), from stored complete subtrees. */
export async function inclusionProof(index: number, treeSize: number, getNode: GetNode, hash: Sha256 = defaultHash): Promise<Uint8Array[]> {
  return inclusionPath(index, treeSize, makeRangeHash(getNode, hash));
}

async function inclusionPath(index: number, treeSize: number, range: RangeHash): Promise<Uint8Array[]> {
  checkRange(index, 'leaf index');
  checkRange(treeSize, 'tree size');
  if (index >= treeSize) throw rangeError(`leaf index ${index} is not below tree size ${treeSize}`);
  // Walk down from the root; the sibling met at each split is appended after the deeper path.
  const siblings: Uint8Array[] = [];
  let lo = 0;
  let hi = treeSize;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (index < lo + k) {
      siblings.push(await range(lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(await range(lo, lo + k));
      lo += k;
    }
  }
  return siblings.reverse().map((h) => h.slice());
}

/** RFC 9162 2.1.4.1 PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true). */
export async function consistencyProof(size1: number, size2: number, getNode: GetNode, hash: Sha256 = defaultHash): Promise<Uint8Array[]> {
  return consistencyPath(size1, size2, makeRangeHash(getNode, hash));
}

async function consistencyPath(size1: number, size2: number, range: RangeHash): Promise<Uint8Array[]> {
  checkRange(size1, 'size1');
  checkRange(size2, 'size2');
  if (size1 > size2) throw rangeError(`size1 ${size1} is above size2 ${size2}`);
  if (size1 === 0 || size1 === size2) return [];
  const siblings: Uint8Array[] = [];
  let lo = 0;
  let hi = size2;
  let complete = true; // the b flag of SUBPROOF: still on the path of the whole old tree
  for (;;) {
    if (size1 === hi) {
      if (!complete) siblings.push(await range(lo, hi));
      break;
    }
    const k = largestPowerOfTwoBelow(hi - lo);
    if (size1 <= lo + k) {
      siblings.push(await range(lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(await range(lo, lo + k));
      lo += k;
      complete = false;
    }
  }
  return siblings.reverse().map((h) => h.slice());
}

// ---------------------------------------------------------------------------------------------
// In-memory tree: every complete subtree kept, one contiguous buffer per level (32 bytes a node).

export class MerkleTree {
  private readonly levels: Uint8Array[] = [];
  private readonly counts: number[] = [];
  private committed = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly rangeCache = new Map<string, Uint8Array>();
  private readonly range: RangeHash;
  readonly getNode: GetNode = (level, index) => this.node(level, index);

  constructor(private readonly hash: Sha256 = defaultHash) {
    this.range = makeRangeHash(this.getNode, hash, this.rangeCache);
  }

  /** Number of leaves whose subtrees are fully integrated. */
  get size(): number {
    return this.committed;
  }

  /** Appends one leaf hash; resolves to its index. Appends are serialised. */
  append(leaf: Uint8Array): Promise<number> {
    return this.appendAll([leaf]).then((size) => size - 1);
  }

  /** Appends leaf hashes in order; resolves to the new tree size. */
  appendAll(leaves: readonly Uint8Array[]): Promise<number> {
    for (const leaf of leaves) {
      if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) {
        return Promise.reject(new TeegateError('INPUT_ENCODING_INVALID', `a leaf hash must be ${HASH_SIZE} bytes`));
      }
    }
    const copies = leaves.map((l) => l.slice());
    const run = this.queue.then(async () => {
      for (const leaf of copies) await this.appendOne(leaf);
      return this.committed;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendOne(leaf: Uint8Array): Promise<void> {
    // Compute every new node first, then write them all: readers never see a half-built size.
    const created = [leaf];
    let h = leaf;
    let i = this.committed;
    let level = 0;
    while (i % 2 === 1) {
      h = await nodeHash(this.read(level, i - 1), h, this.hash);
      i = (i - 1) / 2;
      level++;
      created.push(h);
    }
    created.forEach((node, l) => this.write(l, node));
    this.committed++;
  }

  private write(level: number, node: Uint8Array): void {
    const count = this.counts[level] ?? 0;
    let buf = this.levels[level];
    if (!buf || (count + 1) * HASH_SIZE > buf.length) {
      const grown = new Uint8Array(Math.max(64, count * 2) * HASH_SIZE);
      if (buf) grown.set(buf);
      this.levels[level] = grown;
      buf = grown;
    }
    buf.set(node, count * HASH_SIZE);
    this.counts[level] = count + 1;
  }

  private read(level: number, index: number): Uint8Array {
    return this.levels[level]!.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** The hash of complete subtree (level, index) at the current size (a copy). */
  node(level: number, index: number): Uint8Array {
    checkRange(level, 'level');
    checkRange(index, 'index');
    if ((index + 1) * 2 ** level > this.committed) {
      throw rangeError(`node (${level}, ${index}) is not a complete subtree of a tree of size ${this.committed}`);
    }
    return this.read(level, index).slice();
  }

  /** `count` consecutive complete subtrees (level, index ..) at the current size, concatenated (a copy). */
  nodes(level: number, index: number, count: number): Uint8Array {
    checkRange(level, 'level');
    checkRange(index, 'index');
    checkRange(count, 'count');
    if (count === 0) return new Uint8Array(0);
    if ((index + count) * 2 ** level > this.committed) {
      throw rangeError(`nodes (${level}, ${index}..${index + count - 1}) are not complete subtrees of a tree of size ${this.committed}`);
    }
    return this.levels[level]!.slice(index * HASH_SIZE, (index + count) * HASH_SIZE);
  }

  private checkSize(size: number): void {
    checkRange(size, 'tree size');
    if (size > this.committed) throw rangeError(`tree size ${size} is beyond the current size ${this.committed}`);
  }

  /** MTH(D[0:size]). */
  async root(size: number = this.committed): Promise<Uint8Array> {
    this.checkSize(size);
    if (size === 0) return emptyRoot(this.hash);
    return (await this.range(0, size)).slice();
  }

  async inclusionProof(index: number, size: number = this.committed): Promise<Uint8Array[]> {
    this.checkSize(size);
    return inclusionPath(index, size, this.range);
  }

  async consistencyProof(size1: number, size2: number = this.committed): Promise<Uint8Array[]> {
    this.checkSize(size2);
    return consistencyPath(size1, size2, this.range);
  }
}
