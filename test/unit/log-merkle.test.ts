import { createHash } from 'node:crypto';
import { concatBytes, fromHex, toHex, utf8 } from '../../attestation/bytes';
import { isTeegateError, type ErrorCode } from '../../attestation/errors';
import {
  MerkleTree,
  consistencyProof,
  decodeProof,
  emptyRoot,
  encodeProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type Sha256,
} from '../../attestation/log/merkle';

// Synchronous SHA-256 (the gateway injects this); the default (WebCrypto) is exercised too.
const nodeSha256: Sha256 = (data) => new Uint8Array(createHash('sha256').update(data).digest());
const sha = (data: Uint8Array): Uint8Array => nodeSha256(data) as Uint8Array;

// ---- Naive RFC 9162 section 2.1 definitions, straight from the text, over raw leaf data. ----
function naiveMth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha(new Uint8Array(0));
  if (d.length === 1) return sha(Uint8Array.of(0, ...d[0]!));
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return sha(Uint8Array.of(1, ...naiveMth(d.slice(0, k)), ...naiveMth(d.slice(k))));
}

function naivePath(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m < k ? [...naivePath(m, d.slice(0, k)), naiveMth(d.slice(k))] : [...naivePath(m - k, d.slice(k)), naiveMth(d.slice(0, k))];
}

function naiveSubproof(m: number, d: readonly Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [naiveMth(d)];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m <= k
    ? [...naiveSubproof(m, d.slice(0, k), b), naiveMth(d.slice(k))]
    : [...naiveSubproof(m - k, d.slice(k), false), naiveMth(d.slice(0, k))];
}

const data = (i: number): Uint8Array => utf8(`teegate leaf ${i}`);
const hex = (list: readonly Uint8Array[]): string[] => list.map(toHex);

/** The message of the LOG_PROOF_INVALID `p` rejects with. */
async function refusalMessage(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isTeegateError(err) || err.code !== 'LOG_PROOF_INVALID') throw new Error(`expected LOG_PROOF_INVALID, got ${String(err)}`);
  return err.message;
}

async function expectCode(p: Promise<unknown>, codes: ErrorCode | ErrorCode[]): Promise<void> {
  const allowed = Array.isArray(codes) ? codes : [codes];
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isTeegateError(err)) throw new Error(`expected a TeegateError (${allowed.join('|')}), got ${String(err)}`);
  expect(allowed).toContain(err.code);
}

/** A tree of n leaves; without `hash`, the library default (WebCrypto). */
async function buildTree(n: number, hash?: Sha256): Promise<MerkleTree> {
  const tree = new MerkleTree(hash);
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < n; i++) leaves.push(await leafHash(data(i), hash));
  await tree.appendAll(leaves);
  return tree;
}

