/**
 * The measurement policy file (attestation/policy-file.ts, docs/policy.md), read by the gateway,
 * clients, the auditor and the KMS key-policy generator: what it accepts and how, and each refusal
 * (POLICY_INVALID) with its message, since a typo must never weaken a policy silently.
 */
import { makePolicyFile, parsePolicyFile } from '../../attestation/policy-file';
import { createDevCa } from '../../attestation/dev/dev-ca';
import { refusalOf } from '../support/error-code';

const PCR = 'ab'.repeat(48);

describe('parsePolicyFile', () => {
  it('reads PCRs (lower-cased), debug, maximum age in ms, roots and image', async () => {
    const { rootPem } = await createDevCa();
    const file = makePolicyFile({ 0: PCR.toUpperCase(), 8: 'cd'.repeat(32) }, { allowDebug: true, maxAgeSeconds: 300, rootCertificates: [rootPem], image: { name: 'teegate-enclave' } });
    const loaded = parsePolicyFile(JSON.parse(JSON.stringify(file)));
    expect(loaded.policy).toEqual({ pcrs: { 0: PCR, 8: 'cd'.repeat(32) }, allowDebug: true, maxAgeMs: 300_000 });
    expect(loaded.rootCertificates).toEqual([rootPem]);
    expect(parsePolicyFile(makePolicyFile({ 2: PCR })).policy).toEqual({ pcrs: { 2: PCR }, allowDebug: false });
  });

  const base = (): Record<string, unknown> => JSON.parse(JSON.stringify(makePolicyFile({ 0: PCR }))) as Record<string, unknown>;
  it.each<[string, () => unknown, string]>([
    ['an array', () => [], 'must be a JSON object'],
    ['a misspelt member', () => ({ ...base(), pcr0: PCR }), 'unknown member "pcr0"'],
    ['another format', () => ({ ...base(), format: 'teegate-policy' }), 'format must be "teegate-measurement-policy"'],
    ['version 2', () => ({ ...base(), version: 2 }), 'version must be 1'],
    ['pcrs as an array', () => ({ ...base(), pcrs: [PCR] }), 'pcrs must be an object of index → hex'],
    ['a policy that pins no PCR', () => ({ ...base(), pcrs: {} }), 'pcrs must pin at least one PCR'],
    ['a PCR as a number', () => ({ ...base(), pcrs: { 0: 12 } }), 'PCR0 must be a hex string'],
    ['PCR index 32', () => ({ ...base(), pcrs: { 32: PCR } }), 'PCR index "32" is not one of 0..31 in decimal without leading zeros'],
    ['PCR index "pcr0"', () => ({ ...base(), pcrs: { pcr0: PCR } }), 'PCR index "pcr0" is not one of 0..31 in decimal without leading zeros'],
    // "00" is PCR0 too: with both, one of the two values would go unchecked.
    ['PCR index "00" beside "0"', () => ({ ...base(), pcrs: { 0: PCR, '00': 'cd'.repeat(48) } }), 'PCR index "00" is not one of 0..31 in decimal without leading zeros'],
    ['PCR index "+1"', () => ({ ...base(), pcrs: { '+1': PCR } }), 'PCR index "+1" is not one of 0..31 in decimal without leading zeros'],
    ['a PCR of 47 bytes', () => ({ ...base(), pcrs: { 0: 'ab'.repeat(47) } }), 'PCR0 must be 32, 48 or 64 bytes of hex'],
    ['a PCR that is not hex', () => ({ ...base(), pcrs: { 0: 'zz'.repeat(48) } }), 'PCR0 is not valid hex'],
    ['allowDebug as a string', () => ({ ...base(), allowDebug: 'false' }), 'allowDebug must be a boolean'],
    ['a negative maximum age', () => ({ ...base(), maxAgeSeconds: -1 }), 'maxAgeSeconds must be a non-negative integer'],
    ['a fractional maximum age', () => ({ ...base(), maxAgeSeconds: 1.5 }), 'maxAgeSeconds must be a non-negative integer'],
    ['no roots in rootCertificates', () => ({ ...base(), rootCertificates: [] }), 'rootCertificates must be a non-empty array of PEM strings'],
    ['a root that is not a string', () => ({ ...base(), rootCertificates: [{ pem: 'x' }] }), 'rootCertificates must be a non-empty array of PEM strings'],
    ['a root that is not PEM', () => ({ ...base(), rootCertificates: ['MIIB...'] }), 'rootCertificates[0]: '],
    ['image with a number', () => ({ ...base(), image: { builtAt: 20261124 } }), 'image must be an object of strings'],
  ])('refuses %s: POLICY_INVALID', async (_what, make, message) => {
    const refused = await refusalOf(() => parsePolicyFile(make()));
    expect(refused.code).toBe('POLICY_INVALID');
    expect(refused.message).toContain(message);
  });
});
