// Where the NGINX stream module is, read from `nginx -V`. Pure.

/** File name of the dynamic stream module. */
export const STREAM_MODULE_FILE = "ngx_stream_module.so";

/** How `nginx -V` says the stream module is available. */
export type StreamModuleResolution =
  | { readonly kind: "builtin" }
  | { readonly kind: "dynamic"; readonly path: string }
  | { readonly kind: "missing" };

/**
 * Reads the configure arguments `nginx -V` prints: `--with-stream=dynamic` → the module file
 * in `--modules-path` (default `<--prefix>/modules`, nginx's own default prefix
 * `/usr/local/nginx`); `--with-stream` → built in; neither → missing.
 */
export function resolveStreamModule(versionOutput: string): StreamModuleResolution {
  const args = versionOutput.split(/\s+/);
  const value = (name: string): string | undefined => {
    const arg = args.find((a) => a.startsWith(`${name}=`));
    return arg === undefined ? undefined : arg.slice(name.length + 1).replace(/^['"]|['"]$/g, "");
  };
  if (args.includes("--with-stream=dynamic")) {
    const modules = value("--modules-path") ?? `${value("--prefix") ?? "/usr/local/nginx"}/modules`;
    return { kind: "dynamic", path: `${modules.replace(/\/+$/, "")}/${STREAM_MODULE_FILE}` };
  }
  if (args.includes("--with-stream")) return { kind: "builtin" };
  return { kind: "missing" };
}
