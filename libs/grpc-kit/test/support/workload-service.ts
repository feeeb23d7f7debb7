import { MeshidError } from "@meshid/errors";
import { type spiffeWorkload } from "@meshid/proto";
import type { CallContext } from "nice-grpc-common";
import type { PeerIdentityContext } from "../../src/peer-identity";

type Context = CallContext & PeerIdentityContext;
type JwtSvidRequest = spiffeWorkload.JWTSVIDRequest;
type JwtSvidResponse = spiffeWorkload.JWTSVIDResponse;

/** Behaviour of FetchJWTSVID in {@link createTestWorkloadService}. */
export type FetchJwtSvidBehaviour = (
  request: JwtSvidRequest,
  context: Context,
) => Promise<JwtSvidResponse>;

/**
 * Returns a SPIFFE Workload API implementation for tests: FetchJWTSVID runs `fetchJwtSvid`
 * (default: answers with the caller's SPIFFE ID, or "" when anonymous); the other methods throw
 * `unimplemented`.
 */
export function createTestWorkloadService(
  fetchJwtSvid: FetchJwtSvidBehaviour = echoCaller,
): spiffeWorkload.SpiffeWorkloadAPIServiceImplementation<PeerIdentityContext> {
  const notImplemented = (): MeshidError =>
    new MeshidError("unimplemented", "test.unimplemented", "not implemented in tests");
  const unimplemented = (): never => {
    throw notImplemented();
  };
  return {
    fetchJWTSVID: fetchJwtSvid,
    // eslint-disable-next-line require-yield
    async *fetchX509SVID() {
      await Promise.resolve();
      unimplemented();
    },
    // eslint-disable-next-line require-yield
    async *fetchX509Bundles() {
      await Promise.resolve();
      unimplemented();
    },
    // eslint-disable-next-line require-yield
    async *fetchJWTBundles() {
      await Promise.resolve();
      unimplemented();
    },
    validateJWTSVID: () => Promise.reject(notImplemented()),
  };
}

/** FetchJWTSVID behaviour that reports the caller's SPIFFE ID. */
export function echoCaller(_request: JwtSvidRequest, context: Context): Promise<JwtSvidResponse> {
  return Promise.resolve({
    svids: [{ spiffeId: context.callerSpiffeId?.toString() ?? "", svid: "", hint: "" }],
  });
}
