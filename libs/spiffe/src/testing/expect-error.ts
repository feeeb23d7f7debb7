import { type MeshidError, isMeshidError } from "@meshid/errors";

/** What a test expects of a thrown {@link MeshidError}. */
export interface ExpectedError {
  code: string;
  rule?: string;
  /** Substring the message must contain. */
  message?: string;
}

function check(caught: unknown, expected: ExpectedError): MeshidError {
  if (!isMeshidError(caught)) {
    throw new Error(`expected a MeshidError ${expected.code}, got ${String(caught)}`);
  }
  expect(caught.kind).toBe("invalid_argument");
  expect(caught.code).toBe(expected.code);
  if (expected.rule !== undefined) {
    expect(caught.details.rule).toBe(expected.rule);
  }
  if (expected.message !== undefined) {
    expect(caught.message).toContain(expected.message);
  }
  return caught;
}

/** Runs `fn`, asserts it throws an `invalid_argument` MeshidError as expected, returns it. */
export function expectMeshidError(fn: () => unknown, expected: ExpectedError): MeshidError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  return check(caught, expected);
}

/** Awaits `promise`, asserts it rejects with an `invalid_argument` MeshidError as expected. */
export async function expectMeshidRejection(
  promise: Promise<unknown>,
  expected: ExpectedError,
): Promise<MeshidError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  return check(caught, expected);
}
