import { resolveStreamModule } from "./nginx-modules";

describe("nginx modules", () => {
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
});
