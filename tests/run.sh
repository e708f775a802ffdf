#!/usr/bin/env bash
# The whole test suite on the real kernel, as a new user runs it: installs what the tests need (as root, from
# Debian's packages), runs every test project and ends with "N passed, N failed, N skipped".
#   bash tests/run.sh                      kernel tests skip, saying why, where BPF cannot run
#   ACCEL_REQUIRE_BPF=1 bash tests/run.sh  they fail instead (CI: .ci/run)
# Without root it installs nothing: tests that need a missing program skip and name the package.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clang >/dev/null || need+=(clang)                 # checks the committed BPF objects against their sources
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)  # headers for that check only
command -v ip >/dev/null || need+=(iproute2)                  # network namespaces and veth
command -v nft >/dev/null || need+=(nftables)                # address translation (NAT) inside the test namespaces
command -v curl >/dev/null || need+=(curl)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v capsh >/dev/null || need+=(libcap2-bin)           # capability-drop tests
command -v dockerd >/dev/null || need+=(docker.io)            # the Compose deployment test (a daemon of its own)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)      # stand-in .NET base images (no registry needed)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Not installed (tests that need them skip): ${need[*]}"
  fi
fi
# Everything the deployment test needs is there: make it run (and fail, not skip) like the kernel tests.
if command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null; then
  export ACCEL_REQUIRE_DEPLOY=${ACCEL_REQUIRE_DEPLOY:-1}
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
set +e
dotnet test Accel.sln --logger "trx" --logger "console;verbosity=normal" --results-directory "$results"
rc=$?
set -e

# Sum the counters of every test project's results.
python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(f).getroot().find(".//t:ResultSummary/t:Counters", ns)
    passed += int(c.get("passed")); failed += int(c.get("failed")) + int(c.get("error")) + int(c.get("timeout")) + int(c.get("aborted"))
    skipped += int(c.get("notExecuted"))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
