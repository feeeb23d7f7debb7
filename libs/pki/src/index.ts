export {
  generateKeyPair,
  keyTypeOf,
  isKeyType,
  exportPkcs8Der,
  exportPkcs8Pem,
  importPkcs8,
  exportSpkiDer,
  exportSpkiPem,
  importSpki,
  KEY_TYPES,
  type KeyType,
  type KeyPair,
} from "./keys";
export {
  createSelfSignedCa,
  createIntermediateCa,
  type CreateSelfSignedCaParams,
  type CreateIntermediateCaParams,
  type CaCertificate,
} from "./ca-certificate";
export { issueX509SvidGeneric, type IssueX509SvidGenericParams } from "./x509-svid-generic";
export {
  createX509SvidIssuer,
  type X509SvidIssuer,
  type X509SvidIssuerDeps,
  type IssueX509SvidFromCsrParams,
} from "./x509-svid-issuer";
export {
  computeSvidValidity,
  NOT_BEFORE_BACKDATE_SECONDS,
  type IssueX509SvidParams,
  type IssuedX509Svid,
  type RandomSource,
} from "./svid-profile";
export { checkUpstreamPathLen, type UpstreamRole } from "./upstream-path-len";
export { createCsr, parseCsr, verifyCsr, type CreateCsrParams, type ParsedCsr } from "./csr";
export { readCertificateInfo, type CertificateInfo } from "./certificate-info";
export { encodePem, decodePem, certificatesToPem, pemToCertificates } from "./pem";
