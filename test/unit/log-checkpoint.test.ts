import fc from 'fast-check';
import { fromBase64, toBase64, toHex, utf8 } from '../../attestation/bytes';
import { isTeegateError, type ErrorCode } from '../../attestation/errors';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint } from '../../attestation/log/checkpoint';
import { MerkleTree, leafHash, verifyConsistency } from '../../attestation/log/merkle';
import {
  MAX_NOTE_BYTES,
  ed25519KeyId,
  ed25519SignerFromSeed,
  formatNote,
  formatVerifierKey,
  generateNoteKey,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifyNote,
  type NoteVerifierKey,
} from '../../attestation/log/signed-note';

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isTeegateError(err)) throw new Error(`expected TeegateError ${code}, got ${String(err)}`);
  expect(err.code).toBe(code);
}
function expectThrowCode(fn: () => unknown, code: ErrorCode): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

// Known answers from golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen).
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

describe('signed-note: golang.org/x/mod/sumdb/note known answers', () => {
  let peter: NoteVerifierKey;
  let enoch: NoteVerifierKey;
  beforeAll(async () => {
    peter = await parseVerifierKey(PETER_VKEY);
    enoch = await parseVerifierKey(ENOCH_VKEY);
  });

  it('parses verifier keys and recomputes their key IDs', async () => {
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(peter.publicKey.length).toBe(32);
    expect(await ed25519KeyId('PeterNeumann', peter.publicKey)).toBe(0xc74f20a3);
    expect(await formatVerifierKey(peter.name, peter.publicKey)).toBe(PETER_VKEY);
    expect(enoch.keyId).toBe(0xaf0cfe78);
  });

  it('signs deterministically to the published signature (Ed25519 via WebCrypto)', async () => {
    const signer = await parseSignerKey(PETER_SKEY);
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(await signNote(TEXT, [signer])).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it('verifies a trusted signature and ignores an unknown one', async () => {
    const msg = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = await verifyNote(msg, [peter]);
    expect(one.text).toBe(TEXT);
    expect(one.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(one.signatures.length).toBe(2);
    const both = await verifyNote(utf8(msg), [peter, enoch]);
    expect(both.verified.map((s) => s.keyId)).toEqual([0xc74f20a3, 0xaf0cfe78]);
    await expectCode(verifyNote(msg, []), 'LOG_SIGNATURE_INVALID');
    await expectCode(verifyNote(`${TEXT}\n${ENOCH_SIG}`, [peter]), 'LOG_SIGNATURE_INVALID');
  });

  it('rejects a bad signature from a trusted key', async () => {
    const bad = `${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    await expectCode(verifyNote(bad, [peter]), 'LOG_SIGNATURE_INVALID');
  });

  it('rejects every mangled verifier key string with POLICY_INVALID', async () => {
    const bad: string[] = [];
    for (let i = 0; i < PETER_VKEY.length; i++) {
      for (let j = i + 1; j <= PETER_VKEY.length; j++) if (i !== 0 || j !== PETER_VKEY.length) bad.push(PETER_VKEY.slice(i, j));
      bad.push(PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1));
    }
    bad.push('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='); // wrong key length
    bad.push('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'); // unknown algorithm
    bad.push('PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'); // upper-case key ID
    for (const k of bad) await expectCode(parseVerifierKey(k), 'POLICY_INVALID');
    expect(bad.length).toBeGreaterThan(2000);
  });

  it('rejects malformed signer keys with POLICY_INVALID', async () => {
    await expectCode(parseSignerKey(PETER_SKEY.replace('c74f20a3', 'c74f20a4')), 'POLICY_INVALID');
    await expectCode(parseSignerKey(PETER_SKEY.slice('PRIVATE+'.length)), 'POLICY_INVALID');
    await expectCode(parseSignerKey(PETER_SKEY.slice(0, -4)), 'POLICY_INVALID');
  });

  it('rejects malformed notes with LOG_CHECKPOINT_MALFORMED (TestOpen badMsgs and more)', async () => {
    const bad = [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\x01${TEXT}\n${PETER_SIG}`,
      `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n${'— PeterNeumann ' + 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n'}`, // no padding
      `${TEXT}\n— PeterNeumann x08g\n`, // shorter than key ID + 1 byte
      `${TEXT}\n— a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      `${TEXT}\n-- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      `${TEXT.replace('\n', '\r\n')}\n${PETER_SIG}`,
      `${TEXT}\n${PETER_SIG.replace('\n', '')}\t\n`,
      `${TEXT}\n${PETER_SIG.repeat(101)}`, // more than 100 signatures
      `${TEXT.replace('If', '\uD800')}\n${PETER_SIG}`, // lone surrogate
    ];
    for (const msg of bad) {
      await expectCode(verifyNote(msg, [peter]), 'LOG_CHECKPOINT_MALFORMED');
    }
    await expectCode(verifyNote(Uint8Array.of(0xff, ...utf8(`${TEXT}\n${PETER_SIG}`)), [peter]), 'LOG_CHECKPOINT_MALFORMED');
    // A byte order mark is part of the text (as in Go's note.Open): the signature no longer covers it.
    expect((await verifyNote(utf8(`${TEXT}\n${PETER_SIG}`), [peter])).verified.length).toBe(1);
    await expect(verifyNote(Uint8Array.of(0xef, 0xbb, 0xbf, ...utf8(`${TEXT}\n${PETER_SIG}`)), [peter])).rejects.toMatchObject({ code: expect.stringMatching(/^LOG_(CHECKPOINT_MALFORMED|SIGNATURE_INVALID)$/) });
    const huge = `${'a'.repeat(MAX_NOTE_BYTES)}\n\n${PETER_SIG}`;
    await expectCode(verifyNote(huge, [peter]), 'LOG_CHECKPOINT_MALFORMED');
    await expectCode(verifyNote(utf8(huge), [peter]), 'LOG_CHECKPOINT_MALFORMED');
    // Exactly 100 signature lines is within the limit (duplicates of a verified signature).
    expect((await verifyNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [peter])).verified.length).toBe(100);
  });

  it('parses the example notes of the C2SP signed-note and tlog-checkpoint specs', () => {
    // c2sp.org/signed-note: "Ognuno sta solo ..." signed by quasimodo.example/salvatore.
    const quasimodo =
      'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n' +
      '— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';
    const note = parseNote(quasimodo);
    expect(note.text).toBe('Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n');
    expect(note.signatures[0]!.name).toBe('quasimodo.example/salvatore');
    expect(note.signatures[0]!.keyId).toBe(0x367ba04b);
    expect(note.signatures[0]!.signature.length).toBe(64);
    expect(formatNote(note)).toBe(quasimodo);
  });
});

describe('signed-note: round trips and forgeries', () => {
  const NAME = 'teegate.example/log';
  it('a generated key signs and verifies; another key, a tampered body, a wrong name and a forged key ID fail', async () => {
    const { signerKey, verifierKey } = await generateNoteKey(NAME);
    const signer = await parseSignerKey(signerKey);
    const key = await parseVerifierKey(verifierKey);
    expect(key.keyId).toBe(signer.keyId);
    const text = 'teegate.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';
    const note = await signNote(text, [signer]);
    expect((await verifyNote(note, [key])).verified.length).toBe(1);

    // Signed by another key with the same name: its key ID differs, so it is an unknown signature.
    const other = await parseSignerKey((await generateNoteKey(NAME)).signerKey);
    await expectCode(verifyNote(await signNote(text, [other]), [key]), 'LOG_SIGNATURE_INVALID');

    // Tampered body.
    await expectCode(verifyNote(note.replace('\n3\n', '\n4\n'), [key]), 'LOG_SIGNATURE_INVALID');

    // Wrong key name on the signature line (the signature bytes are genuine).
    await expectCode(verifyNote(note.replace(`— ${NAME} `, '— teegate.example/other '), [key]), 'LOG_SIGNATURE_INVALID');

    // Forged key ID: the other key's signature relabelled with the trusted key ID is checked and fails.
    const parsedOther = parseNote(await signNote(text, [other]));
    const forged = formatNote({ text, signatures: [{ ...parsedOther.signatures[0]!, keyId: key.keyId }] });
    await expectCode(verifyNote(forged, [key]), 'LOG_SIGNATURE_INVALID');

    // A genuine signature with a forged key ID is ignored (unknown key), so nothing verifies.
    const relabelled = formatNote({ text, signatures: [{ ...parseNote(note).signatures[0]!, keyId: (key.keyId ^ 1) >>> 0 }] });
    await expectCode(verifyNote(relabelled, [key]), 'LOG_SIGNATURE_INVALID');

    // A trusted key whose public key does not match its claimed ID: the signature fails.
    const impostor = { ...key, publicKey: (other as { publicKey: Uint8Array }).publicKey };
    await expectCode(verifyNote(note, [impostor]), 'LOG_SIGNATURE_INVALID');
    // Two trusted keys with the same name and ID but different public keys are a configuration error.
    await expectCode(verifyNote(note, [key, impostor]), 'POLICY_INVALID');
  });

  it('rejects bad signing inputs', async () => {
    const signer = await ed25519SignerFromSeed(NAME, new Uint8Array(32).fill(7));
    await expectCode(signNote('no newline', [signer]), 'LOG_CHECKPOINT_MALFORMED');
    await expectCode(signNote('ctrl\x07\n', [signer]), 'LOG_CHECKPOINT_MALFORMED');
    await expectCode(signNote('fine\n', []), 'LOG_CHECKPOINT_MALFORMED');
    await expectCode(ed25519SignerFromSeed('bad name', new Uint8Array(32)), 'POLICY_INVALID');
    await expectCode(ed25519SignerFromSeed(NAME, new Uint8Array(31)), 'POLICY_INVALID');
    await expectCode(formatVerifierKey(NAME, new Uint8Array(31)), 'POLICY_INVALID');
    await expectCode(generateNoteKey('a+b'), 'POLICY_INVALID');
  });
});

describe('tlog-checkpoint bodies', () => {
  // The example of c2sp.org/tlog-checkpoint.
  const SPEC = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

  it('parses and re-formats the spec example', () => {
    const cp = parseCheckpoint(SPEC);
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163);
    expect(toBase64(cp.rootHash)).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    expect(cp.extensions).toEqual([]);
    expect(formatCheckpoint(cp)).toBe(SPEC);
    // The spec's signed example parses as a note whose text is this body.
    const signed = `${SPEC}\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n`;
    expect(parseCheckpoint(parseNote(signed).text)).toEqual(cp);
  });

  it('round-trips size 0 and extension lines', () => {
    const cp: Checkpoint = { origin: 'o', size: 0, rootHash: new Uint8Array(32).fill(0xab), extensions: ['ext one', 'ext+two'] };
    const text = formatCheckpoint(cp);
    expect(text).toBe(`o\n0\n${toBase64(cp.rootHash)}\next one\next+two\n`);
    expect(parseCheckpoint(text)).toEqual(cp);
  });

  it('rejects malformed bodies with LOG_CHECKPOINT_MALFORMED', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad = [
      SPEC.slice(0, -1), // no final newline
      `o\n1\n`, // two lines
      `\n1\n${root}\n`, // empty origin
      `o\n01\n${root}\n`, // leading zero
      `o\n-1\n${root}\n`,
      `o\n+1\n${root}\n`,
      `o\n 1\n${root}\n`,
      `o\n1.0\n${root}\n`,
      `o\n1e3\n${root}\n`,
      `o\n9007199254740992\n${root}\n`, // 2^53
      `o\n\n${root}\n`,
      `o\n1\n${toBase64(new Uint8Array(31))}\n`, // 31-byte root
      `o\n1\n${toBase64(new Uint8Array(33))}\n`, // 33-byte root
      `o\n1\n${root.replace('=', '')}\n`, // no padding
      `o\n1\n${root.replace('/', '_')}\n`, // URL alphabet
      `o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n`, // non-canonical trailing bits
      `o\n1\n${root}\n\n`, // empty extension line
      `o\n1\n${root}\nx\n\nx\n`,
      `o\r\n1\r\n${root}\r\n`, // CRLF
      `o\t\n1\n${root}\n`, // control character in origin
      `o\n1\n${root}\next\x00\n`,
    ];
    for (const text of bad) expectThrowCode(() => parseCheckpoint(text), 'LOG_CHECKPOINT_MALFORMED');
    const good: Checkpoint = { origin: 'o', size: 1, rootHash: fromBase64(root), extensions: [] };
    expectThrowCode(() => formatCheckpoint({ ...good, origin: '' }), 'LOG_CHECKPOINT_MALFORMED');
    expectThrowCode(() => formatCheckpoint({ ...good, origin: 'a\nb' }), 'LOG_CHECKPOINT_MALFORMED');
    expectThrowCode(() => formatCheckpoint({ ...good, size: -1 }), 'LOG_CHECKPOINT_MALFORMED');
    expectThrowCode(() => formatCheckpoint({ ...good, size: 1.5 }), 'LOG_CHECKPOINT_MALFORMED');
    expectThrowCode(() => formatCheckpoint({ ...good, rootHash: new Uint8Array(31) }), 'LOG_CHECKPOINT_MALFORMED');
    expectThrowCode(() => formatCheckpoint({ ...good, extensions: [''] }), 'LOG_CHECKPOINT_MALFORMED');
  });
});

