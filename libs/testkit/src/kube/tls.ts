/** PEM material for serving a stand-in over HTTPS instead of plain http. */
export interface StandInTlsOptions {
  /** Server certificate chain (PEM). It must name `127.0.0.1` (IP SAN) unless `serverName` is set. */
  readonly certPem: string;
  /** Private key of the certificate (PEM). */
  readonly keyPem: string;
  /** CA that clients trust for the server certificate; defaults to `certPem` (self-signed). */
  readonly caPem?: string;
  /** TLS server name clients verify instead of `127.0.0.1` (kubeconfig `tls-server-name`). */
  readonly serverName?: string;
}
