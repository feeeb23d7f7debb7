#!/usr/bin/env node
// `npm start`: runs the local mesh until Ctrl-C. `--check` starts it, runs the traffic checks,
// prints the summary and stops (exit 0 when every check passed, 1 otherwise).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalMesh, REPO_ROOT, type LocalMesh } from "./mesh";
import { renderSummary } from "./summary";

const USAGE = `usage: npm start [-- --check] [-- --state-dir <dir>]

Starts the meshid local mesh: nats-server, ca, agent, bundle-notifier and two demo workloads
behind NGINX sidecars (strict mTLS), state in .meshid/. Ctrl-C stops it.
  --check            start, verify, print the summary, stop; exit 0 only if every check passed
  --state-dir <dir>  state directory (default: .meshid in the repository)`;

function progress(line: string): void {
  process.stderr.write(`meshid ▸ ${line}\n`);
}

async function run(): Promise<number> {
  let values: { check?: boolean; "state-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        check: { type: "boolean" },
        "state-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`meshid: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stateDir = values["state-dir"] ?? join(REPO_ROOT, ".meshid");

  let mesh: LocalMesh | undefined;
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    mesh = await startLocalMesh({ stateDir, progress });
  } catch (err) {
    process.stderr.write(`meshid: the local mesh did not start: ${(err as Error).message}\n`);
    return 1;
  }
  const checks = await mesh.check();
  process.stdout.write(renderSummary(mesh.summary, checks, process.cwd()));
  const allOk = checks.every((c) => c.ok);
  if (values.check === true || interrupted) {
    progress("stopping …");
    await mesh.stop();
    progress("stopped");
    return allOk ? 0 : 1;
  }
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  const reason = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("Ctrl-C"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    void mesh.failed.then((why) => resolve(why));
  });
  progress(`${reason}: stopping every process …`);
  await mesh.stop();
  progress("stopped; state kept for the next `npm start`");
  return reason === "Ctrl-C" || reason === "SIGTERM" ? 0 : 1;
}

if (require.main === module) {
  run().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `meshid: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
