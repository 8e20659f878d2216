#!/usr/bin/env bash
# Installs what the bench needs from Debian packages when missing (run as root; apt-get update
# first). Never starts or touches the system nginx / HAProxy services.
set -euo pipefail
need=()
for pair in nginx:nginx haproxy:haproxy wrk:wrk h2load:nghttp2-client hey:hey curl:curl \
            openssl:openssl taskset:util-linux pgrep:procps python3:python3 valgrind:valgrind; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}" >&2
SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
