export {
  createGrpcChannel,
  createGrpcClient,
  type CreateGrpcChannelParams,
  type CreateGrpcClientOptions,
  type GrpcClientCallOptions,
} from "./client";
export {
  ERROR_CODE_TRAILER_KEY,
  INTERNAL_ERROR_MESSAGE,
  errorKindForStatus,
  errorMiddleware,
  isAbortError,
  meshidErrorFromClientError,
  statusForErrorKind,
  type ErrorMiddlewareDeps,
} from "./errors";
export { toGrpcJsServiceDefinition, type GrpcJsServiceDefinition } from "./grpc-js-definition";
export { GrpcLogKeys } from "./log-keys";
export { createNoopGrpcLogger, type GrpcLogger } from "./logger";
export { loggingMiddleware, type LoggingMiddlewareDeps } from "./logging-middleware";
export {
  PEER_CERT_SERIAL_METADATA_KEY,
  PEER_URI_SANS_METADATA_KEY,
  peerIdentityInterceptor,
  peerIdentityMiddleware,
  requirePeerSpiffeId,
  uriSansFromSubjectAltName,
  type AuthorizePeer,
  type PeerIdentityContext,
  type PeerIdentityMiddlewareDeps,
  type RequiredPeerIdentityContext,
} from "./peer-identity";
export {
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_UNIX_DIRECTORY_MODE,
  addHealth,
  createGrpcServer,
  type CreateGrpcServerParams,
  type GrpcServer,
  type ListenUnixOptions,
  type ShutdownGrpcServerParams,
} from "./server";
export {
  assertUsableBundle,
  assertUsableTlsMaterial,
  certificateProviderFromBundleSource,
  certificateProviderFromSvidSource,
  checkServerSpiffeId,
  createChannelTlsCredentials,
  createMutableSvidSource,
  createServerTlsCredentials,
  createStaticBundleSource,
  createStaticSvidSource,
  type BundleMaterial,
  type BundleSource,
  type ChannelTlsOptions,
  type ClientCertificateMode,
  type MutableSvidSource,
  type ServerIdMatcher,
  type ServerTlsOptions,
  type SvidSource,
  type TlsMaterial,
} from "./tls";
