#!/usr/bin/env bash
# Instructions per unit of work for every contender of the loopback benchmark's rows whose
# contenders each run on one thread: per MiB of bulk sent, plain and TLS, and received; per
# 64-byte message; per plain and per TLS connection. (The echo and concurrent rows have
# contenders that run on several threads, where one thread's count is not the cost.)
# Wall-clock figures on this machine drift by a third over an hour;
# instruction counts do not, so a change of a few percent can be seen.
#
# Each variant runs alone (`--only SECTION --variant NAME --reps 1`) under callgrind, at two
# sizes of its job. The client runs on the process's main thread (servers have threads of
# their own, counted apart with --separate-threads), and the difference of the main thread's
# instructions between the two sizes, divided by the difference of the work, is the cost of
# one more unit: setup (the PKI, the runtime, the servers) cancels out. callgrind counts
# user-space instructions only, so the main thread's system calls per unit (strace, the same
# two sizes) are beside them.
#
#   driver-polling/benches/instructions.sh              # every row (about 4 minutes)
#   driver-polling/benches/instructions.sh small        # one row: bulk, tls, small,
#                                                       # receive, connections,
#                                                       # tls-connections
# Needs valgrind and strace (apt-get install valgrind strace). Prints a Markdown table per row.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in valgrind strace; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is not installed" >&2; exit 2; }
done

bench=$(cargo bench -p tcpclient-polling --bench loopback --no-run 2>&1 \
  | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -x "$bench" ] || { echo "instructions.sh: the benchmark did not build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A row: its name, the section for --only, the start of its table's title, the unit, the
# flags at the small and at the large size, and how many units more the large size has.
rows=(
  "bulk|bulk|Bulk send, plain|MiB|--bulk-mib 4|--bulk-mib 12|8"
  "tls|tls|Bulk send, TLS|MiB|--bulk-mib 2|--bulk-mib 18|16"
  "small|small|64-byte messages|64-byte message|--small-kib 256|--small-kib 768|8192"
  "receive|receive|Bulk receive, plain|MiB|--bulk-mib 4|--bulk-mib 12|8"
  "connections|connections|Connections per second, plain|connection|--connections 20 --tls-connections 0|--connections 60 --tls-connections 0|40"
  "tls-connections|connections|Connections per second, TLS|connection|--connections 0 --tls-connections 10|--connections 0 --tls-connections 50|40"
)

# `--variant` keeps every variant whose name contains the text: make sure the row's table
# of the run just made has the one asked for, alone.
ran() {
  local rows
  rows=$(awk -v title="### $title" '
    /^### / { keep = index($0, title) == 1 }
    keep && /^\| / && !/^\| variant/ && !/^\|---/ { n++ } END { print n + 0 }' "$work/run.txt")
  [ "$rows" = 1 ] || { echo "instructions.sh: --variant '$1' ran $rows variants of $title" >&2; exit 1; }
}

# The main thread's instructions in one run of one variant.
count() {
  local out="$work/cg"
  rm -f "$out".*
  # shellcheck disable=SC2086 # the size flags are words
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
    "$bench" --only "$1" --variant "$2" --reps 1 $3 >"$work/run.txt" 2>"$work/valgrind.txt" \
    || { cat "$work/valgrind.txt" >&2; exit 1; }
  ran "$2"
  local main
  main=$(find "$work" -name 'cg.*-01' | head -n 1)
  [ -n "$main" ] || { echo "instructions.sh: no callgrind output for the main thread" >&2; exit 1; }
  sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$main" | head -n 1
}

# The main thread's system calls in one run of one variant: callgrind counts instructions in
# user space only, so a row whose work is in the kernel shows there.
calls() {
  # shellcheck disable=SC2086
  strace -f -qq -o "$work/strace.txt" \
    "$bench" --only "$1" --variant "$2" --reps 1 $3 >"$work/run.txt" 2>/dev/null
  awk 'NR == 1 { main = $1 } $1 == main && !/resumed>/ { n++ } END { print n + 0 }' "$work/strace.txt"
}

only=${1:-}
for row in "${rows[@]}"; do
  IFS='|' read -r name section title unit small large units <<<"$row"
  [ -z "$only" ] || [ "$only" = "$name" ] || continue
  # The row's variants, from a smoke run's table; the first is ours.
  # shellcheck disable=SC2086
  "$bench" --only "$section" --smoke --reps 1 $small >"$work/list.txt"
  mapfile -t variants < <(awk -v title="### $title" '
    /^### / { keep = index($0, title) == 1 }
    keep && /^\| / && !/^\| variant/ && !/^\|---/ {
      split($0, cells, "|"); v = cells[2]; gsub(/^ +| +$|\*\*/, "", v); print v
    }' "$work/list.txt")
  [ ${#variants[@]} -gt 0 ] || { echo "instructions.sh: no table titled $title" >&2; exit 1; }
  printf '\n### %s: instructions per %s, on the client\x27s thread\n\n' "$title" "$unit"
  echo "| variant | instructions | ours vs this | system calls |"
  echo "|---|---:|---:|---:|"
  ours=""
  for variant in "${variants[@]}"; do
    a=$(count "$section" "$variant" "$small")
    b=$(count "$section" "$variant" "$large")
    per=$(( (b - a) / units ))
    if [ -z "$ours" ]; then
      ours=$per
      ratio="—"
    else
      ratio=$(awk -v o="$ours" -v p="$per" 'BEGIN { printf "%.2f× the instructions", o / p }')
    fi
    c=$(calls "$section" "$variant" "$small")
    d=$(calls "$section" "$variant" "$large")
    syscalls=$(awk -v c="$c" -v d="$d" -v u="$units" 'BEGIN { printf "%.2f", (d - c) / u }')
    echo "| $variant | $per | $ratio | $syscalls |"
  done
done
