import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { isMeshidError } from "@meshid/errors";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import {
  apiGroupDocument,
  apiGroupListDocument,
  apiResourceListDocument,
  apiVersionsDocument,
  groupVersionOf,
  type KubeResourceDefinition,
} from "./discovery";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from "./patch";
import {
  checkFieldSelector,
  matchesFieldSelector,
  matchesLabelSelector,
  parseFieldSelector,
  parseLabelSelector,
} from "./selectors";
import { expiredError, KubeApiError, statusFailure } from "./status";
import { createKubeStore, type KubeStore } from "./store";
import {
  createServiceAccountTokenAuthority,
  tokenReviewStatus,
  type IssueServiceAccountTokenParams,
  type ServiceAccountTokenClaims,
} from "./token-review";
import { isJsonObject, type JsonObject, type JsonValue, type KubeObject } from "./types";
import type { StandInTlsOptions } from "./tls";
import { serveWatch, type ExpiredWatchMode, type OpenWatch } from "./watch";

/** Options for {@link startKubeApiServer}. */
export interface KubeApiServerOptions {
  /** Objects applied (test-side, no REST strategies) before the server accepts requests. */
  readonly objects?: readonly KubeObject[];
  /** Create a missing namespace on first use instead of answering 404. Default false. */
  readonly autoCreateNamespaces?: boolean;
  /** Watch events retained for replay (older resourceVersions get 410 Expired). Default 10 000. */
  readonly historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them, in ms; 0 disables. Default 60 000. */
  readonly bookmarkIntervalMs?: number;
  /**
   * How a watch from a too-old resourceVersion fails: `event` (default, what the real server
   * does: 200 then one ERROR event carrying a 410 Expired Status) or `http` (HTTP 410).
   */
  readonly expiredWatchMode?: ExpiredWatchMode;
  /**
   * TokenReview rejects a pod-bound token whose pod no longer exists (or has another uid), as
   * the real API server does. Default true.
   */
  readonly tokenReviewChecksBoundPod?: boolean;
  /** Issuer (`iss`) of service-account tokens and default API audience. */
  readonly issuer?: string;
  /**
   * Pods bound to a node terminate gracefully as on a real cluster: delete sets
   * deletionTimestamp (a MODIFIED event) and the pod stays until deleted with
   * `gracePeriodSeconds: 0`, as the kubelet does (test-side: `delete({ …, gracePeriodSeconds: 0 })`).
   * Default false: pods are deleted at once.
   */
  readonly gracefulPodDeletion?: boolean;
  /**
   * Serve HTTPS with this certificate instead of plain http; the kubeconfig then carries the CA
   * (`certificate-authority-data`) and no `insecure-skip-tls-verify`.
   */
  readonly tls?: StandInTlsOptions;
}

/** One request the API server stand-in received (for asserting e.g. that no write happened). */
export interface KubeApiRequest {
  readonly method: string;
  /** URL path without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection, or "" for discovery/other. */
  readonly verb: string;
  /** Plural resource (`pods`), or undefined for non-resource paths. */
  readonly resource?: string;
  readonly group?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
  readonly contentType?: string;
  /** Parsed request body of writes. */
  readonly body?: JsonValue;
  /** HTTP status answered. */
  status: number;
}

/** A fault to inject on the next matching request (see {@link KubeApiServer.failNext}). */
export interface FailNextParams {
  /** Kubernetes verb to match (get, list, watch, create, update, patch, delete, …); any when omitted. */
  readonly verb?: string;
  /** Plural resource to match (`configmaps`); any when omitted. */
  readonly resource?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** `status` to match only the status subresource. */
  readonly subresource?: string;
  /** HTTP code of the injected failure (e.g. 409, 500). */
  readonly status: number;
  /** Status message; a generic one by default. */
  readonly message?: string;
  /** Status reason; the usual one for the code by default (409 → Conflict). */
  readonly reason?: string;
  /** How many matching requests fail. Default 1. */
  readonly times?: number;
}

/** Identifies one object for the test-side API. */
export interface KubeObjectRef {
  /** Kind (`Pod`), plural (`pods`) or short name. */
  readonly kind: string;
  /** Narrows the kind to one group/version (`events.k8s.io/v1`); core wins when omitted. */
  readonly apiVersion?: string;
  readonly name: string;
  /** Namespace of a namespaced kind; default `default`. Ignored for cluster-scoped kinds. */
  readonly namespace?: string;
}

