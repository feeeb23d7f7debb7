import { renderNginxConfig } from "./nginx-config";
import { validateSidecarSpec, type SidecarSpec } from "./sidecar-spec";

const layout = { svidDir: "/svid", nginxPrefix: "/nginx" };
const http = { name: "web", listenPort: 8443, appPort: 8080, protocol: "http" as const };
const tcp = { name: "db", listenPort: 15432, appPort: 5432, protocol: "tcp" as const };

describe("nginx config", () => {
  it("nginx config – is a pure function of its input", () => {
    const params = { mode: "permissive" as const, inbound: [http, tcp], outbound: [], layout };
    expect(renderNginxConfig(params)).toBe(renderNginxConfig(structuredClone(params)));
  });

  it("nginx config – strict HTTP needs no stream block and loads no module", () => {
    const conf = renderNginxConfig({
      mode: "strict",
      inbound: [http],
      outbound: [],
      layout: { ...layout, streamModulePath: "/mods/ngx_stream_module.so" },
    });
    expect(conf).not.toMatch(/load_module|stream \{/);
    expect(conf).toMatch(/listen 8443 ssl;/);
    expect(conf).toMatch(
      /ssl_client_certificate \/svid\/bundle\.pem;\n\s+ssl_verify_client on;\n\s+ssl_verify_depth 4;/,
    );
    expect(conf).toMatch(
      /ssl_certificate \/svid\/svid\.pem;\n\s+ssl_certificate_key \/svid\/svid\.key;/,
    );
  });

  it("nginx config – permissive loads the stream module first and splits TLS from plaintext", () => {
    const conf = renderNginxConfig({
      mode: "permissive",
      inbound: [http],
      outbound: [],
      layout: { ...layout, streamModulePath: "/mods/ngx_stream_module.so", nginxUser: "root" },
    });
    expect(conf.split("\n").filter((l) => !l.startsWith("#"))[0]).toBe(
      "load_module /mods/ngx_stream_module.so;",
    );
    expect(conf).toMatch(/^user root;$/m);
    expect(conf).toMatch(
      /map \$ssl_preread_protocol \$meshid_inbound_8443 \{\n\s+"" "unix:\/nginx\/meshid-8443-plain\.sock";\n\s+default "unix:\/nginx\/meshid-8443-tls\.sock";/,
    );
    expect(conf).toMatch(
      /listen unix:\/nginx\/meshid-8443-tls\.sock ssl proxy_protocol;\n\s+set_real_ip_from unix:;\n\s+real_ip_header proxy_protocol;/,
    );
    expect(conf).toMatch(/listen unix:\/nginx\/meshid-8443-plain\.sock proxy_protocol;/);
    expect(conf).toMatch(/proxy_protocol on;/);
  });

  it("nginx config – off is plaintext only", () => {
    const conf = renderNginxConfig({ mode: "off", inbound: [http, tcp], outbound: [], layout });
    expect(conf).not.toMatch(/ssl/);
    expect(conf).toMatch(/listen 15432;\n\s+proxy_pass 127\.0\.0\.1:5432;/);
  });

  it("nginx config – outbound: mTLS with name check for mesh destinations, plaintext otherwise", () => {
    const conf = renderNginxConfig({
      mode: "off",
      inbound: [],
      outbound: [
        {
          name: "api",
          listenPort: 15001,
          destinationHost: "api.apps.svc",
          destinationPort: 8443,
          protocol: "http",
          serverSpiffeId: "spiffe://example.org/ns/apps/sa/api",
        },
        {
          name: "ext",
          listenPort: 15002,
          destinationHost: "example.com",
          destinationPort: 80,
          protocol: "http",
        },
      ],
      layout,
    });
    expect(conf).toMatch(
      /listen 127\.0\.0\.1:15001;[\s\S]*proxy_pass https:\/\/api\.apps\.svc:8443;[\s\S]*proxy_ssl_verify on;[\s\S]*proxy_ssl_name api\.apps\.svc;/,
    );
    expect(conf).toMatch(
      /listen 127\.0\.0\.1:15002;\n\s+location \/ \{\n\s+proxy_pass http:\/\/example\.com:80;/,
    );
  });

  it("nginx config – client-supplied certificate headers are always overwritten", () => {
    const conf = renderNginxConfig({ mode: "off", inbound: [http], outbound: [], layout });
    expect(conf).toMatch(/proxy_set_header X-Meshid-Client-Cert "";/);
  });
});

describe("sidecar spec", () => {
  const ok: SidecarSpec = { inbound: [http, tcp], outbound: [], layout };

  it("sidecar spec – a sound request passes", () => {
    expect(() => validateSidecarSpec(ok)).not.toThrow();
  });

  it.each([
    [{ ...ok, layout: { ...layout, nginxPrefix: "/a b" } }, /layout\.nginxPrefix/],
    [{ ...ok, layout: { ...layout, svidDir: "relative" } }, /layout\.svidDir/],
    [{ ...ok, layout: { ...layout, svidDir: "/a/../b" } }, /layout\.svidDir/],
    [{ ...ok, layout: { ...layout, nginxUser: "root;" } }, /layout\.nginxUser/],
    [
      { ...ok, inbound: [http, { ...tcp, listenPort: 8443 }] },
      /inbound\[1\]\.listenPort: port 8443 is already used by inbound\[0\]/,
    ],
    [{ ...ok, inbound: [{ ...http, appPort: 70000 }] }, /inbound\[0\]\.appPort/],
    [{ ...ok, inbound: [{ ...http, name: "a;b" }] }, /inbound\[0\]\.name/],
    [
      {
        ...ok,
        outbound: [
          {
            name: "x",
            listenPort: 1,
            destinationHost: "a b",
            destinationPort: 1,
            protocol: "tcp" as const,
            serverName: "x;y",
          },
        ],
      },
      /outbound\[0\]\.destinationHost[\s\S]*outbound\[0\]\.serverName/,
    ],
  ])("sidecar spec – %# is refused", (spec, message) => {
    expect(() => validateSidecarSpec(spec)).toThrow(message);
  });
});
