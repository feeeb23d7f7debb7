import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { MeshidError } from "@meshid/errors";

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
   * The pods the kubelet runs now.
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

  return {
    async listPods(signal?: AbortSignal): Promise<KubeletPod[]> {
      signal?.throwIfAborted();
      const token = typeof params.token === "function" ? await params.token() : params.token;
      const headers: Record<string, string> = { Accept: "application/json" };
      if (token !== undefined && token !== "") headers.Authorization = `Bearer ${token}`;
      const body = await new Promise<string>((resolve, reject) => {
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
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_KUBELET_RESPONSE_BYTES) {
              res.destroy(
                unavailable(`kubelet ${where} answer exceeds ${MAX_KUBELET_RESPONSE_BYTES} bytes`),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
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
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch (err) {
        throw unavailable(`kubelet ${where} sent no JSON`, err);
      }
      const items = (parsed as { items?: unknown } | null)?.items;
      if (!Array.isArray(items)) throw unavailable(`kubelet ${where} sent no pod list`);
      return items as KubeletPod[];
    },
  };
}