/** Parameters of the test-side delete. */
export interface DeleteKubeObjectParams extends KubeObjectRef {
  /**
   * DeleteOptions.gracePeriodSeconds; with `gracefulPodDeletion`, 0 finishes a terminating pod
   * the way the kubelet does.
   */
  readonly gracePeriodSeconds?: number;
}

/** Parameters of the test-side list. */
export interface ListKubeObjectsParams {
  readonly kind: string;
  readonly apiVersion?: string;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** A running Kubernetes API server stand-in. */
export interface KubeApiServer {
  /** `http://127.0.0.1:<port>` (`https://` with the `tls` option). */
  readonly url: string;
  readonly port: number;
  /** Bearer token of the kubeconfig's admin user. */
  readonly adminToken: string;
  /** The service-account token issuer (`iss`), also the default TokenReview audience. */
  readonly issuer: string;
  /** Every request received so far, oldest first. */
  readonly requests: readonly KubeApiRequest[];
  /**
   * A client-node KubeConfig for the admin user (plain http with `insecure-skip-tls-verify`,
   * which client-node requires for http servers; or https trusting the `tls` CA).
   */
  kubeConfig(): KubeConfig;
  /** The same kubeconfig as YAML (for code that loads a kubeconfig file). */
  kubeConfigYaml(): string;
  /**
   * Creates or replaces an object directly, as a controller or kubelet would have left it: no
   * REST strategies (status is kept as given, no validation, no resourceVersion check), a
   * missing namespace is created, and namespaced objects default to `default`. Watches see it.
   */
  apply<T extends object = KubeObject>(object: T): T;
  /** Returns a stored object, or undefined. */
  get<T extends object = KubeObject>(ref: KubeObjectRef): T | undefined;
  /** Lists stored objects, sorted by namespace/name, optionally filtered by selectors. */
  list<T extends object = KubeObject>(params: ListKubeObjectsParams): T[];
  /** Deletes an object (finalizers honoured); returns it, or undefined when it did not exist. */
  delete<T extends object = KubeObject>(ref: DeleteKubeObjectParams): T | undefined;
  /** Recorded Kubernetes Events (core/v1 and events.k8s.io/v1), oldest first. */
  events(): KubeObject[];
  /** Forgets the request log. */
  clearRequests(): void;
  /** Makes the next matching request(s) fail with a Status of the given code. */
  failNext(params: FailNextParams): void;
  /** Issues a projected service-account token that TokenReview and API auth accept. */
  issueServiceAccountToken(params: IssueServiceAccountTokenParams): string;
  /** Claims of a token issued by {@link issueServiceAccountToken}. */
  tokenClaims(token: string): ServiceAccountTokenClaims | undefined;
  /** The latest global resourceVersion. */
  resourceVersion(): number;
  /**
   * Drops all retained watch history and advances the resourceVersion: a watch (or list
   * continue token) from any resourceVersion handed out before gets 410 Expired, so informers
   * re-list. Combine with {@link closeWatches} to force running informers through that.
   */
  compactHistory(): void;
  /** Ends every open watch stream now (like the real server's watch timeout). */
  closeWatches(): void;
  /** Sends a BOOKMARK now on every open watch that allows bookmarks. */
  emitBookmarks(): void;
  /** Number of open watch streams. */
  openWatchCount(): number;
  /** Closes every open watch and the server. */
  stop(): Promise<void>;
}

interface ParsedResourcePath {
  readonly resource: KubeResourceDefinition;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  readonly legacyWatch: boolean;
}

interface PendingFault {
  readonly params: FailNextParams;
  remaining: number;
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

function sendJson(res: ServerResponse, status: number, body: JsonValue): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-cache, private",
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseBody(text: string, contentType: string): JsonValue | undefined {
  if (text.trim() === "") return undefined;
  try {
    if (contentType.includes("yaml")) return parseYaml(text) as JsonValue;
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new KubeApiError(
      400,
      `the body of the request was in an unknown format: ${(err as Error).message}`,
      "BadRequest",
    );
  }
}

function requireObject(body: JsonValue | undefined): KubeObject {
  if (!isJsonObject(body)) {
    throw new KubeApiError(400, "the body of the request was in an unknown format", "BadRequest");
  }
  if (!isJsonObject(body.metadata)) body.metadata = {};
  return body as KubeObject;
}

function listKind(def: KubeResourceDefinition): string {
  return `${def.kind}List`;
}

/** Real list JSON omits kind/apiVersion on items of built-in types; custom resources keep them. */
function listItem(def: KubeResourceDefinition, obj: KubeObject): KubeObject {
  if (def.custom) return obj;
  const copy = { ...obj };
  delete copy.kind;
  delete copy.apiVersion;
  return copy;
}

function encodeContinue(resourceVersion: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv: resourceVersion, start })).toString(
    "base64url",
  );
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (isJsonObject(parsed) && typeof parsed.rv === "number" && typeof parsed.start === "string") {
      return { rv: parsed.rv, start: parsed.start };
    }
  } catch {
    // fall through to the error below
  }
  throw new KubeApiError(
    400,
    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
    "BadRequest",
  );
}

