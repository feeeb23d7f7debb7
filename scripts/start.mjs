// `npm start`: the local mesh (no Kubernetes needed). Makes sure the system packages are there
// (installed when root, as for the tests), builds the local-mesh tool and every service it runs,
// then hands over to tools/local-mesh/dist/main.js, forwarding the arguments (`--check`, …)
// and Ctrl-C. See docs/operations.md and the README's "Run it".
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const say = (line) => process.stderr.write(`meshid ▸ ${line}\n`);

function step(what, command, args) {
  say(what);
  const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) {
    process.stderr.write(`meshid: ${what} failed (${command} ${args.join(" ")})\n`);
    process.exit(result.status ?? 1);
  }
}

step("checking system packages (nats-server, nginx, openssl, setpriv) …", "bash", [
  join(root, "scripts", "system-deps.sh"),
  "--install",
]);

// Build the tool and every service present in the checkout (the mesh starts what is built).
const services = readdirSync(join(root, "services")).filter((name) =>
  existsSync(join(root, "services", name, "package.json")),
);
const filters = ["@meshid/local-mesh", ...services.map((s) => `@meshid/${s}`)].map(
  (pkg) => `--filter=${pkg}...`,
);
step(
  `building ${["local-mesh", ...services].join(", ")} …`,
  join(root, "node_modules", ".bin", "turbo"),
  ["run", "build", "--output-logs=errors-only", ...filters],
);

const child = spawn(
  process.execPath,
  [join(root, "tools", "local-mesh", "dist", "main.js"), ...process.argv.slice(2)],
  {
    cwd: process.cwd(),
    stdio: "inherit",
  },
);
// Ctrl-C reaches the whole foreground process group, the mesh included, which stops itself.
// A SIGINT sent to this process alone (a supervisor, `kill -INT`) must stop it too, so both
// signals are passed on as SIGTERM. The mesh listens for SIGINT and SIGTERM alike and stops
// once, so Ctrl-C (its own SIGINT plus the SIGTERM passed on) still stops it cleanly.
process.on("SIGINT", () => child.kill("SIGTERM"));
process.on("SIGTERM", () => child.kill("SIGTERM"));
child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 130)));
