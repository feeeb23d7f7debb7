import { isMeshidError } from "@meshid/errors";
import {
  checkFieldSelector,
  matchesFieldSelector,
  matchesLabelSelector,
  parseFieldSelector,
  parseLabelSelector,
} from "./selectors";

const labels = { app: "web", tier: "front", "example.com/team": "a", replicas: "3" };

function matches(selector: string, l: Record<string, string> | undefined = labels): boolean {
  return matchesLabelSelector(parseLabelSelector(selector), l);
}

describe("label selectors", () => {
  it("label selectors – equality, inequality and double equals", () => {
    expect(matches("app=web")).toBe(true);
    expect(matches("app==web")).toBe(true);
    expect(matches("app=db")).toBe(false);
    expect(matches("app!=db")).toBe(true);
    expect(matches("missing!=x")).toBe(true);
    expect(matches("example.com/team=a")).toBe(true);
  });

  it("label selectors – set-based in / notin, exists and !key, combined with commas", () => {
    expect(matches("app in (db, web)")).toBe(true);
    expect(matches("app in (db)")).toBe(false);
    expect(matches("app notin (db)")).toBe(true);
    expect(matches("missing notin (db)")).toBe(true);
    expect(matches("tier")).toBe(true);
    expect(matches("!tier")).toBe(false);
    expect(matches("!missing")).toBe(true);
    expect(matches("app in (web,db),tier,!missing,app!=x")).toBe(true);
    expect(matches("app in (web,db),missing")).toBe(false);
    expect(matches("replicas>2")).toBe(true);
    expect(matches("replicas<2")).toBe(false);
  });

  it("label selectors – the empty selector matches everything, including unlabelled objects", () => {
    expect(parseLabelSelector("  ")).toEqual([]);
    expect(matches("", undefined)).toBe(true);
    expect(matches("app", {})).toBe(false);
    expect(matchesLabelSelector(parseLabelSelector("app"), undefined)).toBe(false);
  });

  it("label selectors – malformed selectors throw kube.selector.invalid", () => {
    for (const bad of ["app=", "=web", "app in ()", "a b", "app=we b", ","]) {
      let thrown: unknown;
      try {
        parseLabelSelector(bad);
      } catch (err) {
        thrown = err;
      }
      if (bad === "app=") {
        // An empty value is valid in Kubernetes (label present with the empty string).
        expect(thrown).toBeUndefined();
        continue;
      }
      expect(isMeshidError(thrown, "kube.selector.invalid")).toBe(true);
    }
  });
});

describe("field selectors", () => {
  const pod = {
    metadata: { name: "web", namespace: "default" },
    spec: { nodeName: "node-1" },
    status: { phase: "Running" },
  };

  it("field selectors – =, == and != on dotted paths, missing fields compare as empty", () => {
    const m = (s: string) => matchesFieldSelector(parseFieldSelector(s), pod);
    expect(m("spec.nodeName=node-1")).toBe(true);
    expect(m("spec.nodeName==node-1,status.phase=Running")).toBe(true);
    expect(m("spec.nodeName!=node-1")).toBe(false);
    expect(m("metadata.namespace=default,metadata.name!=db")).toBe(true);
    expect(m("status.podIP=")).toBe(true);
  });

  it("field selectors – escaped commas and equals stay in the value", () => {
    expect(parseFieldSelector("metadata.name=a\\,b\\=c")).toEqual([
      { field: "metadata.name", op: "=", value: "a,b=c" },
    ]);
  });

  it("field selectors – unsupported fields are rejected with the real server's message", () => {
    expect(() => checkFieldSelector(parseFieldSelector("spec.image=x"), ["metadata.name"])).toThrow(
      "field label not supported: spec.image",
    );
    expect(() => parseFieldSelector("nonsense")).toThrow(/invalid selector/);
  });
});
