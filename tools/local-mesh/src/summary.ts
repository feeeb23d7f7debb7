// The human summary `npm start` prints once the local mesh is up.
import { isAbsolute, relative } from "node:path";
import type { LocalMeshSummary, MeshCheck } from "./mesh";

function when(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Renders the summary: identities, checks, services, files and meshctl commands to try. */
export function renderSummary(
  summary: LocalMeshSummary,
  checks: readonly MeshCheck[],
  cwd: string,
): string {
  // Relative to where `npm start` ran when inside it, else absolute.
  const rel = (path: string): string => {
    const r = relative(cwd, path);
    return r === "" ? "." : r.startsWith("..") || isAbsolute(r) ? path : r;
  };
  const lines: string[] = [];
  lines.push("", `meshid local mesh is up — trust domain ${summary.trustDomain}`, "");
  lines.push("Workloads (each behind an NGINX sidecar, strict mTLS):");
  for (const w of summary.workloads) {
    lines.push(
      `  ${w.name.toUpperCase()}  ${w.spiffeId}`,
      `     SVID serial ${w.serial}, expires ${when(w.notAfter)}, next rotation ≈ ${when(
        w.nextRotationApprox,
      )}`,
      `     app ${w.appUrl} · mTLS in ${w.inboundAddress} · local out ${w.outboundUrl} → ${
        w.name === "a" ? "B" : "A"
      }`,
      `     files: ${rel(w.svidDir)}/{svid.pem,svid.key,bundle.pem}, ${rel(w.nginxConf)}`,
    );
  }
  lines.push(
    summary.attestation === "separate-uids"
      ? "  Unix attestation: each sidecar runs under its own uid (unix:uid:<uid> tells A from B)."
      : "  Unix attestation: not root, so both sidecars share one uid; both entries use it and " +
          "each sidecar picks its SVID by SPIFFE ID. proxy-config serves with an SVID minted at " +
          "start (valid 7 days; the next npm start mints a new one).",
    "",
    "Checks:",
  );
  for (const c of checks) lines.push(`  ${c.ok ? "✔" : "✘"} ${c.name}: ${c.detail}`);
  lines.push("", "Services (ops: /healthz /readyz /metrics):");
  lines.push(`  nats-server      ${summary.natsUrl} (JetStream)`);
  lines.push(`  ca gRPC          ${summary.caAddress} (mTLS; admin over its Unix socket)`);
  for (const [name, url] of Object.entries(summary.services)) {
    lines.push(`  ${name.padEnd(16)} ${url}`);
  }
  lines.push(`  agent id         ${summary.agentId}`);
  if (summary.missing.length > 0) {
    lines.push(`  not built yet, not started: ${summary.missing.join(", ")}`);
  }
  lines.push(
    "",
    "Files:",
    `  state          ${rel(summary.stateDir)}/ (ports, join token: reused by the next npm start)`,
    `  CA data        ${rel(summary.stateDir)}/ca/data (SQLite store, keys 0600)`,
    `  Workload API   ${rel(summary.workloadSocket)}`,
    ...(summary.bundleFile === undefined
      ? []
      : [`  trust bundle   ${rel(summary.bundleFile)} (kept current by bundle-notifier)`]),
    `  meshctl        ${rel(summary.meshctlContext)}`,
    "",
    "Try (from this directory):",
    "  npx meshctl status",
    "  npx meshctl entry list",
    "  npx meshctl agent list",
    "  npx meshctl bundle show",
    "  npx meshctl mesh-config get",
    "  npx meshctl events tail --since 10m",
    `  npx meshctl svid fetch --socket ${rel(summary.workloadSocket)}`,
    `  curl ${summary.workloads[0]?.outboundUrl ?? ""}/hello    # A → B over mTLS`,
    "",
    "Ctrl-C stops every process; the next `npm start` reuses the state.",
    "",
  );
  return lines.join("\n");
}
