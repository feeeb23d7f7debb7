import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SERVICE_NODE_FLAGS } from "@meshid/testkit";
import { DEPLOY_DIR, REPO_ROOT } from "../src/paths";

const dockerfile = readFileSync(join(DEPLOY_DIR, "Dockerfile"), "utf8");

describe("image", () => {
  it("image – the Dockerfile runs every service with the Node flags tests and benchmarks use", () => {
    const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
    expect(entrypoint).toBeDefined();
    expect(JSON.parse(entrypoint ?? "[]")).toEqual([
      "node",
      ...SERVICE_NODE_FLAGS,
      "/usr/local/lib/meshid-service.js",
    ]);
  });

  it("image – the control-plane image carries the services it hosts, the others only their own", () => {
    // node_modules/@meshid/* are links to services/*: every service package the control plane
    // depends on must be in the image next to it.
    const pkg = JSON.parse(
      readFileSync(join(REPO_ROOT, "services", "control-plane", "package.json"), "utf8"),
    ) as { dependencies: Record<string, string> };
    const hosted = Object.keys(pkg.dependencies)
      .filter((d) => d.startsWith("@meshid/"))
      .map((d) => d.slice("@meshid/".length))
      .filter((name) => existsSync(join(REPO_ROOT, "services", name)));
    const extra =
      /\[ "\$\{SERVICE\}" = "control-plane" \]; then services="\$services ([a-z -]+)"/.exec(
        dockerfile,
      )?.[1];
    expect((extra ?? "").split(" ").sort()).toEqual([...hosted].sort());
    expect(dockerfile).toMatch(/^RUN services="\$\{SERVICE\}";/m);
    expect(dockerfile).toContain("COPY --from=build /out/services /opt/meshid/services\n");
    expect(dockerfile).not.toMatch(/COPY --from=build \/src\/services/);
  });
});