describe('RFC 6962 hasher known answers', () => {
  // transparency-dev/merkle rfc6962/rfc6962_test.go (TestRFC6962Hasher).
  it('empty root, empty leaf, leaf and node hashes (WebCrypto)', async () => {
    expect(toHex(await emptyRoot())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(await leafHash(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(toHex(await leafHash(utf8('L123456')))).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
    expect(toHex(await nodeHash(utf8('N123'), utf8('N456')))).toBe('aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb');
  });
});

describe('the 8-leaf reference tree of transparency-dev/merkle proof/verify_test.go', () => {
  // Leaves, roots at sizes 1..8 and proofs copied from transparency-dev/merkle
  // proof/verify_test.go (the RFC 6962 reference tree, originally from certificate-transparency).
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  // {leaf (1-based), size, proof}
  const inclusion: [number, number, string[]][] = [
    [1, 1, []],
    [1, 8, [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]],
    [6, 8, [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]],
    [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
    [2, 5, [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ]],
  ];
  const consistency: [number, number, string[]][] = [
    [1, 1, []],
    [1, 8, [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]],
    [6, 8, [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]],
    [2, 5, [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ]],
    [6, 7, [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]],
  ];
  let tree: MerkleTree;
  beforeAll(async () => {
    tree = new MerkleTree(); // WebCrypto
    for (const l of leaves) await tree.append(await leafHash(l));
  });

  it('has the published root at every size', async () => {
    for (let n = 1; n <= 8; n++) expect(toHex(await tree.root(n))).toBe(roots[n - 1]);
    expect(toHex(await rootFromLeafHashes(await Promise.all(leaves.map((l) => leafHash(l)))))).toBe(roots[7]);
  });

  it('generates and verifies the published inclusion proofs', async () => {
    for (const [leaf, size, proof] of inclusion) {
      expect(hex(await tree.inclusionProof(leaf - 1, size))).toEqual(proof);
      const root = fromHex(roots[size - 1]!);
      await verifyInclusion(await leafHash(leaves[leaf - 1]!), leaf - 1, size, proof.map(fromHex), root);
    }
  });

  it('generates and verifies the published consistency proofs', async () => {
    for (const [size1, size2, proof] of consistency) {
      expect(hex(await tree.consistencyProof(size1, size2))).toEqual(proof);
      await verifyConsistency(size1, size2, proof.map(fromHex), fromHex(roots[size1 - 1]!), fromHex(roots[size2 - 1]!));
    }
  });
});

describe('roots, proofs and verification against the naive RFC 9162 definitions', () => {
  const N = 64;
  const raw = Array.from({ length: N }, (_, i) => data(i));
  let tree: MerkleTree;
  beforeAll(async () => {
    tree = await buildTree(N, nodeSha256);
  });

  it('root of every size 0..64 equals the naive MTH (tree, rootFromLeafHashes, treeRoot, WebCrypto and sync)', async () => {
    const webTree = await buildTree(N); // default hash: WebCrypto
    const leafHashes = raw.map((d) => sha(Uint8Array.of(0, ...d)));
    for (let n = 0; n <= N; n++) {
      const want = toHex(naiveMth(raw.slice(0, n)));
      expect(toHex(await tree.root(n))).toBe(want);
      expect(toHex(await webTree.root(n))).toBe(want);
      expect(toHex(await rootFromLeafHashes(leafHashes.slice(0, n), nodeSha256))).toBe(want);
      expect(toHex(await treeRoot(n, tree.getNode, nodeSha256))).toBe(want);
    }
  });

  it('every inclusion proof for n <= 40 equals the naive PATH and verifies (WebCrypto)', async () => {
    let count = 0;
    for (let n = 1; n <= 40; n++) {
      const root = await tree.root(n);
      for (let m = 0; m < n; m++) {
        const proof = await tree.inclusionProof(m, n);
        expect(hex(proof)).toEqual(hex(naivePath(m, raw.slice(0, n))));
        await verifyInclusion(tree.node(0, m), m, n, proof, root);
        count++;
      }
    }
    expect(count).toBe(820);
  });

  it('every consistency proof for 0 <= m <= n <= 40 equals the naive PROOF and verifies (WebCrypto)', async () => {
    let count = 0;
    for (let n = 0; n <= 40; n++) {
      const root2 = await tree.root(n);
      for (let m = 0; m <= n; m++) {
        const proof = await tree.consistencyProof(m, n);
        const want = m === 0 || m === n ? [] : naiveSubproof(m, raw.slice(0, n), true);
        expect(hex(proof)).toEqual(hex(want));
        await verifyConsistency(m, n, proof, await tree.root(m), root2);
        count++;
      }
    }
    expect(count).toBe(861);
  });

  it('proof generation from an asynchronous storage callback matches the in-memory tree', async () => {
    const getNode = async (level: number, index: number): Promise<Uint8Array> => tree.node(level, index);
    for (const [m, n] of [[0, 1], [5, 13], [12, 13], [31, 64], [63, 64], [17, 33]] as const) {
      expect(hex(await inclusionProof(m, n, getNode, nodeSha256))).toEqual(hex(await tree.inclusionProof(m, n)));
      expect(hex(await consistencyProof(m, n, getNode, nodeSha256))).toEqual(hex(await tree.consistencyProof(m, n)));
    }
  });
});

describe('broken proofs fail (transparency-dev corruptInclusionProof / corruptConsistencyProof)', () => {
  const someHash = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');
  let tree: MerkleTree;
  let emptyHash: Uint8Array;
  beforeAll(async () => {
    tree = await buildTree(40, nodeSha256);
    emptyHash = await emptyRoot(nodeSha256);
  });
  const flip = (proof: Uint8Array[], i: number, mask: number): Uint8Array[] =>
    proof.map((p, j) => (j === i ? Uint8Array.from(p, (b, k) => (k === 0 ? b ^ mask : b)) : p));

  it('inclusion: every probe fails with LOG_PROOF_INVALID', async () => {
    let probes = 0;
    // Thunks: a probe runs only when awaited, so one that wrongly resolves fails its expectation
    // instead of leaving the others as unhandled rejections that abort the run.
    const v = (leaf: Uint8Array, m: number, n: number, proof: Uint8Array[], root: Uint8Array) => () => verifyInclusion(leaf, m, n, proof, root, nodeSha256);
    for (let n = 1; n <= 40; n++) {
      const root = await tree.root(n);
      for (let m = 0; m < n; m++) {
        const leaf = tree.node(0, m);
        const proof = await tree.inclusionProof(m, n);
        const bad: (() => Promise<void>)[] = [
          v(leaf, m - 1, n, proof, root),
          v(leaf, m + 1, n, proof, root),
          v(leaf, m, n * 2, proof, root),
          v(leaf, m, Math.floor(n / 2), proof, root),
          v(utf8('WrongLeaf'), m, n, proof, root),
          v(someHash, m, n, proof, root),
          v(leaf, m, n, proof, emptyHash),
          v(leaf, m, n, proof, someHash),
          v(leaf, m, n, [...proof, new Uint8Array(0)], root), // trailing garbage
          v(leaf, m, n, [...proof, root], root), // trailing root
          v(leaf, m, n, [new Uint8Array(0), ...proof], root), // preceding garbage
          v(leaf, m, n, [root, ...proof], root), // preceding root
        ];
        if ((m ^ 2) < n && (m ^ 2) !== m) bad.push(v(leaf, m ^ 2, n, proof, root));
        proof.forEach((_, i) => bad.push(v(leaf, m, n, flip(proof, i, 8), root))); // bit 3 of each element
        if (proof.length > 0) bad.push(v(leaf, m, n, proof.slice(0, -1), root)); // removed component
        if (proof.length > 1) bad.push(v(leaf, m, n, [proof[0]!, someHash, ...proof.slice(1)], root)); // inserted
        for (const p of bad) {
          await expectCode(p(), 'LOG_PROOF_INVALID');
          probes++;
        }
      }
    }
    expect(probes).toBeGreaterThan(15000);
  });

  it('consistency: every probe fails with LOG_PROOF_INVALID or LOG_INCONSISTENT, bit flips and swapped roots with LOG_INCONSISTENT', async () => {
    let probes = 0;
    const v = (m: number, n: number, proof: Uint8Array[], r1: Uint8Array, r2: Uint8Array) => () => verifyConsistency(m, n, proof, r1, r2, nodeSha256);
    const either: ErrorCode[] = ['LOG_PROOF_INVALID', 'LOG_INCONSISTENT'];
    for (let n = 2; n <= 40; n++) {
      const root2 = await tree.root(n);
      for (let m = 1; m < n; m++) {
        const root1 = await tree.root(m);
        const proof = await tree.consistencyProof(m, n);
        const bad: [() => Promise<void>, ErrorCode | ErrorCode[]][] = [
          [v(m - 1, n, proof, root1, root2), either],
          [v(m + 1, n, proof, root1, root2), either],
          [v(m, n * 2, proof, root1, root2), either],
          [v(m, Math.floor(n / 2), proof, root1, root2), either],
          [v(m, n, proof, utf8('WrongRoot'), root2), 'LOG_PROOF_INVALID'],
          [v(m, n, proof, root1, utf8('WrongRoot')), 'LOG_PROOF_INVALID'],
          [v(m, n, proof, someHash, root2), 'LOG_INCONSISTENT'],
          [v(m, n, proof, root1, someHash), 'LOG_INCONSISTENT'],
          [v(m, n, proof, root2, root1), 'LOG_INCONSISTENT'], // swapped roots
          [v(m, n, [], root1, root2), 'LOG_PROOF_INVALID'], // empty proof
          [v(m, n, [...proof, new Uint8Array(0)], root1, root2), 'LOG_PROOF_INVALID'], // trailing garbage
          [v(m, n, [...proof, root1], root1, root2), either],
          [v(m, n, [...proof, root2], root1, root2), either],
          [v(m, n, [new Uint8Array(0), ...proof], root1, root2), 'LOG_PROOF_INVALID'], // preceding garbage
          [v(m, n, [root1, ...proof], root1, root2), either],
          [v(m, n, [root2, ...proof], root1, root2), either],
          [v(m, n, [proof[0]!, ...proof], root1, root2), either],
          [v(m, n, proof.slice(0, -1), root1, root2), either], // truncated proof
        ];
        if ((m ^ 2) < n && (m ^ 2) !== m) bad.push([v(m ^ 2, n, proof, root1, root2), either]);
        proof.forEach((_, i) => bad.push([v(m, n, flip(proof, i, 16), root1, root2), 'LOG_INCONSISTENT'])); // bit 4
        for (const [p, code] of bad) {
          await expectCode(p(), code);
          probes++;
        }
      }
    }
    expect(probes).toBeGreaterThan(15000);
  });

  it('consistency edge cases of transparency-dev TestVerifyConsistency', async () => {
    const r1 = someHash;
    const r2 = fromHex('bbacaba000000000000000000000000000000000000000000060061e00123456');
    // Always consistent.
    await verifyConsistency(0, 0, [], emptyHash, emptyHash, nodeSha256);
    await verifyConsistency(0, 1, [], emptyHash, r2, nodeSha256);
    await verifyConsistency(1, 1, [], r2, r2, nodeSha256);
    // Equal sizes, different roots: a fork.
    await expectCode(verifyConsistency(1, 1, [], r1, r2, nodeSha256), 'LOG_INCONSISTENT');
    await expectCode(verifyConsistency(0, 0, [], emptyHash, r2, nodeSha256), 'LOG_INCONSISTENT');
    // The empty tree has exactly one root.
    await expectCode(verifyConsistency(0, 5, [], r1, r2, nodeSha256), 'LOG_INCONSISTENT');
    // Time travel to the past.
    await expectCode(verifyConsistency(1, 0, [], r1, r2, nodeSha256), 'LOG_INCONSISTENT');
    await expectCode(verifyConsistency(2, 1, [], r1, r2, nodeSha256), 'LOG_INCONSISTENT');
    // Empty proof between different sizes.
    await expectCode(verifyConsistency(1, 2, [], r1, r2, nodeSha256), 'LOG_PROOF_INVALID');
    // Roots match but the proof is not empty.
    for (const [a, b] of [[0, 0], [0, 1], [1, 1]] as const) {
      await expectCode(verifyConsistency(a, b, [emptyHash], emptyHash, emptyHash, nodeSha256), 'LOG_PROOF_INVALID');
    }
    // Sizes that are not non-negative safe integers.
    for (const [a, b] of [[-1, 3], [1, 2 ** 53], [0.5, 3], [Number.NaN, 3]] as const) {
      await expectCode(verifyConsistency(a, b, [r1], r1, r2, nodeSha256), 'LOG_PROOF_INVALID');
    }
    // An over-long proof is refused before any hashing.
    await expectCode(verifyConsistency(3, 7, Array.from({ length: 129 }, () => r1), r1, r2, nodeSha256), 'LOG_PROOF_INVALID');
  });

  it('inclusion edge cases of transparency-dev TestVerifyInclusion(SingleEntry)', async () => {
    const h = await leafHash(utf8('data'), nodeSha256);
    await verifyInclusion(h, 0, 1, [], h, nodeSha256);
    await expectCode(verifyInclusion(h, 0, 1, [], new Uint8Array(0), nodeSha256), 'LOG_PROOF_INVALID');
    await expectCode(verifyInclusion(new Uint8Array(0), 0, 1, [], h, nodeSha256), 'LOG_PROOF_INVALID');
    for (const [index, size] of [[0, 0], [1, 0], [2, 1], [-1, 1], [0, 1.5], [2 ** 53, 2 ** 53 + 2]] as const) {
      await expectCode(verifyInclusion(someHash, index, size, [], emptyHash, nodeSha256), 'LOG_PROOF_INVALID');
      await expectCode(rootFromInclusionProof(someHash, index, size, [], nodeSha256), 'LOG_PROOF_INVALID');
    }
    await expectCode(verifyInclusion(h, 0, 1, Array.from({ length: 129 }, () => h), h, nodeSha256), 'LOG_PROOF_INVALID');
  });

  it('a proof longer than its (index, size) allows is refused by name, not hashed on: a log that signed an understated size cannot prove a leaf at the wrong index', async () => {
    const tree = await buildTree(4, nodeSha256);
    const [l2, l3] = [tree.node(0, 2), tree.node(0, 3)];
    expect(await refusalMessage(rootFromInclusionProof(l2, 0, 1, [l3], nodeSha256))).toBe('inclusion proof is too long');
    // Leaf 2 "at index 0 of a tree of 2", with two extra elements hashed as left siblings, would
    // give the root of 4: refused before.
    expect(await refusalMessage(verifyInclusion(l2, 0, 2, [l3, await tree.root(2)], await tree.root(4), nodeSha256))).toBe('inclusion proof is too long');
    expect(await refusalMessage(verifyInclusion(l2, 0, 1, Array.from({ length: 129 }, () => l2), l2, nodeSha256))).toMatch(/more than 128 elements/);
    expect(await refusalMessage(rootFromInclusionProof(new Uint8Array(31), 0, 1, [], nodeSha256))).toBe('leaf hash is not a 32-byte hash');
  });
});

describe('proof wire encoding', () => {
  it('round-trips and rejects trailing garbage', async () => {
    const tree = await buildTree(23, nodeSha256);
    const proof = await tree.inclusionProof(7, 23);
    const wire = encodeProof(proof);
    expect(wire.length).toBe(proof.length * 32);
    expect(hex(decodeProof(wire))).toEqual(hex(proof));
    await verifyInclusion(tree.node(0, 7), 7, 23, decodeProof(wire), await tree.root(23), nodeSha256);
    for (const extra of [1, 31, 33]) {
      const garbage = new Uint8Array(wire.length + extra);
      garbage.set(wire);
      expect(() => decodeProof(garbage)).toThrow(expect.objectContaining({ code: 'LOG_PROOF_INVALID' }));
    }
    expect(() => decodeProof(new Uint8Array(129 * 32))).toThrow(expect.objectContaining({ code: 'LOG_PROOF_INVALID' }));
    expect(() => encodeProof([new Uint8Array(31)])).toThrow(expect.objectContaining({ code: 'LOG_PROOF_INVALID' }));
    expect(decodeProof(new Uint8Array(0))).toEqual([]);
  });
});

describe('MerkleTree', () => {
  it('serialises concurrent appends and returns their indexes', async () => {
    const tree = new MerkleTree(nodeSha256);
    const hashes = await Promise.all(Array.from({ length: 100 }, (_, i) => leafHash(data(i), nodeSha256)));
    const indexes = await Promise.all(hashes.map((h) => tree.append(h)));
    expect(indexes).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(tree.size).toBe(100);
    expect(toHex(await tree.root())).toBe(toHex(naiveMth(Array.from({ length: 100 }, (_, i) => data(i)))));
  });

  it('keeps its nodes private (callers get copies)', async () => {
    const tree = await buildTree(4, nodeSha256);
    const root = await tree.root();
    tree.node(1, 0).fill(0);
    (await tree.inclusionProof(0))[0]!.fill(0);
    expect(toHex(await tree.root())).toBe(toHex(root));
  });

  it('rejects out-of-range requests with LOG_RANGE_INVALID and bad leaves with INPUT_ENCODING_INVALID', async () => {
    const tree = await buildTree(5, nodeSha256);
    expect(() => tree.node(1, 2)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' })); // [4, 6) incomplete
    expect(() => tree.node(3, 0)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => tree.node(-1, 0)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    await expectCode(tree.root(6), 'LOG_RANGE_INVALID');
    await expectCode(tree.inclusionProof(5, 5), 'LOG_RANGE_INVALID');
    await expectCode(tree.inclusionProof(0, 6), 'LOG_RANGE_INVALID');
    await expectCode(tree.inclusionProof(1.5, 5), 'LOG_RANGE_INVALID');
    await expectCode(tree.consistencyProof(4, 3), 'LOG_RANGE_INVALID');
    await expectCode(tree.consistencyProof(2, 6), 'LOG_RANGE_INVALID');
    await expectCode(inclusionProof(3, 2, tree.getNode), 'LOG_RANGE_INVALID');
    await expectCode(consistencyProof(-1, 2, tree.getNode), 'LOG_RANGE_INVALID');
    await expectCode(treeRoot(-1, tree.getNode), 'LOG_RANGE_INVALID');
    await expectCode(tree.append(new Uint8Array(31)), 'INPUT_ENCODING_INVALID');
    expect(tree.size).toBe(5);
    // The queue still works after a rejected append.
    expect(await tree.append(await leafHash(data(5), nodeSha256))).toBe(5);
  });
});

describe('MerkleTree.nodes', () => {
  it('is the concatenation of node() over the range, and refuses a range that is not complete subtrees', async () => {
    const tree = await buildTree(20, nodeSha256);
    expect(hex([tree.nodes(0, 3, 5)])).toEqual([toHex(concatBytes(...[3, 4, 5, 6, 7].map((i) => tree.node(0, i))))]);
    expect(hex([tree.nodes(2, 1, 4)])).toEqual([toHex(concatBytes(...[1, 2, 3, 4].map((i) => tree.node(2, i))))]);
    expect(tree.nodes(0, 20, 0)).toEqual(new Uint8Array(0));
    expect(() => tree.nodes(0, 15, 6)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
    expect(() => tree.nodes(2, 4, 2)).toThrow(expect.objectContaining({ code: 'LOG_RANGE_INVALID' }));
  });
});
