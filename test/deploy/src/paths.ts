// Where the deployment files live, relative to this package.
import { join } from "node:path";

/** The repository root. */
export const REPO_ROOT = join(__dirname, "..", "..", "..");
/** `deploy/`: charts, helmfile.yaml, values/, crds/, sidecar/. */
export const DEPLOY_DIR = join(REPO_ROOT, "deploy");
/** `deploy/charts/`. */
export const CHARTS_DIR = join(DEPLOY_DIR, "charts");
/** `deploy/values/`. */
export const VALUES_DIR = join(DEPLOY_DIR, "values");
/** `deploy/crds/`: the CRDs, which the meshid-crds chart installs through a symbolic link. */
export const CRDS_DIR = join(DEPLOY_DIR, "crds");
/** The namespace every test render uses (helmfile installs into `meshid`). */
export const TEST_NAMESPACE = "meshid";

/** The default values files (helmfile's `default` environment). */
export const DEFAULT_VALUES: readonly string[] = [join(VALUES_DIR, "default.yaml")];
/** The HA values files (helmfile's `ha` environment: default.yaml, then ha.yaml). */
export const HA_VALUES: readonly string[] = [
  join(VALUES_DIR, "default.yaml"),
  join(VALUES_DIR, "ha.yaml"),
];
/** The small values files (helmfile's `small` environment: default.yaml, then small.yaml). */
export const SMALL_VALUES: readonly string[] = [
  join(VALUES_DIR, "default.yaml"),
  join(VALUES_DIR, "small.yaml"),
];
