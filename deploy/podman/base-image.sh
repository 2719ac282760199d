#!/usr/bin/env bash
# A local stand-in for the Bento's base image (python:3.11-slim, as the Dockerfile that
# `bentoml containerize` generates for `distro: debian` expects) for hosts that cannot
# reach a container registry: a Debian bookworm root filesystem made with mmdebstrap from
# the Debian mirror apt already uses, with Python 3.11, pip and the host's extra CA
# certificates (a TLS-intercepting proxy's), imported into podman under the base's name.
set -euo pipefail

image=${BASE_IMAGE:-docker.io/library/python:3.11-slim}
suite=${DEBIAN_SUITE:-bookworm}
# The first deb822 or one-line source apt uses, else the public mirror.
mirror=${DEBIAN_MIRROR:-$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true;
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true; } |
    { grep -v security || true; } | head -1
)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}

for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "building $image from $mirror ($suite)"
mmdebstrap --variant=minbase --mode=root \
  --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
  --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"' \
  --customize-hook='for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; true' \
  --customize-hook='chroot "$1" update-ca-certificates' \
  --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$suite" "$work/rootfs.tar" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV UV_NATIVE_TLS=1' \
  --change 'ENV UV_PYTHON_DOWNLOADS=never' \
  --change 'CMD ["python3"]' \
  "$work/rootfs.tar" "$image"
podman image inspect "$image" --format '{{.Id}} {{.Size}}'
