import { isMeshidError } from "@meshid/errors";
import { TEMPLATE_INVALID_CODE, renderConfigTemplate } from "./config-template";

describe("config template", () => {
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
});
