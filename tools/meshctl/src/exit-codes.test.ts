import { MeshidError } from "@meshid/errors";
import { ExitCode, connectError, exitCodeForError, usageError } from "./exit-codes";

describe("exit codes", () => {
  test("exitCodeForError – usage, connect, not found, permission, server failures", () => {
    expect(exitCodeForError(usageError("bad flag"))).toBe(ExitCode.usage);
    expect(exitCodeForError(connectError("no socket"))).toBe(ExitCode.cannotConnect);
    expect(exitCodeForError(new MeshidError("not_found", "ca.entry.not_found", "x"))).toBe(
      ExitCode.notFound,
    );
    expect(
      exitCodeForError(new MeshidError("permission_denied", "grpc.permission_denied", "x")),
    ).toBe(ExitCode.permissionDenied);
    expect(exitCodeForError(new MeshidError("unauthenticated", "grpc.unauthenticated", "x"))).toBe(
      ExitCode.permissionDenied,
    );
    // A server that answered INVALID_ARGUMENT or UNAVAILABLE refused the request: 1.
    expect(
      exitCodeForError(new MeshidError("invalid_argument", "grpc.invalid_argument", "x")),
    ).toBe(ExitCode.failed);
    expect(exitCodeForError(new MeshidError("unavailable", "grpc.unavailable", "x"))).toBe(
      ExitCode.failed,
    );
    expect(exitCodeForError(new Error("boom"))).toBe(ExitCode.failed);
  });

  test("exitCodeForError – validation errors of the shared libraries are usage errors", () => {
    expect(exitCodeForError(new MeshidError("invalid_argument", "spiffe.id.invalid", "x"))).toBe(
      ExitCode.usage,
    );
    expect(
      exitCodeForError(new MeshidError("invalid_argument", "config.duration.invalid", "x")),
    ).toBe(ExitCode.usage);
  });
});
