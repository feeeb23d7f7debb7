// The small template language of ClusterSPIFFEID resources: literal text with `{{ … }}`
// actions that name one field of the pod, its node or the registrar, with the field names of
// spire-controller-manager. Templates are compiled once (unknown fields are refused then) and
// rendered per pod (a label the pod lacks is a render error).

/** Fields a template action may name (the keys of maps follow `Labels.` / `Annotations.`). */
export const TEMPLATE_FIELDS: readonly string[] = Object.freeze([
  ".TrustDomain",
  ".ClusterName",
  ".PodMeta.Name",
  ".PodMeta.Namespace",
  ".PodMeta.UID",
  ".PodMeta.Labels.<key>",
  ".PodMeta.Annotations.<key>",
  ".PodSpec.ServiceAccountName",
  ".PodSpec.NodeName",
  ".NodeMeta.Name",
  ".NodeMeta.UID",
  ".NodeMeta.Labels.<key>",
]);

/** What a template is rendered with. */
export interface TemplateContext {
  readonly trustDomain: string;
  readonly clusterName: string;
  readonly pod: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
    readonly serviceAccountName: string;
    readonly nodeName: string;
  };
  readonly node: {
    readonly name: string;
    readonly uid: string;
    readonly labels: Readonly<Record<string, string>>;
  };
}

type FieldGetter = (ctx: TemplateContext) => string | undefined;

type Part =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "field"; readonly field: string; readonly get: FieldGetter };

/** A compiled template (see {@link compileTemplate}). */
export interface CompiledTemplate {
  readonly source: string;
  /** Renders the template, or says which field had no value. */
  render(ctx: TemplateContext): TemplateRenderResult;
}

/** Outcome of rendering one template. */
export type TemplateRenderResult =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly error: string };

/** Outcome of compiling one template. */
export type TemplateCompileResult =
  | { readonly ok: true; readonly template: CompiledTemplate }
  | { readonly ok: false; readonly error: string };

const SIMPLE_FIELDS: Readonly<Record<string, FieldGetter>> = {
  ".TrustDomain": (c) => c.trustDomain,
  ".ClusterName": (c) => c.clusterName,
  ".PodMeta.Name": (c) => c.pod.name,
  ".PodMeta.Namespace": (c) => c.pod.namespace,
  ".PodMeta.UID": (c) => c.pod.uid,
  ".PodSpec.ServiceAccountName": (c) => c.pod.serviceAccountName,
  ".PodSpec.NodeName": (c) => c.pod.nodeName,
  ".NodeMeta.Name": (c) => c.node.name,
  ".NodeMeta.UID": (c) => c.node.uid,
};

const MAP_FIELDS: Readonly<
  Record<string, (c: TemplateContext) => Readonly<Record<string, string>>>
> = {
  ".PodMeta.Labels": (c) => c.pod.labels,
  ".PodMeta.Annotations": (c) => c.pod.annotations,
  ".NodeMeta.Labels": (c) => c.node.labels,
};

/** `.PodMeta.Labels.app` (a key of letters, digits, `_` and `-`). */
const DOTTED_KEY = /^(\.[A-Za-z]+\.[A-Za-z]+)\.([A-Za-z0-9_-]+)$/;
/** `index .PodMeta.Labels "app.kubernetes.io/name"` (any label or annotation key). */
const INDEX_KEY = /^index\s+(\.[A-Za-z]+\.[A-Za-z]+)\s+"([^"\\]*)"$/;
/** Longest template accepted, in characters. */
export const MAX_TEMPLATE_LENGTH = 2048;

function compileAction(action: string): Part | string {
  const simple = SIMPLE_FIELDS[action];
  if (simple !== undefined) return { kind: "field", field: action, get: simple };
  const match = DOTTED_KEY.exec(action) ?? INDEX_KEY.exec(action);
  if (match !== null) {
    const [, mapName = "", key = ""] = match;
    const map = MAP_FIELDS[mapName];
    if (map !== undefined && key !== "") {
      return { kind: "field", field: `${mapName}[${key}]`, get: (c) => map(c)[key] };
    }
  }
  return `unknown field "{{ ${action} }}" (known: ${TEMPLATE_FIELDS.join(", ")})`;
}

/**
 * Compiles a template: text with `{{ .Field }}` actions (see {@link TEMPLATE_FIELDS}); map
 * keys that are not plain words use `{{ index .PodMeta.Labels "app.kubernetes.io/name" }}`.
 * Never throws: an unknown field, an unclosed action or an over-long template is an error
 * result.
 */
export function compileTemplate(source: string): TemplateCompileResult {
  if (source.length > MAX_TEMPLATE_LENGTH) {
    return { ok: false, error: `template longer than ${MAX_TEMPLATE_LENGTH} characters` };
  }
  const parts: Part[] = [];
  let rest = source;
  while (rest !== "") {
    const open = rest.indexOf("{{");
    const close = rest.indexOf("}}");
    if (open === -1) {
      if (close !== -1) return { ok: false, error: 'unmatched "}}"' };
      parts.push({ kind: "text", text: rest });
      break;
    }
    if (close !== -1 && close < open) return { ok: false, error: 'unmatched "}}"' };
    if (open > 0) parts.push({ kind: "text", text: rest.slice(0, open) });
    const end = rest.indexOf("}}", open + 2);
    if (end === -1) return { ok: false, error: 'unclosed "{{"' };
    const part = compileAction(rest.slice(open + 2, end).trim());
    if (typeof part === "string") return { ok: false, error: part };
    parts.push(part);
    rest = rest.slice(end + 2);
  }
  return {
    ok: true,
    template: {
      source,
      render(ctx) {
        let out = "";
        for (const part of parts) {
          if (part.kind === "text") {
            out += part.text;
            continue;
          }
          const value = part.get(ctx);
          if (value === undefined || value === "") {
            return { ok: false, error: `${part.field} has no value` };
          }
          out += value;
        }
        return { ok: true, value: out };
      },
    },
  };
}
