#!/usr/bin/env bash
# The benchmark pipeline of ../shared/bench on our node, timed like IntelMQ's baseline.
#
#   file collector -> generic CSV parser -> deduplicator -> taxonomy -> url2fqdn -> file output
#
# usage: tests/bench/pipeline-bench.sh ROWS [--compare]
#   --compare  also runs ../shared/bench/intelmq_baseline.sh ROWS (IntelMQ 3.5 from PyPI), prints
#              `ratio: X` (our rate / IntelMQ's) and checks that both wrote the same events
#              (apart from time.observation and feed.url, which holds each run's root).
# env: SYNC=always|interval|never  store durability (default interval, the node's default)
#      INTELMQ_SHARED_DIR          the shared/ folder (default: beside the clone)
#      INTELMQ_NODE_BIN            use this intelmq-node instead of building it
# prints: pipeline-bench: ROWS rows -> N events in S s = R events/s, peak RSS M MB
# Timed from the node's start to its exit; `--until-idle` exits only after the last event is
# committed to the output file.
set -euo pipefail
ROWS=${1:?usage: pipeline-bench.sh ROWS [--compare]}
COMPARE=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
SHARED=${INTELMQ_SHARED_DIR:-$WS/../shared}
SYNC=${SYNC:-interval}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/intelmq-rs-target}

if [ -z "${INTELMQ_NODE_BIN:-}" ]; then
  (cd "$WS" && cargo build --release -q -p intelmq-node --bin intelmq-node)
fi
NODE=${INTELMQ_NODE_BIN:-$CARGO_TARGET_DIR/release/intelmq-node}

ROOT=$(mktemp -d /tmp/intelmq-rs-bench.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/etc" "$ROOT/in" "$ROOT/out"
python3 "$SHARED/bench/gen_feed.py" "$ROWS" "$ROOT/feed.csv"
EXPECTED=$(tail -n +2 "$ROOT/feed.csv" | sort -u | wc -l)
sed -e "s#@ROOT@#$ROOT#g" -e "s#@REDIS_PORT@#6379#g" "$SHARED/bench/intelmq_runtime.yaml" > "$ROOT/etc/runtime.yaml"
printf '{"store": {"sync": "%s"}}\n' "$SYNC" > "$ROOT/etc/node.conf"
cp "$ROOT/feed.csv" "$ROOT/in/feed.csv"

read -r SECS RSS CODE < <(python3 - "$NODE" "$ROOT" <<'PY'
import resource, subprocess, sys, time
node, root = sys.argv[1], sys.argv[2]
start = time.monotonic()
r = subprocess.run([node, "--root", root, "--until-idle"], stdout=subprocess.DEVNULL, stderr=open(root + "/node.stderr", "w"))
secs = time.monotonic() - start
rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{secs:.3f} {rss_mb:.1f} {r.returncode}")
PY
)
if [ "$CODE" != 0 ]; then
  echo "pipeline-bench: the node exited with $CODE" >&2
  cat "$ROOT/node.stderr" >&2
  exit 1
fi
N=$(wc -l < "$ROOT/out/events.txt")
RATE=$(python3 -c "print(f'{$N / $SECS:.1f}')")
echo "pipeline-bench: $ROWS rows -> $N events in $SECS s = $RATE events/s, peak RSS $RSS MB"
if [ "$N" != "$EXPECTED" ]; then
  echo "pipeline-bench: expected $EXPECTED events (unique rows), got $N" >&2
  exit 1
fi

if [ "$COMPARE" = "--compare" ]; then
  # IntelMQ drops root privileges to the user `intelmq`; the baseline script creates it with a PATH
  # that lacks /usr/sbin, so create it here.
  if [ "$(id -u)" = 0 ] && ! id intelmq >/dev/null 2>&1; then
    /usr/sbin/useradd --system --no-create-home intelmq
  fi
  BASE_OUT=$(KEEP_OUTPUT="$ROOT/intelmq-events.txt" bash "$SHARED/bench/intelmq_baseline.sh" "$ROWS" | tail -n 1)
  echo "$BASE_OUT"
  THEIRS=$(echo "$BASE_OUT" | sed -E 's/.*= ([0-9.]+) events\/s.*/\1/')
  python3 -c "print(f'ratio: {$RATE / $THEIRS:.1f}')"
  python3 - "$ROOT/out/events.txt" "$ROOT/intelmq-events.txt" <<'PY'
import collections, json, sys
def load(path):
    out = collections.Counter()
    for line in open(path):
        ev = json.loads(line)
        ev.pop("time.observation", None)
        ev.pop("feed.url", None)
        out[json.dumps(ev, sort_keys=True)] += 1
    return out
ours, theirs = load(sys.argv[1]), load(sys.argv[2])
if ours != theirs:
    only_ours, only_theirs = ours - theirs, theirs - ours
    print(f"events differ: {sum(only_ours.values())} only ours, {sum(only_theirs.values())} only IntelMQ's", file=sys.stderr)
    for k in list(only_ours)[:3]:
        print("  ours:    ", k, file=sys.stderr)
    for k in list(only_theirs)[:3]:
        print("  intelmq: ", k, file=sys.stderr)
    sys.exit(1)
print(f"events: identical to IntelMQ's ({sum(ours.values())} events, time.observation and feed.url aside)")
PY
fi
