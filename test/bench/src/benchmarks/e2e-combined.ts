// The e2e burst with the control plane in one process: `meshid-control-plane` hosts ca,
// registrar, bundle-notifier and proxy-config (each reading its own config file, as on its
// own); the agent stays its own process. Same burst, same metrics as `e2e`, so the two
// topologies compare key by key (`controlPlaneRssMb` sums the two processes here).
import type { Benchmark } from "../benchmark";
import { runE2e } from "./e2e";

/** See the file comment. */
export const benchmark: Benchmark = {
  name: "e2e-combined",
  run: (ctx) => runE2e(ctx, "combined"),
};
