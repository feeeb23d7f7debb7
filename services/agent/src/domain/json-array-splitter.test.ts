import { createJsonArraySplitter, type JsonArraySplitResult } from "./json-array-splitter";

/** Splits `text` fed in chunks of `chunkSize` bytes; returns the parsed elements and the result. */
function split(
  text: string,
  chunkSize = Number.MAX_SAFE_INTEGER,
  key = "items",
): { elements: unknown[]; result: JsonArraySplitResult } {
  const elements: unknown[] = [];
  const splitter = createJsonArraySplitter(key, (bytes) => {
    elements.push(JSON.parse(bytes.toString("utf8")));
  });
  const bytes = Buffer.from(text, "utf8");
  for (let i = 0; i < bytes.length; i += chunkSize) {
    splitter.push(bytes.subarray(i, Math.min(bytes.length, i + chunkSize)));
  }
  return { elements, result: splitter.end() };
}

const TRICKY_POD = {
  metadata: {
    name: 'a"b\\c}{][',
    labels: { "x/y": "ünïcödé ✓ 🚀", items: "[not the list]" },
    items: [{ nested: true }],
  },
  spec: { containers: [{ name: "app", args: ["{", "}", "[", "]", '\\"'] }] },
};

describe("createJsonArraySplitter", () => {
  const list = {
    kind: "PodList",
    apiVersion: "v1",
    metadata: { items: [{ decoy: 1 }] },
    note: "items",
    items: [TRICKY_POD, { metadata: { name: "p2" } }, {}],
  };
  const text = JSON.stringify(list, null, 1);

  it.each([1, 2, 7, 64, Number.MAX_SAFE_INTEGER])(
    "json array splitter – the top-level array's elements, whatever the chunk size (%d)",
    (chunkSize) => {
      const { elements, result } = split(text, chunkSize);
      expect(result).toEqual({ kind: "ok", elements: 3 });
      expect(elements).toEqual(list.items);
    },
  );

  it("json array splitter – strings full of quotes, backslashes and brackets, cut anywhere", () => {
    const alphabet = ['"', "\\", "{", "}", "[", "]", ",", ":", "a", "é", "🚀"];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const text = (): string =>
      Array.from({ length: random(12) }, () => alphabet[random(alphabet.length)]).join("");
    const items = Array.from({ length: 40 }, () => ({
      [text()]: text(),
      k: [text(), { [text()]: text() }],
    }));
    const doc = JSON.stringify({ [text()]: text(), items, after: text() });
    for (const chunkSize of [1, 2, 3, 5, 13, 64]) {
      const { elements, result } = split(doc, chunkSize);
      expect(result).toEqual({ kind: "ok", elements: items.length });
      expect(elements).toEqual(items);
    }
  });

  it("json array splitter – an empty array is ok with no elements", () => {
    expect(split('{"items":[]}')).toEqual({ elements: [], result: { kind: "ok", elements: 0 } });
  });

  it("json array splitter – elements that are not objects are skipped", () => {
    const { elements, result } = split('{"items":[1,"{}",null,[{"a":1}],{"b":2}]}', 3);
    expect(elements).toEqual([{ b: 2 }]);
    expect(result).toEqual({ kind: "ok", elements: 1 });
  });

  it.each([
    ["no such key", '{"kind":"PodList","metadata":{"items":[]}}'],
    ["the key names no array", '{"items":{"a":[]}}'],
    ["the key is a value, not a key", '{"kind":"items","x":[{"a":1}]}'],
    ["a longer key", '{"itemsx":[{"a":1}]}'],
  ])("json array splitter – %s is missing", (_, doc) => {
    expect(split(doc).result).toEqual({ kind: "missing" });
  });

  it.each([
    ["truncated", text.slice(0, text.length - 3)],
    ["inside a string", '{"items":[{"a":"b'],
    ["trailing bytes", '{"items":[]} x'],
    ["a second document", '{"items":[]}{}'],
    ["a top-level array", '[{"items":[]}]'],
    ["too many closings", '{"items":[]}}'],
    ["empty", ""],
  ])("json array splitter – %s is malformed", (_, doc) => {
    expect(split(doc, 5).result).toEqual({ kind: "malformed" });
  });

  it("json array splitter – an error thrown by the callback comes out of push", () => {
    const splitter = createJsonArraySplitter("items", () => {
      throw new Error("bad element");
    });
    expect(() => splitter.push(Buffer.from('{"items":[{"a":}]}'))).toThrow("bad element");
  });

  it("json array splitter – an element split across chunks is handed over whole, copied", () => {
    const seen: string[] = [];
    const splitter = createJsonArraySplitter("items", (bytes) => seen.push(bytes.toString()));
    const first = Buffer.from('{"items":[{"a":"12');
    splitter.push(first);
    first.fill(0x20); // the caller reuses its buffer
    splitter.push(Buffer.from('34"}]}'));
    expect(seen).toEqual(['{"a":"1234"}']);
    expect(splitter.end()).toEqual({ kind: "ok", elements: 1 });
  });
});
