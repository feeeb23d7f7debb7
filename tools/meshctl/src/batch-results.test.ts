import { batchExitCode, itemStatusJson, itemStatusText } from "./batch-results";

const ok = { code: 0, message: "", errorCode: "" };
const notFound = { code: 5, message: "entry not found", errorCode: "ca.entry.not_found" };
const exists = { code: 6, message: "duplicate", errorCode: "ca.entry.duplicate" };
const denied = { code: 7, message: "no", errorCode: "" };

describe("batch results", () => {
  test("batchExitCode – 0 when all succeed; the shared code of the failures; 1 when mixed", () => {
    expect(
      batchExitCode([
        { label: "a", status: ok },
        { label: "b", status: undefined },
      ]),
    ).toBe(0);
    expect(
      batchExitCode([
        { label: "a", status: ok },
        { label: "b", status: notFound },
      ]),
    ).toBe(3);
    expect(batchExitCode([{ label: "a", status: denied }])).toBe(5);
    expect(batchExitCode([{ label: "a", status: exists }])).toBe(1);
    expect(
      batchExitCode([
        { label: "a", status: notFound },
        { label: "b", status: denied },
      ]),
    ).toBe(1);
  });

  test("itemStatusText / itemStatusJson – status name, message and stable code", () => {
    expect(itemStatusText(ok)).toBe("ok");
    expect(itemStatusText(notFound)).toBe("entry not found (NOT_FOUND)");
    expect(itemStatusJson(ok)).toBeNull();
    expect(itemStatusJson(exists)).toEqual({
      code: "ALREADY_EXISTS",
      message: "duplicate",
      errorCode: "ca.entry.duplicate",
    });
  });
});
