import { createMemoryLogger } from "./memory-logger";

describe("createMemoryLogger", () => {
  it("memory logger – keeps parsed, redacted lines until cleared", () => {
    const memory = createMemoryLogger({ service: "agent" });
    memory.logger.child({ component: "attestor" }).debug({ token: "abc" }, "attested");
    expect(memory.entries()).toEqual([
      expect.objectContaining({
        service: "agent",
        component: "attestor",
        level: "debug",
        token: "[REDACTED]",
        msg: "attested",
      }),
    ]);
    expect(memory.text()).not.toContain("abc");
    memory.clear();
    expect(memory.entries()).toEqual([]);
  });
});
