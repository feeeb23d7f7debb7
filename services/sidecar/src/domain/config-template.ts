// Static nginx.conf templates (runs without proxy-config): `{{name}}` placeholders replaced by
// the sidecar's own paths. Pure.
import { MeshidError } from "@meshid/errors";
import { BUNDLE_FILE, SVID_CERT_FILE, SVID_KEY_FILE } from "./svid-files";

/** Error code of a template with an unknown placeholder. */
export const TEMPLATE_INVALID_CODE = "sidecar.template.invalid";

/** What placeholders stand for. */
export interface TemplateValues {
  readonly svidDir: string;
  readonly nginxPrefix: string;
  /** undefined = `stream` is built into nginx. */
  readonly streamModulePath?: string;
  readonly nginxUser?: string;
}

/** The placeholders a template may use. */
export const TEMPLATE_PLACEHOLDERS = [
  "svid_dir",
  "svid_cert",
  "svid_key",
  "bundle",
  "nginx_prefix",
  "load_stream_module",
  "user",
] as const;

function valuesOf(v: TemplateValues): Record<(typeof TEMPLATE_PLACEHOLDERS)[number], string> {
  return {
    svid_dir: v.svidDir,
    svid_cert: `${v.svidDir}/${SVID_CERT_FILE}`,
    svid_key: `${v.svidDir}/${SVID_KEY_FILE}`,
    bundle: `${v.svidDir}/${BUNDLE_FILE}`,
    nginx_prefix: v.nginxPrefix,
    load_stream_module:
      v.streamModulePath === undefined ? "" : `load_module ${v.streamModulePath};`,
    user: v.nginxUser === undefined ? "" : `user ${v.nginxUser};`,
  };
}

/**
 * Replaces `{{svid_dir}}`, `{{svid_cert}}`, `{{svid_key}}`, `{{bundle}}`, `{{nginx_prefix}}`,
 * `{{load_stream_module}}` (a `load_module …;` line, or nothing when stream is built in) and
 * `{{user}}` (a `user …;` line, or nothing) in `template`.
 * @throws MeshidError `invalid_argument` / {@link TEMPLATE_INVALID_CODE} naming every unknown
 *   placeholder.
 */
export function renderConfigTemplate(template: string, values: TemplateValues): string {
  const table: Record<string, string> = valuesOf(values);
  const unknown = new Set<string>();
  const out = template.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (_m, name: string) => {
    const value = table[name];
    if (value === undefined) {
      unknown.add(name);
      return "";
    }
    return value;
  });
  if (unknown.size > 0) {
    throw new MeshidError(
      "invalid_argument",
      TEMPLATE_INVALID_CODE,
      `nginx.conf template uses unknown placeholders: ${[...unknown].join(", ")} ` +
        `(known: ${TEMPLATE_PLACEHOLDERS.join(", ")})`,
    );
  }
  return out;
}
