import { MeshidError, type ErrorKind } from "@meshid/errors";
import { ClientError, Metadata, Status } from "nice-grpc-common";
import {
  ERROR_CODE_TRAILER_KEY,
  errorKindForStatus,
  meshidErrorFromClientError,
  statusForErrorKind,
} from "./errors";

const EXPECTED: Record<ErrorKind, Status> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  permission_denied: Status.PERMISSION_DENIED,
  unauthenticated: Status.UNAUTHENTICATED,
  failed_precondition: Status.FAILED_PRECONDITION,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  aborted: Status.ABORTED,
  unimplemented: Status.UNIMPLEMENTED,
  internal: Status.INTERNAL,
};

describe("statusForErrorKind", () => {
  it.each(Object.entries(EXPECTED) as [ErrorKind, Status][])(
    "errors – kind %s maps to its gRPC status",
    (kind, status) => {
      expect(statusForErrorKind(kind)).toBe(status);
      expect(errorKindForStatus(status)).toBe(kind);
    },
  );

  it("errors – statuses without a kind map to internal, CANCELLED to aborted", () => {
    expect(errorKindForStatus(Status.UNKNOWN)).toBe("internal");
    expect(errorKindForStatus(Status.DATA_LOSS)).toBe("internal");
    expect(errorKindForStatus(Status.CANCELLED)).toBe("aborted");
  });
});

describe("meshidErrorFromClientError", () => {
  it("errors – rebuilds kind and message from a ClientError", () => {
    const clientError = new ClientError("/pkg.Svc/Get", Status.NOT_FOUND, "no such entry");
    const err = meshidErrorFromClientError(clientError);
    expect(err).toBeInstanceOf(MeshidError);
    expect(err.kind).toBe("not_found");
    expect(err.code).toBe("grpc.not_found");
    expect(err.message).toBe("no such entry");
    expect(err.cause).toBe(clientError);
  });

  it("errors – takes the stable code from the trailer when given", () => {
    const trailer = Metadata({ [ERROR_CODE_TRAILER_KEY]: "entry.not_found" });
    const err = meshidErrorFromClientError(
      new ClientError("/pkg.Svc/Get", Status.NOT_FOUND, "no such entry"),
      trailer,
    );
    expect(err.code).toBe("entry.not_found");
  });

  it("errors – keeps MeshidErrors and wraps anything else as internal", () => {
    const original = new MeshidError("unavailable", "x.y", "down");
    expect(meshidErrorFromClientError(original)).toBe(original);
    expect(meshidErrorFromClientError(new Error("boom")).kind).toBe("internal");
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(meshidErrorFromClientError(abort).kind).toBe("aborted");
  });
});
