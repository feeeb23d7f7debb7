// The local mesh's persisted state (`.meshid/state.json`): the ports picked at the first start
// and the agent's join token, so a second `npm start` finds the same mesh again.
import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { getFreePort } from "@meshid/testkit";

/** Trust domain of the local mesh. */
export const LOCAL_MESH_TRUST_DOMAIN = "meshid.local";

/** Every port the local mesh listens on (all on 127.0.0.1). */
export const LOCAL_MESH_PORT_NAMES = [
  "nats",
  "ca",
  "caOps",
  "agentOps",
  "bundleNotifierOps",
  "proxyConfig",
  "proxyConfigOps",
  "appA",
  "appB",
  "inboundA",
  "inboundB",
  "outboundA",
  "outboundB",
  "sidecarOpsA",
  "sidecarOpsB",
] as const;

/** Name of one port of {@link LOCAL_MESH_PORT_NAMES}. */
export type LocalMeshPortName = (typeof LOCAL_MESH_PORT_NAMES)[number];

/** What `.meshid/state.json` holds. */
export interface LocalMeshState {
  readonly version: 1;
  readonly trustDomain: string;
  readonly ports: Readonly<Record<LocalMeshPortName, number>>;
  /** The join token the agent attested with (single use: a new one replaces it when needed). */
  readonly joinToken?: string;
  /** When the state was first written (ISO 8601). */
  readonly createdAt: string;
}

/** Path of the state file in `stateDir`. */
export function stateFile(stateDir: string): string {
  return join(stateDir, "state.json");
}

/** Writes the state atomically (mode 0600). */
export async function saveState(stateDir: string, state: LocalMeshState): Promise<void> {
  const file = stateFile(stateDir);
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/**
 * Loads `<stateDir>/state.json`, or creates it with free ports. Ports missing from an older
 * state (a service added since) are picked and saved; existing ones are kept.
 *
 * @returns the state and whether it existed before.
 */
export async function loadOrCreateState(
  stateDir: string,
): Promise<{ state: LocalMeshState; reused: boolean }> {
  const file = stateFile(stateDir);
  let previous: Partial<LocalMeshState> | undefined;
  if (existsSync(file)) {
    try {
      previous = JSON.parse(await readFile(file, "utf8")) as Partial<LocalMeshState>;
    } catch (err) {
      throw new MeshidError(
        "failed_precondition",
        "local_mesh.state.invalid",
        `${file} is not valid JSON (${(err as Error).message}); remove ${stateDir} to start afresh`,
      );
    }
  }
  const ports = { ...(previous?.ports ?? {}) } as Record<LocalMeshPortName, number>;
  const taken = new Set(Object.values(ports));
  for (const name of LOCAL_MESH_PORT_NAMES) {
    if (typeof ports[name] === "number") continue;
    let port = await getFreePort();
    while (taken.has(port)) port = await getFreePort();
    taken.add(port);
    ports[name] = port;
  }
  const state: LocalMeshState = {
    version: 1,
    trustDomain: previous?.trustDomain ?? LOCAL_MESH_TRUST_DOMAIN,
    ports,
    ...(previous?.joinToken === undefined ? {} : { joinToken: previous.joinToken }),
    createdAt: previous?.createdAt ?? new Date().toISOString(),
  };
  await saveState(stateDir, state);
  return { state, reused: previous !== undefined };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * Checks that every port of the state is free.
 *
 * @throws MeshidError `local_mesh.ports.taken` naming each taken port (another `npm start`
 *   running, or another program).
 */
export async function requirePortsFree(stateDir: string, state: LocalMeshState): Promise<void> {
  const taken: string[] = [];
  for (const name of LOCAL_MESH_PORT_NAMES) {
    const port = state.ports[name];
    if (!(await portFree(port))) taken.push(`${name} ${port}`);
  }
  if (taken.length > 0) {
    throw new MeshidError(
      "failed_precondition",
      "local_mesh.ports.taken",
      `ports of the local mesh are in use: ${taken.join(", ")}. Is another \`npm start\` ` +
        `running? Stop it, or remove ${stateFile(stateDir)} to pick new ports.`,
    );
  }
}
