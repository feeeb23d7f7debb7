import { hash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { MeshidError } from "@meshid/errors";
import { createJsonArraySplitter } from "../domain/json-array-splitter";

/** Error code of {@link KubeletClient.listPods} when the kubelet cannot be asked. */
export const KUBELET_UNAVAILABLE_CODE = "agent.attestation.kubelet_unavailable";

/** Default of {@link CreateKubeletClientParams.timeoutMs}. */
export const DEFAULT_KUBELET_TIMEOUT_MS = 5000;

/** Largest `/pods` answer accepted (bytes). */
export const MAX_KUBELET_RESPONSE_BYTES = 64 * 1024 * 1024;

/** One container status of a {@link KubeletPod}. */
export interface KubeletContainerStatus {
  readonly name?: string;
  /** `<runtime>://<64hex>`, e.g. `containerd://…`, `cri-o://…`, `docker://…`. */
  readonly containerID?: string;
  readonly image?: string;
  readonly imageID?: string;
}

/** The fields of a Kubernetes `V1Pod` the k8s attestor reads (a structural subset). */
export interface KubeletPod {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly { readonly kind?: string; readonly name?: string }[];
  };
  readonly spec?: {
    readonly nodeName?: string;
    readonly serviceAccountName?: string;
    readonly serviceAccount?: string;
    readonly containers?: readonly { readonly name?: string; readonly image?: string }[];
    readonly initContainers?: readonly { readonly name?: string; readonly image?: string }[];
  };
  readonly status?: {
    readonly containerStatuses?: readonly KubeletContainerStatus[];
    readonly initContainerStatuses?: readonly KubeletContainerStatus[];
  };
}

/** The kubelet's pod list on this node (`GET /pods`). */
export interface KubeletClient {
  /**
   * The pods the kubelet runs now, with only the {@link KubeletPod} fields. Each pod of the
   * answer is parsed on its own as it arrives (never the whole answer as one string or object
   * tree), and a pod whose JSON is unchanged since the last answer is the same object as then.
   *
   * @throws MeshidError `unavailable` / `agent.attestation.kubelet_unavailable` when the
   *   kubelet cannot be reached, answers other than 200, times out or sends no pod list.
   */
  listPods(signal?: AbortSignal): Promise<KubeletPod[]>;
}