function gracePeriodOf(query: URLSearchParams, options: JsonObject): number | undefined {
  const fromQuery = query.get("gracePeriodSeconds");
  if (fromQuery !== null && /^\d+$/.test(fromQuery)) return Number(fromQuery);
  return typeof options.gracePeriodSeconds === "number" ? options.gracePeriodSeconds : undefined;
}

/** Rejects a body whose apiVersion/kind is not the resource's, as the real decoder does. */
function checkTypeMeta(def: KubeResourceDefinition, obj: KubeObject): void {
  const gv = groupVersionOf(def);
  if (typeof obj.apiVersion === "string" && obj.apiVersion !== "" && obj.apiVersion !== gv) {
    const sameGroup = def.custom && obj.apiVersion.split("/")[0] === def.group;
    if (!sameGroup) {
      throw new KubeApiError(
        400,
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`,
        "BadRequest",
      );
    }
  }
  if (typeof obj.kind === "string" && obj.kind !== "" && obj.kind !== def.kind) {
    throw new KubeApiError(
      400,
      `the kind in the data (${obj.kind}) does not match the expected kind (${def.kind})`,
      "BadRequest",
    );
  }
}

function objectKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`;
}

/**
 * Starts a Kubernetes API server stand-in on `127.0.0.1:0` that speaks the real REST protocol
 * (discovery, CRUD, patch, list paging, watch with bookmarks and 410 Expired, TokenReview) well
 * enough for unmodified @kubernetes/client-node 1.4. Plain http by default (the kubeconfig it
 * hands out then sets `insecure-skip-tls-verify`, which client-node requires for http servers),
 * or https with `options.tls`. Every request except /healthz, /livez, /readyz and /version needs
 * `Authorization: Bearer` with the admin token or an issued service-account token (401
 * otherwise). The default namespaces (default, kube-system, kube-public, kube-node-lease) exist
 * from the start. Deletion is immediate unless finalizers are set (no graceful pod
 * termination). Stop it with `stop()`.
 */
export async function startKubeApiServer(
  options: KubeApiServerOptions = {},
): Promise<KubeApiServer> {
  const store: KubeStore = createKubeStore({
    ...(options.historyLimit !== undefined ? { historyLimit: options.historyLimit } : {}),
    ...(options.autoCreateNamespaces !== undefined
      ? { autoCreateNamespaces: options.autoCreateNamespaces }
      : {}),
    ...(options.gracefulPodDeletion !== undefined
      ? { gracefulPodDeletion: options.gracefulPodDeletion }
      : {}),
  });
  const authority = createServiceAccountTokenAuthority(options.issuer);
  const adminToken = randomBytes(24).toString("hex");
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
  const expiredMode = options.expiredWatchMode ?? "event";
  const checkBoundPod = options.tokenReviewChecksBoundPod ?? true;
  const openWatches = new Set<OpenWatch>();
  const requests: KubeApiRequest[] = [];
  let faults: PendingFault[] = [];
  let url = "";

  const podDef = (): KubeResourceDefinition => store.resolve("pods", "v1");

  const reviewToken = (token: string, audiences: readonly string[]): JsonObject => {
    const outcome = authority.review(token, audiences);
    if (outcome.authenticated && checkBoundPod && outcome.claims.podName !== undefined) {
      const pod = store.tryGet(podDef(), outcome.claims.namespace, outcome.claims.podName);
      if (!pod) {
        return tokenReviewStatus({
          authenticated: false,
          error: `[invalid bearer token, pods "${outcome.claims.podName}" not found]`,
        });
      }
      if (outcome.claims.podUid !== undefined && pod.metadata.uid !== outcome.claims.podUid) {
        return tokenReviewStatus({
          authenticated: false,
          error: `[invalid bearer token, pod UID (${pod.metadata.uid}) does not match claim (${outcome.claims.podUid})]`,
        });
      }
    }
    return tokenReviewStatus(outcome);
  };

  const authenticated = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return false;
    const token = match[1]!;
    if (token === adminToken) return true;
    const claims = authority.claimsOf(token);
    return claims !== undefined && claims.expiresAt.getTime() > Date.now();
  };

  const parseResourcePath = (segments: readonly string[]): ParsedResourcePath | undefined => {
    let group: string;
    let version: string;
    let rest: string[];
    if (segments[0] === "api" && segments[1] === "v1") {
      group = "";
      version = "v1";
      rest = segments.slice(2);
    } else if (segments[0] === "apis" && segments.length >= 4) {
      group = segments[1]!;
      version = segments[2]!;
      rest = segments.slice(3);
    } else {
      return undefined;
    }
    let legacyWatch = false;
    if (rest[0] === "watch") {
      legacyWatch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    if (plural === undefined || extra.length > 0) return undefined;
    const resource = store.resourceByPath(group, version, plural);
    if (!resource) return undefined;
    if (namespace !== undefined && !resource.namespaced) return undefined;
    if (resource.namespaced && namespace === undefined && name !== undefined) return undefined;
    if (subresource !== undefined && !(subresource === "status" && resource.statusSubresource)) {
      return undefined;
    }
    return { resource, namespace, name, subresource, legacyWatch };
  };

  const verbOf = (method: string, parsed: ParsedResourcePath, query: URLSearchParams): string => {
    const watch = parsed.legacyWatch || query.get("watch") === "true" || query.get("watch") === "1";
    switch (method) {
      case "GET":
        if (watch) return "watch";
        return parsed.name === undefined ? "list" : "get";
      case "POST":
        return "create";
      case "PUT":
        return "update";
      case "PATCH":
        return "patch";
      case "DELETE":
        return parsed.name === undefined ? "deletecollection" : "delete";
      default:
        return method.toLowerCase();
    }
  };

  const takeFault = (entry: KubeApiRequest): PendingFault | undefined => {
    const fault = faults.find(
      (f) =>
        (f.params.verb === undefined || f.params.verb === entry.verb) &&
        (f.params.resource === undefined || f.params.resource === entry.resource) &&
        (f.params.namespace === undefined || f.params.namespace === entry.namespace) &&
        (f.params.name === undefined || f.params.name === entry.name) &&
        (f.params.subresource === undefined || f.params.subresource === entry.subresource),
    );
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) faults = faults.filter((f) => f !== fault);
    return fault;
  };

  const selectorsOf = (def: KubeResourceDefinition, query: URLSearchParams) => {
    const labelSelector = parseLabelSelector(query.get("labelSelector") ?? "");
    const fieldSelector = parseFieldSelector(query.get("fieldSelector") ?? "");
    checkFieldSelector(fieldSelector, [
      "metadata.name",
      "metadata.namespace",
      ...def.fieldSelectors,
    ]);
    return { labelSelector, fieldSelector };
  };

  const handleList = (
    res: ServerResponse,
    parsed: ParsedResourcePath,
    query: URLSearchParams,
  ): void => {
    const def = parsed.resource;
    const { labelSelector, fieldSelector } = selectorsOf(def, query);
    let items = store
      .list(def, parsed.namespace)
      .filter(
        (o) =>
          matchesLabelSelector(labelSelector, o.metadata.labels) &&
          matchesFieldSelector(fieldSelector, o),
      );
    let listRv = store.currentResourceVersion();
    const token = query.get("continue");
    if (token) {
      const decoded = decodeContinue(token);
      if (decoded.rv < store.compactedResourceVersion()) {
        const err = expiredError(decoded.rv, store.compactedResourceVersion());
        throw new KubeApiError(
          410,
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
          "Expired",
          err.details,
        );
      }
      listRv = decoded.rv;
      items = items.filter((o) => objectKey(o) > decoded.start);
    }
    const metadata: JsonObject = { resourceVersion: String(listRv) };
    const limit = Number(query.get("limit") ?? "0");
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const remaining = items.length - limit;
      items = items.slice(0, limit);
      metadata.continue = encodeContinue(listRv, objectKey(items[items.length - 1]!));
      metadata.remainingItemCount = remaining;
    }
    sendJson(res, 200, {
      kind: listKind(def),
      apiVersion: groupVersionOf(def),
      metadata,
      items: items.map((o) => listItem(def, o)),
    });
  };

  const handleTokenReview = (res: ServerResponse, body: KubeObject): void => {
    const spec = isJsonObject(body.spec) ? body.spec : {};
    const token = typeof spec.token === "string" ? spec.token : "";
    const audiences = Array.isArray(spec.audiences)
      ? spec.audiences.filter((a): a is string => typeof a === "string")
      : [];
    sendJson(res, 201, {
      kind: "TokenReview",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { creationTimestamp: null },
      spec,
      status: reviewToken(token, audiences),
    });
  };

  const applyPatch = (
    def: KubeResourceDefinition,
    current: KubeObject,
    patch: JsonValue | undefined,
    contentType: string,
  ): KubeObject => {
    if (patch === undefined) {
      throw new KubeApiError(400, "the body of the request was empty", "BadRequest");
    }
    if (def.custom && contentType.startsWith("application/strategic-merge-patch+json")) {
      throw new KubeApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        "UnsupportedMediaType",
      );
    }
    let result: JsonValue;
    try {
      if (contentType.startsWith("application/json-patch+json")) {
        result = applyJsonPatch(current, patch);
      } else if (contentType.startsWith("application/merge-patch+json")) {
        result = applyMergePatch(current, patch);
      } else if (
        contentType.startsWith("application/strategic-merge-patch+json") ||
        contentType.startsWith("application/apply-patch+yaml")
      ) {
        result = applyStrategicMergePatch(current, patch);
      } else {
        throw new KubeApiError(
          415,
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
        );
      }
    } catch (err) {
      if (isMeshidError(err)) throw new KubeApiError(422, err.message, "Invalid");
      throw err;
    }
    return requireObject(result);
  };

  const handleResource = async (
    req: IncomingMessage,
    res: ServerResponse,
    parsed: ParsedResourcePath,
    query: URLSearchParams,
    entry: KubeApiRequest,
  ): Promise<void> => {
    const def = parsed.resource;
    const verb = entry.verb;
    const dryRun = query.getAll("dryRun").includes("All");
    const contentType = req.headers["content-type"] ?? "application/json";
    const bodyText = req.method === "GET" ? "" : await readBody(req);
    const body = parseBody(bodyText, contentType);
    (entry as { body?: JsonValue }).body = body;
    if (def.verbs.length === 1 && def.verbs[0] === "create" && verb !== "create") {
      throw new KubeApiError(
        405,
        `the server does not allow this method on the requested resource`,
        "MethodNotAllowed",
      );
    }
    if (def.namespaced && parsed.namespace === undefined && verb !== "list" && verb !== "watch") {
      throw new KubeApiError(404, "the server could not find the requested resource", "NotFound");
    }
    if ((verb === "update" || verb === "patch") && parsed.name === undefined) {
      throw new KubeApiError(
        405,
        "the server does not allow this method on the requested resource",
        "MethodNotAllowed",
      );
    }
    switch (verb) {
      case "watch": {
        const { labelSelector, fieldSelector } = selectorsOf(def, query);
        const named =
          parsed.name !== undefined
            ? [...fieldSelector, { field: "metadata.name", op: "=" as const, value: parsed.name }]
            : fieldSelector;
        const timeout = query.get("timeoutSeconds");
        serveWatch(req, res, {
          store,
          resource: def,
          namespace: parsed.namespace,
          labelSelector,
          fieldSelector: named,
          resourceVersion: query.get("resourceVersion") ?? undefined,
          allowBookmarks: query.get("allowWatchBookmarks") === "true",
          timeoutSeconds: timeout !== null ? Number(timeout) : undefined,
          bookmarkIntervalMs,
          expiredMode,
          openWatches,
        });
        entry.status = res.statusCode;
        return;
      }
      case "list":
        handleList(res, parsed, query);
        return;
      case "get":
        sendJson(res, 200, store.get(def, parsed.namespace, parsed.name!));
        return;
      case "create": {
        if (parsed.name !== undefined) {
          throw new KubeApiError(
            405,
            "the server does not allow this method on the requested resource",
            "MethodNotAllowed",
          );
        }
        const obj = requireObject(body);
        checkTypeMeta(def, obj);
        if (def.group === "authentication.k8s.io" && def.plural === "tokenreviews") {
          handleTokenReview(res, obj);
          return;
        }
        if (def.namespaced) {
          if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== parsed.namespace) {
            throw new KubeApiError(
              400,
              "the namespace of the provided object does not match the namespace sent on the request",
              "BadRequest",
            );
          }
          obj.metadata.namespace = parsed.namespace!;
        }
        sendJson(res, 201, store.create({ resource: def, object: obj, origin: "rest", dryRun }));
        return;
      }
      case "update": {
        const obj = requireObject(body);
        checkTypeMeta(def, obj);
        if (
          def.namespaced &&
          obj.metadata.namespace !== undefined &&
          obj.metadata.namespace !== parsed.namespace
        ) {
          throw new KubeApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
            "BadRequest",
          );
        }
        const updated = store.update({
          resource: def,
          namespace: parsed.namespace,
          name: parsed.name!,
          object: obj,
          origin: "rest",
          ...(parsed.subresource !== undefined ? { subresource: parsed.subresource } : {}),
          dryRun,
        });
        sendJson(res, 200, updated);
        return;
      }
      case "patch": {
        const isApply = contentType.startsWith("application/apply-patch");
        if (isApply && !query.get("fieldManager")) {
          throw new KubeApiError(
            422,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            "Invalid",
          );
        }
        const current = store.tryGet(def, parsed.namespace, parsed.name!);
        if (!current && isApply && parsed.subresource === undefined) {
          const obj = requireObject(body);
          obj.metadata.name = parsed.name!;
          if (def.namespaced) obj.metadata.namespace = parsed.namespace!;
          sendJson(res, 201, store.create({ resource: def, object: obj, origin: "rest", dryRun }));
          return;
        }
        const existing = store.get(def, parsed.namespace, parsed.name!);
        const patched = applyPatch(def, existing, body, contentType);
        if (isApply) patched.metadata.resourceVersion = existing.metadata.resourceVersion!;
        const updated = store.update({
          resource: def,
          namespace: parsed.namespace,
          name: parsed.name!,
          object: patched,
          origin: "rest",
          ...(parsed.subresource !== undefined ? { subresource: parsed.subresource } : {}),
          dryRun,
        });
        sendJson(res, 200, updated);
        return;
      }
      case "delete": {
        const options = isJsonObject(body) ? body : {};
        const pre = isJsonObject(options.preconditions) ? options.preconditions : {};
        const deleted = store.remove({
          resource: def,
          namespace: parsed.namespace,
          name: parsed.name!,
          preconditions: {
            ...(typeof pre.uid === "string" ? { uid: pre.uid } : {}),
            ...(typeof pre.resourceVersion === "string"
              ? { resourceVersion: pre.resourceVersion }
              : {}),
          },
          ...(gracePeriodOf(query, options) !== undefined
            ? { gracePeriodSeconds: gracePeriodOf(query, options)! }
            : {}),
          dryRun: dryRun || (Array.isArray(options.dryRun) && options.dryRun.includes("All")),
        });
        sendJson(res, 200, deleted);
        return;
      }
      case "deletecollection": {
        const { labelSelector, fieldSelector } = selectorsOf(def, query);
        const victims = store
          .list(def, parsed.namespace)
          .filter(
            (o) =>
              matchesLabelSelector(labelSelector, o.metadata.labels) &&
              matchesFieldSelector(fieldSelector, o),
          );
        const deleted = victims.map((o) =>
          store.remove({
            resource: def,
            namespace: o.metadata.namespace,
            name: o.metadata.name!,
            dryRun,
          }),
        );
        sendJson(res, 200, {
          kind: listKind(def),
          apiVersion: groupVersionOf(def),
          metadata: { resourceVersion: String(store.currentResourceVersion()) },
          items: deleted.map((o) => listItem(def, o)),
        });
        return;
      }
      default:
        throw new KubeApiError(
          405,
          "the server does not allow this method on the requested resource",
          "MethodNotAllowed",
        );
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parsedUrl = new URL(req.url ?? "/", "http://127.0.0.1");
    const query = parsedUrl.searchParams;
    const segments = parsedUrl.pathname
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
    const path = parsedUrl.pathname;
    const method = req.method ?? "GET";
    const resourcePath = parseResourcePath(segments);
    const entry: KubeApiRequest = {
      method,
      path,
      query: Object.fromEntries(query.entries()),
      verb: resourcePath ? verbOf(method, resourcePath, query) : "",
      ...(resourcePath
        ? {
            resource: resourcePath.resource.plural,
            group: resourcePath.resource.group,
            ...(resourcePath.namespace !== undefined ? { namespace: resourcePath.namespace } : {}),
            ...(resourcePath.name !== undefined ? { name: resourcePath.name } : {}),
            ...(resourcePath.subresource !== undefined
              ? { subresource: resourcePath.subresource }
              : {}),
          }
        : {}),
      ...(req.headers["content-type"] !== undefined
        ? { contentType: req.headers["content-type"] }
        : {}),
      status: 0,
    };
    requests.push(entry);
    const recordStatus = (): void => {
      entry.status = res.statusCode;
    };
    res.on("finish", recordStatus);
    res.on("close", recordStatus);

    try {
      if (["/healthz", "/livez", "/readyz"].includes(path)) {
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.end("ok");
        return;
      }
      if (path === "/version") {
        sendJson(res, 200, {
          major: "1",
          minor: "33",
          gitVersion: "v1.33.0-meshid-testkit",
          platform: "linux/amd64",
        });
        return;
      }
      if (!authenticated(req)) {
        sendJson(res, 401, statusFailure(401, "Unauthorized", "Unauthorized"));
        return;
      }
      const fault = takeFault(entry);
      if (fault) {
        const err = new KubeApiError(
          fault.params.status,
          fault.params.message ?? `injected failure (${fault.params.status})`,
          fault.params.reason,
        );
        sendJson(res, err.code, err.toStatus());
        return;
      }
      if (resourcePath) {
        await handleResource(req, res, resourcePath, query, entry);
        return;
      }
      if (method !== "GET")
        throw new KubeApiError(404, "the server could not find the requested resource", "NotFound");
      const defs = store.resources();
      let doc: JsonObject | undefined;
      if (path === "/api") doc = apiVersionsDocument(url.replace(/^http:\/\//, ""));
      else if (path === "/apis") doc = apiGroupListDocument(defs);
      else if (segments[0] === "api" && segments.length === 2) {
        doc = apiResourceListDocument("", segments[1]!, defs);
      } else if (segments[0] === "apis" && segments.length === 2) {
        doc = apiGroupDocument(segments[1]!, defs);
      } else if (segments[0] === "apis" && segments.length === 3) {
        doc = apiResourceListDocument(segments[1]!, segments[2]!, defs);
      } else if (path === "/openid/v1/jwks") {
        doc = authority.jwks();
      } else if (path === "/.well-known/openid-configuration") {
        doc = {
          issuer: authority.issuer,
          jwks_uri: `${url}/openid/v1/jwks`,
          response_types_supported: ["id_token"],
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: ["RS256"],
        };
      }
      if (!doc)
        throw new KubeApiError(404, "the server could not find the requested resource", "NotFound");
      sendJson(res, 200, doc);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof KubeApiError) {
        sendJson(res, err.code, err.toStatus());
      } else if (isMeshidError(err)) {
        sendJson(res, 400, statusFailure(400, err.message, "BadRequest"));
      } else {
        sendJson(res, 500, statusFailure(500, (err as Error).message, "InternalError"));
      }
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        sendJson(res, 500, statusFailure(500, "internal error", "InternalError"));
      } else {
        res.end();
      }
    });
  };
  const tls = options.tls;
  const server = tls
    ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, listener)
    : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;

  const resolveRef = (kind: string, apiVersion?: string): KubeResourceDefinition =>
    store.resolve(kind, apiVersion);

  const kubeConfigYaml = (): string =>
    stringifyYaml({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "meshid-test",
          cluster: tls
            ? {
                server: url,
                "certificate-authority-data": Buffer.from(tls.caPem ?? tls.certPem).toString(
                  "base64",
                ),
                ...(tls.serverName !== undefined ? { "tls-server-name": tls.serverName } : {}),
              }
            : { server: url, "insecure-skip-tls-verify": true },
        },
      ],
      users: [{ name: "meshid-admin", user: { token: adminToken } }],
      contexts: [
        {
          name: "meshid-test",
          context: { cluster: "meshid-test", user: "meshid-admin", namespace: "default" },
        },
      ],
      "current-context": "meshid-test",
      preferences: {},
    });

  const api: KubeApiServer = {
    url,
    port,
    adminToken,
    issuer: authority.issuer,
    requests,

    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromString(kubeConfigYaml());
      return kc;
    },

    kubeConfigYaml,

    apply<T extends object>(object: T): T {
      const obj = requireObject(structuredClone(object) as unknown as JsonValue);
      if (typeof obj.kind !== "string") throw new Error("apply: object needs a kind");
      const def = resolveRef(
        obj.kind,
        typeof obj.apiVersion === "string" ? obj.apiVersion : undefined,
      );
      const name = obj.metadata.name;
      const existing =
        name !== undefined ? store.tryGet(def, obj.metadata.namespace, name) : undefined;
      if (existing && name !== undefined) {
        delete obj.metadata.resourceVersion;
        return store.update({
          resource: def,
          namespace: obj.metadata.namespace,
          name,
          object: obj,
          origin: "test",
        }) as unknown as T;
      }
      if (def.namespaced && obj.metadata.namespace === undefined)
        obj.metadata.namespace = "default";
      delete obj.metadata.resourceVersion;
      return store.create({ resource: def, object: obj, origin: "test" }) as unknown as T;
    },

    get<T extends object>(ref: KubeObjectRef): T | undefined {
      const def = resolveRef(ref.kind, ref.apiVersion);
      return store.tryGet(
        def,
        ref.namespace ?? (def.namespaced ? "default" : undefined),
        ref.name,
      ) as T | undefined;
    },

    list<T extends object>(params: ListKubeObjectsParams): T[] {
      const def = resolveRef(params.kind, params.apiVersion);
      const labels = parseLabelSelector(params.labelSelector ?? "");
      const fields = parseFieldSelector(params.fieldSelector ?? "");
      return store
        .list(def, params.namespace)
        .filter(
          (o) => matchesLabelSelector(labels, o.metadata.labels) && matchesFieldSelector(fields, o),
        ) as unknown as T[];
    },

    delete<T extends object>(ref: DeleteKubeObjectParams): T | undefined {
      const def = resolveRef(ref.kind, ref.apiVersion);
      const namespace = ref.namespace ?? (def.namespaced ? "default" : undefined);
      if (!store.tryGet(def, namespace, ref.name)) return undefined;
      return store.remove({
        resource: def,
        namespace,
        name: ref.name,
        ...(ref.gracePeriodSeconds !== undefined
          ? { gracePeriodSeconds: ref.gracePeriodSeconds }
          : {}),
      }) as unknown as T;
    },

    events() {
      const core = store.list(store.resolve("events", "v1"));
      const modern = store.list(store.resolve("events", "events.k8s.io/v1"));
      return [...core, ...modern].sort(
        (a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
      );
    },

    clearRequests() {
      requests.length = 0;
    },

    failNext(params) {
      faults.push({ params, remaining: params.times ?? 1 });
    },

    issueServiceAccountToken: (params) => authority.issue(params),
    tokenClaims: (token) => authority.claimsOf(token),
    resourceVersion: () => store.currentResourceVersion(),
    compactHistory: () => store.compact(),

    closeWatches() {
      for (const w of [...openWatches]) w.close();
    },

    emitBookmarks() {
      for (const w of openWatches) w.bookmark();
    },

    openWatchCount: () => openWatches.size,

    async stop() {
      for (const w of [...openWatches]) w.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };

  for (const obj of options.objects ?? []) api.apply(obj);
  return api;
}