describe('signed checkpoints (Flow 6: audit)', () => {
  const ORIGIN = 'teegate.example/log';
  it('signs, opens, and checks consistency between two checkpoints of a real tree', async () => {
    const { signerKey, verifierKey } = await generateNoteKey(ORIGIN);
    const signer = await parseSignerKey(signerKey);
    const key = await parseVerifierKey(verifierKey);
    const tree = new MerkleTree();
    for (let i = 0; i < 13; i++) await tree.append(await leafHash(utf8(`receipt ${i}`)));
    const old = await signCheckpoint({ origin: ORIGIN, size: 7, rootHash: await tree.root(7), extensions: [] }, [signer]);
    const now = await signCheckpoint({ origin: ORIGIN, size: 13, rootHash: await tree.root(13), extensions: [] }, [signer]);

    const a = (await openCheckpoint(old, key)).checkpoint;
    const b = (await openCheckpoint(utf8(now), key)).checkpoint;
    expect([a.size, b.size]).toEqual([7, 13]);
    expect(toHex(b.rootHash)).toBe(toHex(await tree.root()));
    await verifyConsistency(a.size, b.size, await tree.consistencyProof(7, 13), a.rootHash, b.rootHash);

    // A forked log: same size 13, other entries, signed by the same key, is caught.
    const fork = new MerkleTree();
    for (let i = 0; i < 13; i++) await fork.append(await leafHash(utf8(`rewritten ${i}`)));
    const forked = (await openCheckpoint(await signCheckpoint({ origin: ORIGIN, size: 13, rootHash: await fork.root(), extensions: [] }, [signer]), key)).checkpoint;
    await expectCode(verifyConsistency(b.size, forked.size, [], b.rootHash, forked.rootHash), 'LOG_INCONSISTENT');
    await expectCode(verifyConsistency(a.size, forked.size, await tree.consistencyProof(7, 13), a.rootHash, forked.rootHash), 'LOG_INCONSISTENT');

    // Origin must be the expected log's (the key name unless told otherwise).
    const elsewhere = await signCheckpoint({ origin: 'other.example/log', size: 1, rootHash: await tree.root(1), extensions: [] }, [signer]);
    await expectCode(openCheckpoint(elsewhere, key), 'LOG_CHECKPOINT_MALFORMED');
    expect((await openCheckpoint(elsewhere, key, { origin: 'other.example/log' })).checkpoint.size).toBe(1);

    // A signed note whose body is not a checkpoint.
    await expectCode(openCheckpoint(await signNote('hello\n', [signer]), key), 'LOG_CHECKPOINT_MALFORMED');
    // Signed by someone else.
    const stranger = await parseSignerKey((await generateNoteKey(ORIGIN)).signerKey);
    await expectCode(openCheckpoint(await signCheckpoint(a, [stranger]), key), 'LOG_SIGNATURE_INVALID');
  });
});

