/**
 * teegate client SDK (browser-safe: fetch and WebCrypto, no Node built-ins). See docs/client.md.
 *
 *   const client = await connect('https://gateway.example', { policy: parsePolicyFile(json) });
 *   const { outputs, report } = await client.infer('ppocr-v4-rec', inputs); // sealed by default
 *   if (!report.valid) throw new Error(report.error?.code);
 */
export { connect, TeegateClient, type ConnectOptions, type InferOptions, type InferResult } from './client';
export { AttestationCache, DEFAULT_MAX_AGE_MS } from './attestation-cache';
export { AttestationRejectedError, type AttestedEnclave, type ListedEnclave, type TrustAnchors } from './enclave-attestation';
export type { FetchLike } from './http';
export { REPORT_STEPS, rejectedAttestationReport, type ReportStep, type ReportStepOutcome, type StepStatus, type VerificationReport } from './report';
export { verifyReceiptOffline, type OfflineReceiptEvidence, type OfflineReceiptResult } from './verify-offline';
export { parsePolicyFile, type LoadedPolicy, type PolicyFile } from '../policy-file';
export type { MeasurementPolicy } from '../nitro/policy';
export type { EnclaveManifest } from '../manifest';
export type { ReceiptClaims } from '../receipt';
export type { InferTensor, TensorParameters } from '../tensors';
export { TeegateError, isTeegateError, type ErrorCode } from '../errors';
