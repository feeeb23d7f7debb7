export { SpiffeErrorCode } from "./errors";
export { MAX_TRUST_DOMAIN_BYTES, TrustDomain, parseTrustDomain } from "./trust-domain";
export {
  MAX_SPIFFE_ID_BYTES,
  SpiffeId,
  parseSpiffeId,
  tryParseSpiffeId,
  type TryParseSpiffeIdResult,
} from "./spiffe-id";
export {
  KNOWN_SELECTOR_TYPES,
  formatSelector,
  normalizeSelectors,
  parseSelector,
  selectorKey,
  selectorsMatch,
  validateSelector,
  type Selector,
  type ValidateSelectorOptions,
} from "./selector";
export {
  bundleDer,
  bundleFromDer,
  createBundle,
  type Bundle,
  type BundleFromCertificatesOptions,
  type CreateBundleParams,
  type JwtAuthority,
} from "./bundle";
export { bundleFromPem, bundleToPem, derToPem } from "./bundle-pem";
export { JWK_USE_JWT_SVID, JWK_USE_X509_SVID, bundleFromJwks, bundleToJwks } from "./bundle-jwks";
export { concatDer, splitDerCertificates } from "./der-certificates";
export {
  validateSigningCertificate,
  validateX509Svid,
  validateX509SvidLeaf,
  type ValidateX509SvidParams,
  type ValidatedX509Svid,
} from "./x509-svid";
