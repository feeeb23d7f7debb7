import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SERVICE_NODE_FLAGS } from "@meshid/testkit";
import { DEPLOY_DIR } from "../src/paths";

describe("image", () => {
  it("image – the Dockerfile runs every service with the Node flags tests and benchmarks use", () => {
    const dockerfile = readFileSync(join(DEPLOY_DIR, "Dockerfile"), "utf8");
    const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
    expect(entrypoint).toBeDefined();
    expect(JSON.parse(entrypoint ?? "[]")).toEqual([
      "node",
      ...SERVICE_NODE_FLAGS,
      "/usr/local/lib/meshid-service.js",
    ]);
  });
});
