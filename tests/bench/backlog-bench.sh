#!/usr/bin/env bash
# Memory and disk under a backlog: the benchmark pipeline of ../shared/bench on a node running as a
# daemon, with its file output stopped until EVENTS events wait in the output's inbox.
#
#   file collector -> generic CSV parser -> deduplicator -> taxonomy -> url2fqdn -> file output
#
# usage: tests/bench/backlog-bench.sh [EVENTS]   (default 1000000)
# env: SYNC=always|interval|never  store durability (default interval, the node's default)
#      INTELMQ_SHARED_DIR          the shared/ folder (default: beside the clone)
#      INTELMQ_NODE_BIN, INTELMQCTL_BIN  use these binaries instead of building them
#      BENCH_TIMEOUT               seconds before the run fails (default 900)
# prints: backlog-bench: EVENTS queued, peak RSS M MB, drain R events/s, store size before/after B MB/A MB
#
# The feed (no repeated rows, so every row is an event) goes into the collector's directory as files
# of at most 50,000 rows, one after the other (the collector runs every second and deletes each
# file once its reports are committed). The output's inbox has no `max_queue_length`, so nothing
# upstream waits. Once EVENTS events are queued, `intelmqctl bot start file-output` starts the drain,
# timed until the output file holds EVENTS lines. The node's RSS is sampled every 100 ms from
# /proc/PID/status (its VmHWM is the peak); the RSS at each quarter of the backlog goes to stderr.
# Store size: `du` of var/lib/store once everything is queued, and after the drain once it stops
# shrinking. It keeps the deduplicator's cache (one entry per event, 24 h TTL).
set -euo pipefail
EVENTS=${1:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
SHARED=${INTELMQ_SHARED_DIR:-$WS/../shared}
SYNC=${SYNC:-interval}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/intelmq-rs-target}

if [ -z "${INTELMQ_NODE_BIN:-}" ] || [ -z "${INTELMQCTL_BIN:-}" ]; then
  (cd "$WS" && cargo build --release -q -p intelmq-node -p intelmq-ctl --bins)
fi
NODE=${INTELMQ_NODE_BIN:-$CARGO_TARGET_DIR/release/intelmq-node}
CTL=${INTELMQCTL_BIN:-$CARGO_TARGET_DIR/release/intelmqctl}

