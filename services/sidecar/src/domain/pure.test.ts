import { isMeshidError } from "@meshid/errors";
import { TEMPLATE_INVALID_CODE, renderConfigTemplate } from "./config-template";
import { resolveStreamModule } from "./nginx-modules";
import { versionDirName, versionOfDirName } from "./svid-files";

describe("sidecar pure helpers", () => {
  it("template – replaces every placeholder with the sidecar's paths", () => {
    const out = renderConfigTemplate(
      "{{load_stream_module}}\n{{user}}\nssl_certificate {{ svid_cert }}; key {{svid_key}}; ca {{bundle}}; dir {{svid_dir}}; pid {{nginx_prefix}}/nginx.pid;",
      {
        svidDir: "/run/svid",
        nginxPrefix: "/var/nginx",
        streamModulePath: "/m/ngx_stream_module.so",
        nginxUser: "root",
      },
    );
    expect(out).toBe(
      "load_module /m/ngx_stream_module.so;\nuser root;\nssl_certificate /run/svid/svid.pem; key /run/svid/svid.key; ca /run/svid/bundle.pem; dir /run/svid; pid /var/nginx/nginx.pid;",
    );
    expect(
      renderConfigTemplate("{{load_stream_module}}{{user}}x", { svidDir: "/a", nginxPrefix: "/b" }),
    ).toBe("x");
  });

  it("template – names every unknown placeholder", () => {
    let caught: unknown;
    try {
      renderConfigTemplate("{{nope}} {{svid_dir}} {{other}}", { svidDir: "/a", nginxPrefix: "/b" });
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, TEMPLATE_INVALID_CODE)).toBe(true);
    expect((caught as Error).message).toMatch(/nope, other/);
  });

  it("stream module – dynamic, built in or missing, from nginx -V", () => {
    const debian =
      "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module";
    expect(resolveStreamModule(debian)).toEqual({
      kind: "dynamic",
      path: "/usr/lib/nginx/modules/ngx_stream_module.so",
    });
    expect(
      resolveStreamModule("configure arguments: --prefix=/opt/n --with-stream=dynamic"),
    ).toEqual({
      kind: "dynamic",
      path: "/opt/n/modules/ngx_stream_module.so",
    });
    expect(
      resolveStreamModule("configure arguments: --with-stream --with-stream_ssl_module"),
    ).toEqual({
      kind: "builtin",
    });
    expect(resolveStreamModule("configure arguments: --with-http_ssl_module")).toEqual({
      kind: "missing",
    });
  });

  it("svid files – version directory names round-trip and ignore everything else", () => {
    expect(versionDirName("svid", 7)).toBe("svid-7");
    expect(versionOfDirName("svid", "svid-7")).toBe(7);
    for (const name of ["svid", "svid-", "svid-x", ".svid.tmp-3", "other-3", "svid-1.bak"]) {
      expect(versionOfDirName("svid", name)).toBeUndefined();
    }
  });
});
