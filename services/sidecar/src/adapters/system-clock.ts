import type { Clock } from "../ports";

/** The system clock; `sleep` resolves early (without error) when its signal aborts. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal.addEventListener("abort", onAbort, { once: true });
    }),
};
