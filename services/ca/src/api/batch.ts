// Helpers shared by the batch handlers: size bounds and per-item validation.
import { MeshidError } from "@meshid/errors";
import type { SpiffeId } from "@meshid/spiffe";
import type { BatchItemResult } from "../domain/types";

/** Error code of a batch over the configured size. */
export const BATCH_TOO_LARGE_CODE = "ca.batch.too_large";
/** Error code of an empty batch. */
export const BATCH_EMPTY_CODE = "ca.api.batch_empty";
/** Error code of a SPIFFE ID outside the CA's trust domain. */
export const FOREIGN_TRUST_DOMAIN_CODE = "ca.api.foreign_trust_domain";

/**
 * Refuses a batch of `size` items above `max` (resource_exhausted `ca.api.batch_too_large`) or
 * an empty one (invalid_argument `ca.api.batch_empty`).
 */
export function checkBatchSize(size: number, max: number): void {
  if (size === 0) {
    throw new MeshidError("invalid_argument", BATCH_EMPTY_CODE, "the batch is empty");
  }
  if (size > max) {
    throw new MeshidError(
      "resource_exhausted",
      BATCH_TOO_LARGE_CODE,
      `the batch has ${size} items; at most ${max} are allowed`,
    );
  }
}

/**
 * Checks that `id` belongs to `trustDomain`.
 * @throws MeshidError invalid_argument `ca.api.foreign_trust_domain`.
 */
export function checkTrustDomain(id: SpiffeId, trustDomain: string, field: string): void {
  if (id.trustDomain.name !== trustDomain) {
    throw new MeshidError(
      "invalid_argument",
      FOREIGN_TRUST_DOMAIN_CODE,
      `${field} must be in trust domain "${trustDomain}"`,
    );
  }
}

/**
 * Converts every item with `convert`; items that fail conversion get their error as result, the
 * rest go to `apply` together (one domain call), and the results are merged back in input order.
 */
export async function applyBatch<In, Valid, Out>(
  items: readonly In[],
  convert: (item: In) => Valid,
  apply: (valid: Valid[]) => Promise<BatchItemResult<Out>[]>,
): Promise<BatchItemResult<Out>[]> {
  const results: (BatchItemResult<Out> | undefined)[] = items.map(() => undefined);
  const valid: Valid[] = [];
  const positions: number[] = [];
  items.forEach((item, i) => {
    try {
      valid.push(convert(item));
      positions.push(i);
    } catch (err) {
      results[i] = { ok: false, error: toMeshidError(err) };
    }
  });
  if (valid.length > 0) {
    const applied = await apply(valid);
    positions.forEach((pos, j) => {
      results[pos] = applied[j] ?? {
        ok: false,
        error: new MeshidError("internal", "ca.api.missing_result", "no result for item"),
      };
    });
  }
  return results as BatchItemResult<Out>[];
}

function toMeshidError(err: unknown): MeshidError {
  return err instanceof MeshidError
    ? err
    : new MeshidError("internal", "ca.api.internal", "internal error", { cause: err });
}
