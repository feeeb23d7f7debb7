// A target apply that wrote some objects and then failed on others.
import { MeshidError, isMeshidError } from "@meshid/errors";
import type { TargetWrite } from "../ports";

/** Code of {@link PartialTargetFailure}. */
export const PARTIAL_TARGET_FAILURE_CODE = "bundle_notifier.target.partial";

/**
 * Thrown by a target that writes several objects when some were written before another
 * failed: the dispatcher still counts and announces (`bundle.published`) the `writes`, then
 * retries the apply like any failure. Its message is the first failure's.
 */
export class PartialTargetFailure extends MeshidError {
  /** The objects written before the failure. */
  readonly writes: readonly TargetWrite[];

  constructor(writes: readonly TargetWrite[], cause: Error) {
    super(
      isMeshidError(cause) ? cause.kind : "unavailable",
      PARTIAL_TARGET_FAILURE_CODE,
      cause.message,
      { cause },
    );
    this.name = "PartialTargetFailure";
    this.writes = writes;
  }
}
