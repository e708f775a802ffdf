#!/usr/bin/env bash
# For a host that cannot pull mcr.microsoft.com/dotnet (the development machine of this project cannot):
# builds local stand-ins for the sdk and aspnet images from a Debian bookworm root file system (debootstrap)
# and this host's .NET installation, tagged accel-local/dotnet/{sdk,aspnet}:10.0. The sdk image carries this
# host's CA certificates, so NuGet restores through the same proxy as the host. Then:
#   DOTNET_IMAGES=accel-local/dotnet examples/deploy/smoke-test.sh
# Needs root, debootstrap, a Docker engine and the .NET 10 SDK at $DOTNET_ROOT (default /usr/share/dotnet).
set -euo pipefail
dotnet_root=${DOTNET_ROOT:-/usr/share/dotnet}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,tzdata bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | docker import - accel-local/debian:bookworm
rm -rf "$work/rootfs"

image() {  # image NAME PARTS...: the .NET installation's PARTS under /usr/share/dotnet
  local name=$1; shift
  mkdir -p "$work/$name/dotnet"
  for part in "$@"; do cp -a "$dotnet_root/$part" "$work/$name/dotnet/"; done
  cp /etc/ssl/certs/ca-certificates.crt "$work/$name/"
  cat > "$work/$name/Dockerfile" <<'DOCKERFILE'
FROM accel-local/debian:bookworm
COPY dotnet /usr/share/dotnet
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV ASPNETCORE_HTTP_PORTS=8080 DOTNET_RUNNING_IN_CONTAINER=true DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    NUGET_CERT_REVOCATION_MODE=offline
DOCKERFILE
  docker build -q -t "accel-local/dotnet/$name:10.0" "$work/$name"
}
image aspnet dotnet host shared
image sdk .
