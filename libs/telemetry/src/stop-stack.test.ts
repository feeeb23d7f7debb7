import { createMemoryLogger } from "./memory-logger";
import { createStopStack } from "./stop-stack";

describe("createStopStack", () => {
  it("stop stack – aborts the signal first, runs steps last-first, a failing step does not stop the rest", async () => {
    const { logger, entries } = createMemoryLogger();
    const stack = createStopStack({ name: "svc", logger });
    const order: string[] = [];
    stack.defer(() => {
      order.push(`store (signal aborted: ${String(stack.signal.aborted)})`);
    });
    stack.defer(() => Promise.reject(new Error("socket busy")));
    stack.defer(async () => {
      await Promise.resolve();
      order.push("server");
    });
    const first = stack.stop();
    expect(stack.stop()).toBe(first);
    await first;
    expect(order).toEqual(["server", "store (signal aborted: true)"]);
    expect((stack.signal.reason as Error).message).toBe("svc stopping");
    expect(entries().map((e) => e.msg)).toEqual(["svc: a part failed to stop"]);
  });

  it("stop stack – the outer signal aborts the stack's signal with its reason, without running steps", () => {
    const { logger } = createMemoryLogger();
    const outer = new AbortController();
    const stack = createStopStack({ name: "svc", logger, signal: outer.signal });
    const step = jest.fn();
    stack.defer(step);
    outer.abort(new Error("SIGTERM"));
    expect(stack.signal.aborted).toBe(true);
    expect((stack.signal.reason as Error).message).toBe("SIGTERM");
    expect(step).not.toHaveBeenCalled();
  });
});
