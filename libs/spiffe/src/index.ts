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
