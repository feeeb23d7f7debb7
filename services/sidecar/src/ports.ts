// The interfaces the sidecar's domain needs; adapters/ implements them.
import type { SvidFiles } from "./domain/svid-files";

/** Result of `nginx -t` on a candidate configuration. */
export interface NginxTestResult {
  readonly ok: boolean;
  /** What nginx printed (no key material: nginx never prints keys). */
  readonly output: string;
}

/** One written SVID directory. */
export interface SvidDirVersion {
  readonly version: number;
  /** Absolute path of the versioned directory the link now points to. */
  readonly dir: string;
}

/**
 * Writes SVID files so NGINX never sees a mix of two SVIDs: every version goes into a fresh
 * directory, then one atomic link swap makes it current.
 */
export interface SvidFileStore {
  /** Writes `files` into a new version directory and swaps the link to it. */
  swap(files: SvidFiles): Promise<SvidDirVersion>;
  /** Removes every version directory except those in `keep` (and the link's target). */
  prune(keep: readonly number[]): Promise<void>;
}

/** How an NGINX master process ended. */
export interface NginxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The NGINX the sidecar drives (a child process, or one run by someone else). */
export interface NginxController {
  /** Writes `text` next to the live config (`nginx.conf.new`) and runs `nginx -t` on it. */
  testConfig(text: string): Promise<NginxTestResult>;
  /** Makes the last tested config the live one (atomic rename). */
  installTestedConfig(): Promise<void>;
  /** Whether this controller starts NGINX itself (`spawn`) or only signals it (`signal`). */
  readonly manages: boolean;
  /**
   * Starts NGINX on the live config and resolves once a worker runs (`spawn`); checks that
   * the external master runs (`signal`).
   * @throws MeshidError `sidecar.nginx.start_failed` with NGINX's output.
   */
  start(): Promise<void>;
  /**
   * Sends SIGHUP and resolves once a new worker runs, i.e. NGINX loaded the live config and
   * the current SVID files.
   * @throws MeshidError `sidecar.nginx.reload_failed` when the master is gone or no new worker
   *   appeared in time (NGINX kept the old configuration).
   */
  reload(): Promise<void>;
  /** Whether the master process runs. */
  running(): boolean;
  /** Calls `listener` when a master this controller started exits. Returns an unsubscribe. */
  onExit(listener: (exit: NginxExit) => void): () => void;
  /** Stops a master this controller started (no-op for `signal`). Never rejects. */
  stop(): Promise<void>;
}

/** One rendering of the pod's NGINX configuration. */
export interface ProxyConfigUpdate {
  /** Increases with every change of `nginxConf`. */
  readonly generation: number;
  /** The whole nginx.conf. */
  readonly nginxConf: string;
  /** The pod's effective mTLS mode (`strict`, `permissive`, `off`), or `static` for a file. */
  readonly effectiveMode: string;
  /** Why that mode (`global`, `annotation`, …); empty for a file. */
  readonly modeSource: string;
}

/** Time for schedules; tests pass a fake. */
export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or early (without error) when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}