/** Parameters of {@link createKubeletClient}. */
export interface CreateKubeletClientParams {
  /** Base URL, e.g. `https://127.0.0.1:10250` (authenticated port) or `http://…:10255`. */
  readonly url: string;
  /** Bearer token (e.g. the agent's service-account token), or a function read per request. */
  readonly token?: string | (() => string | Promise<string>);
  /** CA (PEM) that signed the kubelet's serving certificate; default the system roots. */
  readonly caPem?: string;
  /** Skip verifying the kubelet's certificate (self-signed kubelet certs). Default false. */
  readonly insecureSkipVerify?: boolean;
  /** Whole-request timeout in milliseconds. Default {@link DEFAULT_KUBELET_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

function unavailable(message: string, cause?: unknown): MeshidError {
  return new MeshidError("unavailable", KUBELET_UNAVAILABLE_CODE, message, { cause });
}

type Json = Readonly<Record<string, unknown>>;

function objectOf(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Json)
    : undefined;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Copies the string-valued properties `keys` of `value` (absent ones stay absent). */
function pick<K extends string>(
  value: unknown,
  keys: readonly K[],
): { [P in K]?: string } | undefined {
  const from = objectOf(value);
  if (from === undefined) return undefined;
  const out: { [P in K]?: string } = {};
  for (const key of keys) {
    const v = stringOf(from[key]);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function pickList<K extends string>(
  value: unknown,
  keys: readonly K[],
): { [P in K]?: string }[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: { [P in K]?: string }[] = [];
  for (const item of value as unknown[]) {
    const picked = pick(item, keys);
    if (picked !== undefined) out.push(picked);
  }
  return out;
}

const CONTAINER_KEYS = ["name", "image"] as const;
const STATUS_KEYS = ["name", "containerID", "image", "imageID"] as const;
const OWNER_KEYS = ["kind", "name"] as const;

/**
 * The {@link KubeletPod} fields of one parsed `/pods` item, copied (nothing else of the pod is
 * kept: no managed fields, annotations, env or volumes); undefined when `value` is no object.
 * Fields of the wrong JSON type are left out.
 */
export function kubeletPodFromJson(value: unknown): KubeletPod | undefined {
  const pod = objectOf(value);
  if (pod === undefined) return undefined;
  const metadata = objectOf(pod.metadata);
  const spec = objectOf(pod.spec);
  const status = objectOf(pod.status);
  let labels: Record<string, string> | undefined;
  const rawLabels = objectOf(metadata?.labels);
  if (rawLabels !== undefined) {
    labels = {};
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === "string") labels[k] = v;
  }
  const compact = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return compact({
    metadata:
      metadata === undefined
        ? undefined
        : compact({
            ...pick(metadata, ["name", "namespace", "uid"] as const),
            labels,
            ownerReferences: pickList(metadata.ownerReferences, OWNER_KEYS),
          }),
    spec:
      spec === undefined
        ? undefined
        : compact({
            ...pick(spec, ["nodeName", "serviceAccountName", "serviceAccount"] as const),
            containers: pickList(spec.containers, CONTAINER_KEYS),
            initContainers: pickList(spec.initContainers, CONTAINER_KEYS),
          }),
    status:
      status === undefined
        ? undefined
        : compact({
            containerStatuses: pickList(status.containerStatuses, STATUS_KEYS),
            initContainerStatuses: pickList(status.initContainerStatuses, STATUS_KEYS),
          }),
  });
}

/**
 * Creates a {@link KubeletClient} over HTTP(S) (`node:http` / `node:https`). The URL's
 * credentials and query are never put in error messages.
 *
 * @throws MeshidError `invalid_argument` / `agent.attestation.kubelet_url_invalid` when `url` is
 *   not an http(s) URL.
 */
export function createKubeletClient(params: CreateKubeletClientParams): KubeletClient {
  let base: URL;
  try {
    base = new URL(params.url);
  } catch (err) {
    throw new MeshidError(
      "invalid_argument",
      "agent.attestation.kubelet_url_invalid",
      "kubelet URL is not a URL",
      { cause: err },
    );
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new MeshidError(
      "invalid_argument",
      "agent.attestation.kubelet_url_invalid",
      `kubelet URL must be http or https, not ${base.protocol}`,
    );
  }
  const podsUrl = new URL("pods", base.href.endsWith("/") ? base.href : `${base.href}/`);
  const where = `${base.protocol}//${base.host}/pods`;
  const timeoutMs = params.timeoutMs ?? DEFAULT_KUBELET_TIMEOUT_MS;
  /** The pods of the last complete answer, by the SHA-256 of their JSON. */
  let previous = new Map<string, KubeletPod>();

  return {
    async listPods(signal?: AbortSignal): Promise<KubeletPod[]> {
      signal?.throwIfAborted();
      const token = typeof params.token === "function" ? await params.token() : params.token;
      const headers: Record<string, string> = { Accept: "application/json" };
      if (token !== undefined && token !== "") headers.Authorization = `Bearer ${token}`;
      return new Promise<KubeletPod[]>((resolve, reject) => {
        const timeout = AbortSignal.timeout(timeoutMs);
        const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
        const options = {
          method: "GET",
          headers,
          signal: combined,
          ...(podsUrl.protocol === "https:"
            ? { ca: params.caPem, rejectUnauthorized: params.insecureSkipVerify !== true }
            : {}),
        };
        const onResponse = (res: IncomingMessage): void => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(unavailable(`kubelet ${where} answered HTTP ${res.statusCode ?? 0}`));
            return;
          }
          // Each pod is parsed as it arrives and only the fields the attestor reads are kept:
          // never the whole answer as one string or one object tree (megabytes on a full node).
          // A pod whose JSON did not change since the last answer is the same object as then,
          // so a list fetched again and again while pods start makes no new long-lived objects.
          const pods: KubeletPod[] = [];
          const seen = new Map<string, KubeletPod>();
          const splitter = createJsonArraySplitter("items", (bytes) => {
            const digest = hash("sha256", bytes, "base64");
            let pod = previous.get(digest) ?? seen.get(digest);
            if (pod === undefined) {
              pod = kubeletPodFromJson(JSON.parse(bytes.toString("utf8")));
              if (pod === undefined) return;
            }
            seen.set(digest, pod);
            pods.push(pod);
          });
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_KUBELET_RESPONSE_BYTES) {
              res.destroy(
                unavailable(`kubelet ${where} answer exceeds ${MAX_KUBELET_RESPONSE_BYTES} bytes`),
              );
              return;
            }
            try {
              splitter.push(chunk);
            } catch (err) {
              res.destroy(unavailable(`kubelet ${where} sent no JSON`, err));
            }
          });
          res.on("end", () => {
            const result = splitter.end();
            if (result.kind === "ok") {
              previous = seen;
              resolve(pods);
            } else if (result.kind === "missing")
              reject(unavailable(`kubelet ${where} sent no pod list`));
            else reject(unavailable(`kubelet ${where} sent no JSON`));
          });
          res.on("error", (err) => reject(toUnavailable(err)));
        };
        const toUnavailable = (err: unknown): Error => {
          if (err instanceof MeshidError) return err;
          if (signal?.aborted === true) {
            const reason: unknown = signal.reason;
            return reason instanceof Error ? reason : new Error(String(reason));
          }
          if (timeout.aborted) {
            return unavailable(`kubelet ${where} did not answer within ${timeoutMs} ms`, err);
          }
          return unavailable(`kubelet ${where} unreachable: ${(err as Error).message}`, err);
        };
        const req =
          podsUrl.protocol === "https:"
            ? httpsRequest(podsUrl, options, onResponse)
            : httpRequest(podsUrl, options, onResponse);
        req.on("error", (err) => reject(toUnavailable(err)));
        req.end();
      });
    },
  };
}
