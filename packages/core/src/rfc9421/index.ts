/**
 * RFC 9421 HTTP Message Signatures: component identifiers, the `Signature-Input` and `Signature`
 * fields, the signature base, and signing and verifying one signature.
 */
export {
  DERIVED_COMPONENTS,
  parseComponentIdentifier,
  type ComponentIdentifier,
  type ComponentParams,
  type DerivedComponentName,
} from './components.js';
export {
  Token,
  parseSignature,
  parseSignatureInput,
  serializeSignatureParams,
  type FieldLimits,
  type SignatureInputEntry,
  type SignatureParamValue,
  type SignatureParams,
} from './signature-fields.js';
export {
  STRUCTURED_FIELDS,
  componentValue,
  signatureBase,
  type HttpMessage,
  type SignatureContext,
  type StructuredFieldType,
} from './signature-base.js';
export {
  SIGNATURE_ALGORITHMS,
  signMessage,
  signMessageFields,
  verifyMessageSignature,
  type SignMessageOptions,
  type SignedMessage,
} from './http-signatures.js';
