#!/usr/bin/env bash
# Compiles the BPF programs into the objects that are committed and embedded in Accel.Native.
# Needs Debian's clang and libbpf-dev (headers only); nobody needs them to build or use the library.
#   Accel.Native/bpf/build.sh            rebuild in place
#   Accel.Native/bpf/build.sh OUTDIR     build into OUTDIR (the freshness test compares the two)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
for src in "$here"/*.bpf.c; do
  name=$(basename "$src" .c)
  # -mcpu=v3: a slot's write is a compare-and-swap (kernel 5.12 on). No -g: the loader synthesises the BTF it needs,
  # and the object stays byte-for-byte reproducible.
  clang -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -I"$here" -I/usr/include/x86_64-linux-gnu \
    -fno-ident -Wall -Werror -c "$src" -o "$out/$name.o"
done
