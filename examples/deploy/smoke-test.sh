#!/usr/bin/env bash
# Deploys the two demo services with Docker Compose, has the frontend call the backend, and checks that the
# calls were redirected: the frontend's health data and the host-wide view from inside the backend container.
# Removes the containers and network it started; keeps the image.
#   examples/deploy/smoke-test.sh [COMPOSE_FILE ...]   default: examples/deploy/compose.yaml
# Needs root, a Docker engine (docker compose or docker-compose), bpffs mounted at /sys/fs/bpf (or at
# $ACCEL_BPFFS), port 8080 free (or $ACCEL_FRONTEND_PORT). DOTNET_IMAGES, if set, is passed to the image build
# (see Dockerfile). The build uses the host's network, so it restores from NuGet as the host does.
set -euo pipefail
cd "$(dirname "$0")/../.."

files=()
for f in "${@:-examples/deploy/compose.yaml}"; do files+=(-f "$f"); done
project=accel-smoke
compose() {
  if docker compose version >/dev/null 2>&1; then docker compose -p "$project" "${files[@]}" "$@"
  else docker-compose -p "$project" "${files[@]}" "$@"; fi
}
fail() { echo "smoke test FAILED: $*" >&2; compose logs --no-color >&2 || true; exit 1; }

bpffs=${ACCEL_BPFFS:-/sys/fs/bpf}
port=${ACCEL_FRONTEND_PORT:-8080}
mountpoint -q "$bpffs" || fail "bpffs is not mounted at $bpffs (mount -t bpf bpf $bpffs)"
docker build -q --network host -f examples/deploy/Dockerfile ${DOTNET_IMAGES:+--build-arg DOTNET_IMAGES="$DOTNET_IMAGES"} -t accel-demo:latest .
trap 'compose down --remove-orphans >/dev/null 2>&1 || true' EXIT
compose up -d

for _ in $(seq 60); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 1; done
curl -sf "localhost:$port/bench?proto=h1&size=1024&n=500" >/dev/null || fail "HTTP/1.1 calls failed"
curl -sf "localhost:$port/bench?proto=h2c&size=65536&n=100" >/dev/null || fail "h2c calls failed"

health=$(curl -s localhost:$port/healthz)
field() { grep -o "\"$1\":[^,}]*" <<<"$health" | head -1 | cut -d: -f2; }
echo "frontend: enabled=$(field enabled) reasonCode=$(field reasonCode) redirectedBytes=$(field redirectedBytes) tcpBytes=$(field tcpBytes)"
[ "$(field enabled)" = true ] || fail "acceleration is off in the frontend: $(field reason)"
[ "$(field redirectedBytes)" -gt 0 ] || fail "the frontend redirected nothing"
[ "$(field tcpBytes)" -eq 0 ] || fail "the frontend sent $(field tcpBytes) bytes by TCP"

state=$(compose exec -T backend dotnet Accel.Demo.dll state)
echo "$state"
# The backend's row: at least the 100 h2c responses of 64 KiB, all redirected.
grep -E "^  Accel.Demo +[0-9a-f]+ .* ([0-9]{7,}) B +0 B" <<<"$state" >/dev/null || fail "the backend's row does not show its responses redirected"
[ "$(grep -c '^  Accel.Demo ' <<<"$state")" -eq 2 ] || fail "the map is not shared by both services"
echo "smoke test passed: the two containers' calls were redirected"
