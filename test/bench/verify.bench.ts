/**
 * bench:verify — the same real AWS Nitro document (base/nitro-validator, 2024-11-30) verified over
 * and over, at its own timestamp + 1 s:
 *  - teegate_full_per_s:   full verification (parse, 4 certificate signatures, COSE signature, policy), no cache;
 *  - teegate_cached_per_s: the same with a CertificateCache (verified issuer signatures reused; validity
 *                          and constraints still checked on every call);
 *  - peer_full_per_s:      @0xsequence/tee-verifier: fromDocument + verifySignature + verifyRootOfTrust(date);
 *  - p384_verify_per_s:    raw node:crypto P-384 ECDSA verifications of a same-size message (the physical limit).
 * One operation at a time in every case. Last line of stdout: one JSON object.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, toBase64 } from '../../attestation/bytes';
import { verifyAttestation } from '../../attestation/nitro/verify';
import { CertificateCache } from '../../attestation/x509/certificate-cache';
import { sigStructure, parseCoseSign1 } from '../../attestation/cose/sign1';
import { log, opsPerSecond, report, round } from './measure';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const FILE = join(__dirname, '../../../shared/vectors/nitro/base_nitro-validator_2024-11-30.hex');
const TIMESTAMP = 1732983768387;

async function main(): Promise<void> {
  // The peer is an ES module: loaded with import(), as a CommonJS file must.
  const { SignedAttestation } = await import('@0xsequence/tee-verifier');
  const doc = fromHex(readFileSync(FILE, 'utf8').trim());
  const at = TIMESTAMP + 1000;
  const b64 = toBase64(doc);
  const peerDate = new Date(at);

  // Sanity: both verifiers accept the document before anything is timed.
  await verifyAttestation(doc, { at });
  const peerDoc = SignedAttestation.fromDocument(b64);
  if (!(await peerDoc.verifySignature()) || !(await peerDoc.verifyRootOfTrust(peerDate))) {
    throw new Error('peer rejects the document');
  }

  log('teegate full ...');
  const full = await opsPerSecond(() => verifyAttestation(doc, { at }), SECONDS);
  log('teegate cached ...');
  const cache = new CertificateCache();
  const cached = await opsPerSecond(() => verifyAttestation(doc, { at, cache }), SECONDS);
  log('peer (@0xsequence/tee-verifier) ...');
  const peer = await opsPerSecond(async () => {
    const a = SignedAttestation.fromDocument(b64);
    if (!(await a.verifySignature()) || !(await a.verifyRootOfTrust(peerDate))) throw new Error('peer rejected');
  }, SECONDS);

  log('raw P-384 ...');
  const message = sigStructure(parseCoseSign1(doc));
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const signature = sign('sha384', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const p384 = await opsPerSecond(() => {
    if (!verify('sha384', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('bad');
  }, SECONDS);

  const round1 = (x: number): number => round(x, 1);
  report({
    document: 'base_nitro-validator_2024-11-30.hex',
    document_bytes: doc.length,
    seconds_per_case: SECONDS,
    teegate_full_per_s: round1(full),
    teegate_cached_per_s: round1(cached),
    peer_full_per_s: round1(peer),
    p384_verify_per_s: round1(p384),
    full_vs_peer: round1(full / peer),
    cached_vs_p384: round(cached / p384, 3),
    goals: { full_vs_peer: '>= 4', cached_vs_p384: '>= 0.5' },
  });
}

main().catch((err) => {
  process.stderr.write(`bench:verify failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
