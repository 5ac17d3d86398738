/**
 * Errors of the dev KMS, in the AWS KMS wire form: the exception name is the protocol
 * (`{"__type": "NotFoundException", "message": "..."}`), so the real `@aws-sdk/client-kms` maps
 * each one to its own exception class (`err.name === 'NotFoundException'`).
 *
 * HTTP statuses are those of the KMS service model (the `httpError` trait of each exception in
 * the KMS Smithy model, as shipped in @aws-sdk/client-kms) and, for the errors common to all AWS
 * services, those of the AWS "Common Errors" reference
 * (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html).
 */
export const KMS_ERROR_STATUS = {
  // KMS-specific exceptions (KMS API Reference, per operation "Errors").
  AlreadyExistsException: 409,
  DisabledException: 409,
  DryRunOperationException: 412,
  IncorrectKeyException: 400,
  InvalidAliasNameException: 400,
  InvalidArnException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  CustomKeyStoreNotFoundException: 400,
  KMSInternalException: 500,
  KMSInvalidStateException: 409,
  MalformedPolicyDocumentException: 400,
  NotFoundException: 404,
  UnsupportedOperationException: 400,
  // Errors common to AWS JSON services (authentication, protocol, validation).
  AccessDeniedException: 400,
  IncompleteSignatureException: 400,
  InvalidSignatureException: 400,
  MissingAuthenticationTokenException: 400,
  // Not in the KMS model, but what KMS answers to CreateAlias with a reserved 'alias/aws/' name
  // (as the moto and local-kms emulators, written against the service, both reproduce it).
  NotAuthorizedException: 400,
  UnrecognizedClientException: 400,
  SerializationException: 400,
  UnknownOperationException: 400,
  ValidationException: 400,
  RequestEntityTooLargeException: 413,
} as const;

export type KmsErrorType = keyof typeof KMS_ERROR_STATUS;

export class KmsError extends Error {
  override readonly name = 'KmsError';
  readonly type: KmsErrorType;
  readonly status: number;

  constructor(type: KmsErrorType, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.type = type;
    this.status = KMS_ERROR_STATUS[type];
  }

  /** The JSON 1.1 error body AWS sends. */
  toWire(): { __type: KmsErrorType; message: string } {
    return { __type: this.type, message: this.message };
  }
}

export function isKmsError(err: unknown, type?: KmsErrorType): err is KmsError {
  return err instanceof KmsError && (type === undefined || err.type === type);
}