describe('fuzz: arbitrary input gives a typed error, never a crash', () => {
  const typed = (fn: () => unknown, codes: ErrorCode[]): void => {
    try {
      fn();
    } catch (e) {
      if (!isTeegateError(e) || !codes.includes(e.code)) throw e;
    }
  };
  const noteish = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.array(fc.constantFrom('o', '\n', '— ', ' ', 'x08go/ZJ', '=', '+', 'PeterNeumann', '1', '\u2014')).map((a) => a.join('')),
  );

  it('parseNote and parseCheckpoint', () => {
    fc.assert(
      fc.property(noteish, (s) => {
        typed(() => parseNote(s), ['LOG_CHECKPOINT_MALFORMED']);
        typed(() => parseCheckpoint(s), ['LOG_CHECKPOINT_MALFORMED']);
      }),
      { numRuns: 3000 },
    );
  });

  it('verifyNote and parseVerifierKey', async () => {
    const peter = await parseVerifierKey(PETER_VKEY);
    await fc.assert(
      fc.asyncProperty(noteish, async (s) => {
        for (const p of [verifyNote(`${TEXT}\n${s}`, [peter]), parseVerifierKey(s)]) {
          await p.catch((e: unknown) => {
            if (!isTeegateError(e) || !['LOG_CHECKPOINT_MALFORMED', 'LOG_SIGNATURE_INVALID', 'POLICY_INVALID'].includes(e.code)) throw e;
          });
        }
      }),
      { numRuns: 500 },
    );
  });
});
