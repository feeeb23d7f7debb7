// Regenerates docs/events.md from the event catalog (libs/events/src/catalog.ts) and the
// protobuf descriptors of proto/meshid/events/v1 (via buf). The rendering lives in
// render-events-doc.ts; the docs test writes the file when MESHID_WRITE_EVENTS_DOC=1 and
// otherwise fails when docs/events.md is out of date.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const result = spawnSync("npx", ["jest", "test/events-doc.test.ts"], {
  cwd: pkg,
  stdio: "inherit",
  env: { ...process.env, MESHID_WRITE_EVENTS_DOC: "1" },
});
process.exit(result.status ?? 1);
