#!/usr/bin/env bash
# Makes sure the Debian packages meshid's tests and local mesh run against are present:
# nats-server, nginx (with its dynamic stream module), PostgreSQL, openssl (and setpriv from
# util-linux).
#   --install  install what is missing when running as root; otherwise explain and fail (default)
#   --warn     like --install, but only warn (exit 0) when not root — used by npm postinstall
set -euo pipefail

mode="${1:---install}"

# binary → Debian package
declare -A packages=(
  [nats-server]=nats-server
  [nginx]=nginx
  [openssl]=openssl
  [setpriv]=util-linux
)

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

have_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
for bin in "${!packages[@]}"; do
  have "$bin" || missing+=("${packages[$bin]}")
done
have_postgres || missing+=(postgresql)
# Debian builds nginx's stream module (ssl_preread: permissive mTLS, TCP services) as a
# dynamic module shipped in its own package.
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "meshid: installing missing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian postgresql package starts a cluster of its own; meshid's tests start
  # throwaway clusters instead, so the system one is not needed.
  echo "meshid: installed ${missing[*]}" >&2
  exit 0
fi

msg="meshid: missing Debian packages: ${missing[*]}. Install them with:
  sudo apt-get install -y ${missing[*]}
(or run this command as root and they are installed automatically)."
if [ "$mode" = "--warn" ]; then
  echo "warning: $msg" >&2
  exit 0
fi
echo "error: $msg" >&2
exit 1
