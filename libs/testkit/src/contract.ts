/// <reference types="jest" />
// Uses the jest globals (describe/beforeEach/afterEach) of the test file that calls it.

/** One implementation of a port, as run by {@link describeContract}. */
export interface ContractAdapter<T> {
  /** Name shown in the test output, e.g. "memory" or "postgres". */
  readonly name: string;
  /** Creates a fresh subject for one test, and how to dispose of it. */
  create(): Promise<ContractSubject<T>>;
}

/** A subject created by {@link ContractAdapter.create}. */
export interface ContractSubject<T> {
  /** The implementation under test. */
  readonly subject: T;
  /** Releases what create() set up (temp dirs, connections, servers). */
  cleanup(): Promise<void>;
}

/**
 * Runs the same jest suite against every adapter of a port: one `describe("<suiteName> –
 * <adapter>")` per adapter, a fresh subject created in `beforeEach` and cleaned up in
 * `afterEach`. Inside `suite`, call `get()` in a test (not at definition time) to obtain the
 * current subject. Call at module level of a test file, like `describe`.
 *
 * @example
 * describeContract("KeyManager", [memoryAdapter, diskAdapter], (get) => {
 *   it("key manager – generates a key", async () => { await get().generateKey(...); });
 * });
 */
export function describeContract<T>(
  suiteName: string,
  adapters: readonly ContractAdapter<T>[],
  suite: (get: () => T) => void,
): void {
  if (adapters.length === 0) {
    throw new Error(`describeContract(${suiteName}): no adapters given`);
  }
  for (const adapter of adapters) {
    describe(`${suiteName} – ${adapter.name}`, () => {
      let current: ContractSubject<T> | undefined;

      beforeEach(async () => {
        current = await adapter.create();
      });

      afterEach(async () => {
        const created = current;
        current = undefined;
        await created?.cleanup();
      });

      suite(() => {
        if (current === undefined) {
          throw new Error(
            `describeContract(${suiteName} – ${adapter.name}): the subject exists only while a test runs; call get() inside it/beforeEach, not in describe`,
          );
        }
        return current.subject;
      });
    });
  }
}
