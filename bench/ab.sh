#!/usr/bin/env bash
# ab.sh compares two sidehook binaries with one loadgen benchmark, in pairs
# alternated within the same run, the order swapped every pair, so whatever
# else the machine is doing falls on both builds alike:
#
#   go -C .. build -o /tmp/sidehook-a .            # this checkout
#   git worktree add /tmp/base main && go -C /tmp/base build -o /tmp/sidehook-b .
#   ./ab.sh /tmp/sidehook-a /tmp/sidehook-b 4 receiver --captures 0
#
# Arguments: binary A, binary B, the number of pairs, then the loadgen
# command and its flags. Every report is kept in $AB_OUT (default: a new
# temporary directory) as PAIR-a.txt and PAIR-b.txt; the targets of each
# run are printed at the end, A and B side by side in time order.
set -euo pipefail
if [ $# -lt 4 ]; then
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
a=$1 b=$2 pairs=$3
shift 3
for bin in "$a" "$b"; do
	[ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 2; }
done
case $pairs in '' | *[!0-9]* | 0) echo "ab.sh: pairs: want a positive number, got $pairs" >&2; exit 2 ;; esac

cd "$(dirname "$0")"
out=${AB_OUT:-$(mktemp -d -t sidehook-ab.XXXXXX)}
mkdir -p "$out"
go build -o "$out/loadgen" ./cmd/loadgen

for ((i = 1; i <= pairs; i++)); do
	order="a b"
	if ((i % 2 == 0)); then order="b a"; fi
	for side in $order; do
		bin=$a
		[ "$side" = b ] && bin=$b
		echo "--- pair $i, $side: $bin" >&2
		"$out/loadgen" "$@" --sidehook "$bin" | tee "$out/$i-$side.txt"
	done
done

echo
echo "targets of each run (reports in $out):"
for ((i = 1; i <= pairs; i++)); do
	for side in a b; do
		echo "== pair $i, $side"
		sed -n '/^target /,$p' "$out/$i-$side.txt"
	done
done