ROOT=$(mktemp -d /tmp/intelmq-rs-backlog.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/etc" "$ROOT/in" "$ROOT/out" "$ROOT/parts"
python3 "$SHARED/bench/gen_feed.py" "$EVENTS" "$ROOT/feed.csv" --dup-every 0
# The node's config: the bench pipeline, its collector every second, no watermark on the output's inbox.
sed -e "s#@ROOT@#$ROOT#g" -e "s#@REDIS_PORT@#6379#g" \
  -e 's#^    rate_limit: 3600$#    rate_limit: 1#' \
  -e 's#^    overwrite: false$#    overwrite: false\n    max_queue_length: 0#' \
  "$SHARED/bench/intelmq_runtime.yaml" > "$ROOT/etc/runtime.yaml"
grep -q 'rate_limit: 1$' "$ROOT/etc/runtime.yaml" && grep -q 'max_queue_length: 0' "$ROOT/etc/runtime.yaml" \
  || { echo "backlog-bench: $SHARED/bench/intelmq_runtime.yaml changed, cannot adapt it" >&2; exit 1; }
printf '{"store": {"sync": "%s"}}\n' "$SYNC" > "$ROOT/etc/node.conf"

python3 - "$NODE" "$CTL" "$ROOT" "$EVENTS" "${BENCH_TIMEOUT:-900}" <<'PY'
import json, os, signal, subprocess, sys, threading, time

node, ctl, root, events, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
deadline = time.monotonic() + timeout
PART_ROWS = 50_000
OUT = os.path.join(root, "out", "events.txt")
STORE = os.path.join(root, "var", "lib", "store")


def fail(why):
    print(f"backlog-bench: {why}", file=sys.stderr)
    sys.exit(1)


def check_time(what):
    if time.monotonic() > deadline:
        fail(f"timed out after {timeout:.0f} s {what}")


# The feed in parts of at most PART_ROWS rows, each with the header.
with open(os.path.join(root, "feed.csv")) as f:
    header = f.readline()
    rows = f.readlines()
if len(set(rows)) != len(rows):
    fail(f"the feed has repeated rows ({len(rows) - len(set(rows))}); every row must become an event")
parts = []
for i in range(0, len(rows), PART_ROWS):
    path = os.path.join(root, "parts", f"part-{i // PART_ROWS:05d}.csv")
    with open(path, "w") as f:
        f.write(header)
        f.writelines(rows[i : i + PART_ROWS])
    parts.append(path)
del rows
os.unlink(os.path.join(root, "feed.csv"))

stderr = open(os.path.join(root, "node.stderr"), "w")
proc = subprocess.Popen([node, "--root", root], stdout=subprocess.DEVNULL, stderr=stderr)


def status_kb(field):
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


peak_kb = 0
sampling = True


def sample():
    global peak_kb
    while sampling:
        peak_kb = max(peak_kb, status_kb("VmRSS"))
        time.sleep(0.1)


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()


def stop_node():
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ctl(*args):
    r = subprocess.run([ctl, "--root", root, *args], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"intelmqctl {' '.join(args)} exited with {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def queues():
    """Queue name -> messages waiting."""
    sizes = {}
    for bot in json.loads(run_ctl("--json", "queue", "list")).values():
        for name, n in [bot.get("source_queue", [None, 0])] + bot.get("destination_queues", []):
            if name:
                sizes[name] = n
    return sizes


def du_mb(path):
    total = 0
    for d, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(d, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # removed by a compaction meanwhile
    return total / 2**20


def rss_mb():
    return status_kb("VmRSS") / 1024


try:
    socket = os.path.join(root, "var", "run", "control.sock")
    while not os.path.exists(socket):
        if proc.poll() is not None:
            fail(f"the node exited with {proc.returncode}: {open(stderr.name).read()}")
        check_time("waiting for the control socket")
        time.sleep(0.05)
    time.sleep(0.2)
    run_ctl("bot", "stop", "file-output")

    # Fill the backlog, one part at a time.
    marks = [events * k // 4 for k in (1, 2, 3, 4)]
    rss_at = []
    queued = 0
    for part in parts:
        target = os.path.join(root, "in", os.path.basename(part))
        os.rename(part, target)
        while os.path.exists(target):
            if proc.poll() is not None:
                fail(f"the node exited with {proc.returncode}")
            check_time("feeding the collector")
            time.sleep(0.05)
        queued = queues().get("file-output-queue", 0)
        while marks and queued >= marks[0]:
            rss_at.append((marks.pop(0), rss_mb()))
    while True:
        sizes = queues()
        queued = sizes.get("file-output-queue", 0)
        while marks and queued >= marks[0]:
            rss_at.append((marks.pop(0), rss_mb()))
        if queued >= events and sum(sizes.values()) == queued:
            break
        check_time(f"for {events} events in file-output-queue ({queued} so far, {sizes})")
        time.sleep(0.2)
    time.sleep(1)
    rss_at.append(("queued, idle", rss_mb()))
    before = du_mb(STORE)

    # The drain: timed from the start of the output until its file holds every event.
    start = time.monotonic()
    run_ctl("bot", "start", "file-output")
    lines, offset = 0, 0
    while lines < events:
        check_time(f"draining ({lines} of {events} events written)")
        time.sleep(0.05)
        try:
            with open(OUT, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            continue
        cut = chunk.rfind(b"\n") + 1
        lines += chunk.count(b"\n", 0, cut)
        offset += cut
    drain = time.monotonic() - start
    rss_at.append(("drained", rss_mb()))

    # On-disk size once compaction is done: no change for 3 s (checked every 0.5 s).
    after, same_since = du_mb(STORE), time.monotonic()
    while time.monotonic() - same_since < 3:
        check_time(f"for the store to stop shrinking ({after:.1f} MB)")
        time.sleep(0.5)
        now = du_mb(STORE)
        if abs(now - after) > 0.05:
            after, same_since = now, time.monotonic()
    peak_kb = max(peak_kb, status_kb("VmHWM"))
finally:
    sampling = False
    stop_node()

if lines != events:
    fail(f"expected {events} events in {OUT}, found {lines}")
print("backlog-bench: RSS " + ", ".join(f"{m}: {v:.1f} MB" for m, v in rss_at), file=sys.stderr)
print(
    f"backlog-bench: {events} queued, peak RSS {peak_kb / 1024:.1f} MB, drain {events / drain:.1f} events/s, "
    f"store size before/after {before:.1f} MB/{after:.1f} MB"
)
PY
