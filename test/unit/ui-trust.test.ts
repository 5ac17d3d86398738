/** The explorer's "custom root" banner decides by certificate, as Trust settings does, not by PEM text. */
import { createDevCa } from '../../attestation/dev/dev-ca';
import { AWS_NITRO_ROOT_G1_PEM } from '../../attestation/nitro/aws-root';
import type { LoadedPolicy } from '../../attestation/policy-file';
import { trustsCustomRoot } from '../../gateway/ui/src/trust';

const policy = (rootCertificates?: string[]): LoadedPolicy => ({ policy: {}, file: {} as LoadedPolicy['file'], ...(rootCertificates ? { rootCertificates } : {}) });

it('sees the AWS root as the AWS root whatever text surrounds its PEM, and a dev CA as custom', async () => {
  expect(trustsCustomRoot(policy())).toBe(false);
  expect(trustsCustomRoot(policy([AWS_NITRO_ROOT_G1_PEM]))).toBe(false);
  expect(trustsCustomRoot(policy([`subject=CN=aws.nitro-enclaves\n${AWS_NITRO_ROOT_G1_PEM}\n`]))).toBe(false);
  const dev = await createDevCa();
  expect(trustsCustomRoot(policy([dev.rootPem]))).toBe(true);
  expect(trustsCustomRoot(policy([AWS_NITRO_ROOT_G1_PEM, dev.rootPem]))).toBe(true);
});
