/**
 * Rejection paths of C2SP signed-note (https://c2sp.org/signed-note) that the known-answer tests do
 * not reach, through the public functions checkpoints are signed and verified with. The spec: a
 * key name is non-empty and has no Unicode spaces and no plus; a key ID is a uint32; a signature
 * line is `— <name> base64(key ID || signature)`; the note text is UTF-8 ending in a newline.
 */
import { utf8 } from '../../attestation/bytes';
import { openCheckpoint, signCheckpoint } from '../../attestation/log/checkpoint';
import { MAX_NOTE_BYTES, ed25519SignerFromSeed, formatVerifierKey, parseVerifierKey, signNote, verifyNote, type NoteSigner } from '../../attestation/log/signed-note';
import { refusalOf } from '../support/error-code';

const NAME = 'teegate.example/log';
const ROOT = new Uint8Array(32).fill(9);

let signer: NoteSigner & { readonly publicKey: Uint8Array };

beforeAll(async () => {
  signer = await ed25519SignerFromSeed(NAME, new Uint8Array(32).fill(7));
});

/** A signer that signs with the real key but presents `name`, `keyId` or its signature as given. */
function misbehaving(over: { name?: string; keyId?: number; signature?: Uint8Array }): NoteSigner {
  return {
    name: over.name ?? signer.name,
    keyId: over.keyId ?? signer.keyId,
    sign: async (message) => over.signature ?? signer.sign(message),
  };
}

describe('signing: what a signer hands back is checked before it becomes a signature line', () => {
  it.each([
    ['empty', ''],
    ['with a space', 'teegate example'],
    ['with a plus', 'teegate+log'],
    ['with a tab', 'teegate\tlog'],
    ['with a no-break space (a Unicode space)', 'teegate\u00a0log'],
    ['with an em space (a Unicode space)', 'teegate\u2003log'],
    ['with a newline', 'teegate\nlog'],
  ])('a key name %s is LOG_CHECKPOINT_MALFORMED', async (_what, name) => {
    expect(await refusalOf(() => signCheckpoint({ origin: NAME, size: 1, rootHash: ROOT, extensions: [] }, [misbehaving({ name })]))).toEqual({
      code: 'LOG_CHECKPOINT_MALFORMED',
      message: 'invalid key name',
    });
  });

  it.each([
    ['negative', -1],
    ['above 2^32 - 1', 2 ** 32],
    ['not an integer', 1.5],
    ['NaN', Number.NaN],
  ])('a key ID %s is LOG_CHECKPOINT_MALFORMED', async (_what, keyId) => {
    expect(await refusalOf(() => signNote('hello\n', [misbehaving({ keyId })]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message: 'invalid key ID' });
  });

  it('the uint32 key ID range ends at 2^32 - 1', async () => {
    const note = await signNote('hello\n', [misbehaving({ keyId: 0xffffffff })]);
    expect(note).toMatch(/^hello\n\n— teegate\.example\/log \/\/\/\/\/.+\n$/);
  });

  it('an empty signature is LOG_CHECKPOINT_MALFORMED', async () => {
    expect(await refusalOf(() => signNote('hello\n', [misbehaving({ signature: new Uint8Array(0) })]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message: 'empty signature' });
  });

  it('a checkpoint whose origin holds a lone surrogate (no UTF-8 form) is LOG_CHECKPOINT_MALFORMED', async () => {
    expect(await refusalOf(() => signCheckpoint({ origin: 'teegate.example/\uD800log', size: 1, rootHash: ROOT, extensions: [] }, [signer]))).toEqual({
      code: 'LOG_CHECKPOINT_MALFORMED',
      message: 'note text is not valid Unicode',
    });
    expect(await refusalOf(() => signNote('ends in a low surrogate \uDC00\n', [signer]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message: 'note text is not valid Unicode' });
  });

  it('a text over the note size limit is LOG_CHECKPOINT_MALFORMED, counted in UTF-8 bytes', async () => {
    const message = `note exceeds ${MAX_NOTE_BYTES} bytes`;
    expect(await refusalOf(() => signNote(`${'a'.repeat(MAX_NOTE_BYTES)}\n`, [signer]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message });
    // Fewer UTF-16 code units than the limit, more UTF-8 bytes.
    const text = `${'é'.repeat(MAX_NOTE_BYTES / 2)}\n`;
    expect(text.length).toBeLessThan(MAX_NOTE_BYTES);
    expect(await refusalOf(() => signNote(text, [signer]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message });
    // At the limit it signs.
    expect(await signNote(`${'a'.repeat(MAX_NOTE_BYTES - 1)}\n`, [signer])).toMatch(/\n\n— teegate\.example\/log /);
  });
});

describe('verifying: a note over the size limit in UTF-8 bytes', () => {
  it('is LOG_CHECKPOINT_MALFORMED even when its string is shorter than the limit', async () => {
    const key = await parseVerifierKey(await formatVerifierKey(NAME, signer.publicKey));
    const good = await signCheckpoint({ origin: NAME, size: 1, rootHash: ROOT, extensions: [] }, [signer]);
    expect((await openCheckpoint(good, key)).checkpoint.size).toBe(1);
    // An extension line of 'é' that brings the note over 1 MiB of UTF-8 but not of UTF-16 code units.
    const [body, sig] = good.split('\n\n') as [string, string];
    const padded = `${body}\n${'é'.repeat(MAX_NOTE_BYTES / 2)}\n\n${sig}`;
    expect(padded.length).toBeLessThan(MAX_NOTE_BYTES);
    expect(utf8(padded).length).toBeGreaterThan(MAX_NOTE_BYTES);
    expect(await refusalOf(() => openCheckpoint(padded, key))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message: `note exceeds ${MAX_NOTE_BYTES} bytes` });
    expect(await refusalOf(() => verifyNote(padded, [key]))).toEqual({ code: 'LOG_CHECKPOINT_MALFORMED', message: `note exceeds ${MAX_NOTE_BYTES} bytes` });
  });
});

describe('verifier keys', () => {
  it.each([
    ['empty', ''],
    ['with a space', 'teegate example'],
    ['with a plus', 'teegate+log'],
    ['with a no-break space', 'teegate\u00a0log'],
  ])('formatting one with a key name %s is POLICY_INVALID', async (_what, name) => {
    expect(await refusalOf(() => formatVerifierKey(name, signer.publicKey))).toEqual({ code: 'POLICY_INVALID', message: 'invalid key name' });
  });
});

describe('verifying: one bad signature from a trusted key rejects the whole note', () => {
  it('a good signature and a second, broken one by the same trusted key: LOG_SIGNATURE_INVALID naming the key (as Go note.Open does)', async () => {
    const text = 'teegate.example/log\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n';
    const note = await signNote(text, [signer]);
    const line = note.slice(note.indexOf('\n\n') + 2).trimEnd(); // — <name> <base64(key ID || signature)>
    const blob = Buffer.from(line.slice(line.lastIndexOf(' ') + 1), 'base64');
    blob[10] = blob[10]! ^ 0x01; // a bit of the signature (the key ID is the first four bytes)
    const broken = `${note}— ${NAME} ${blob.toString('base64')}\n`;
    const key = await parseVerifierKey(await formatVerifierKey(NAME, signer.publicKey));
    expect(await verifyNote(note, [key])).toMatchObject({ text });
    expect(await refusalOf(() => verifyNote(broken, [key]))).toEqual({
      code: 'LOG_SIGNATURE_INVALID',
      message: `invalid signature for key ${NAME}+${signer.keyId.toString(16).padStart(8, '0')}`,
    });
  });
});
