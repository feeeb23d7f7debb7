// NGINX configuration of a demo sidecar in strict mode: an mTLS inbound listener in front of
// the workload's app port, and a plaintext local outbound listener that originates mTLS to the
// peer's inbound listener with the workload's SVID (server name checked against the bundle).
import { join } from "node:path";

/** Parameters of {@link renderDemoSidecarNginxConf}. */
export interface RenderDemoSidecarNginxConfParams {
  /** NGINX prefix (pid, logs and temp files live there). */
  readonly prefix: string;
  /** Directory holding the `current` link to svid.pem, svid.key and bundle.pem. */
  readonly svidDir: string;
  /** The workload's app port (plaintext, 127.0.0.1). */
  readonly appPort: number;
  /** mTLS inbound port (strict: a verified client certificate is required). */
  readonly inboundPort: number;
  /** Local plaintext port whose requests go to the peer over mTLS. */
  readonly outboundPort: number;
  /** The peer's inbound port. */
  readonly peerInboundPort: number;
  /** DNS name in the peer's SVID, checked as the server name. */
  readonly peerServerName: string;
}

/** Renders the sidecar's nginx.conf (a pure function of ports and paths). */
export function renderDemoSidecarNginxConf(p: RenderDemoSidecarNginxConfParams): string {
  const svid = join(p.svidDir, "current");
  return `# Rendered by the meshid local mesh (demo sidecar, strict mTLS). Do not edit.
worker_processes 1;
pid ${join(p.prefix, "nginx.pid")};
error_log ${join(p.prefix, "logs", "error.log")} notice;
events { worker_connections 256; }
http {
  access_log ${join(p.prefix, "logs", "access.log")};
  client_body_temp_path ${join(p.prefix, "tmp", "client_body")};
  proxy_temp_path ${join(p.prefix, "tmp", "proxy")};
  fastcgi_temp_path ${join(p.prefix, "tmp", "fastcgi")};
  uwsgi_temp_path ${join(p.prefix, "tmp", "uwsgi")};
  scgi_temp_path ${join(p.prefix, "tmp", "scgi")};

  # Inbound, strict: only peers with a certificate that chains to the trust bundle.
  server {
    listen 127.0.0.1:${p.inboundPort} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${join(svid, "svid.pem")};
    ssl_certificate_key ${join(svid, "svid.key")};
    ssl_client_certificate ${join(svid, "bundle.pem")};
    ssl_verify_client on;
    ssl_verify_depth 4;
    location / {
      proxy_pass http://127.0.0.1:${p.appPort};
      proxy_set_header X-Client-Verify $ssl_client_verify;
      proxy_set_header X-Meshid-Client-Cert $ssl_client_escaped_cert;
    }
  }

  # Outbound: the app talks plaintext to localhost, the sidecar originates mTLS.
  server {
    listen 127.0.0.1:${p.outboundPort};
    location / {
      proxy_pass https://127.0.0.1:${p.peerInboundPort};
      proxy_ssl_certificate ${join(svid, "svid.pem")};
      proxy_ssl_certificate_key ${join(svid, "svid.key")};
      proxy_ssl_trusted_certificate ${join(svid, "bundle.pem")};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 4;
      proxy_ssl_name ${p.peerServerName};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse off;
    }
  }
}
`;
}
