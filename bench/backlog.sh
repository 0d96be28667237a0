#!/usr/bin/env bash
# bench/backlog.sh: acwd run draining a backlog, as a user would run it.
#
# A development broker (acwd devbroker, 12 partitions) and a redis-server
# run as processes of their own; a simulated log of ACWD_BENCH_EVENTS
# events (default 1 000 000; 2 000 agents) is produced into the broker
# first; then acwd run (its own process, default settings) drains it.
# The script reports the drain's events/s, acwd's CPU per event, its
# peak resident memory (VmHWM), and the rate at which encoding/json
# decodes the same log on one core (BenchmarkJSONDecode), with the ratio
# of the two, and the two in CPU per event. It also gives the CPU per
# event that the broker and Redis spent meanwhile: on a small machine they
# share acwd's cores. Measures
# that machine noise does not move, to compare builds by: the bytes acwd
# allocated, and the commands and bytes Redis received, per event.
#
#   bench/backlog.sh                      # from the repository's root
#   ACWD_BENCH_EVENTS=2000000 bench/backlog.sh
#   ACWD_RUN_FLAGS="--batch-max-bytes 65536" bench/backlog.sh
#   ACWD_RUN_ENV="GOMEMLIMIT=200MiB" bench/backlog.sh   # environment of acwd run only
#
# Ports: KAFKA_PORT (19092), REDIS_PORT (16390), HTTP_PORT (18080).
set -euo pipefail
N=${ACWD_BENCH_EVENTS:-1000000}
KAFKA_PORT=${KAFKA_PORT:-19092}
REDIS_PORT=${REDIS_PORT:-16390}
HTTP_PORT=${HTTP_PORT:-18080}
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

go build -o "$dir/acwd" ./cmd/acwd
"$dir/acwd" devbroker --listen "127.0.0.1:$KAFKA_PORT" --partitions 12 --topic acw.events --derived >"$dir/devbroker.log" 2>&1 &
broker=$!
pids+=($broker)
redis-server --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
redis=$!
pids+=($redis)
for _ in $(seq 50); do
	redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
	sleep 0.1
done

echo "producing $N events…"
"$dir/acwd" sim --seed 1 --agents 2000 --teams 40 --queues 12 --events "$N" --disorder 1s --duplicates 0.001 \
	--brokers "127.0.0.1:$KAFKA_PORT" --topic acw.events >/dev/null

# the sum of the partitions' checkpointed offsets (read by name: a KEYS
# scan of the whole keyspace every 0.2 s took a tenth of Redis's time)
progress() {
	redis-cli -p "$REDIS_PORT" --raw eval "
		local n = 0
		for p = 0, 11 do
			n = n + tonumber(redis.call('HGET', 'acw:ckpt:backlog:acw.events:' .. p, 'eff_offset') or 0)
		end
		return n" 0
}

# a process's CPU so far, in clock ticks
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Redis's commands so far and the bytes it has read
redis_calls() { redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,]' '/^cmdstat_/ {n += $2} END {print n}'; }
redis_bytes() { redis-cli -p "$REDIS_PORT" info stats | awk -F: '/^total_net_input_bytes/ {print $2 + 0}'; }

echo "draining with ${ACWD_RUN_ENV:-} acwd run ${ACWD_RUN_FLAGS:-}…"
broker0=$(ticks "$broker")
redis0=$(ticks "$redis")
calls0=$(redis_calls)
bytes0=$(redis_bytes)
t0=$(date +%s.%N)
# shellcheck disable=SC2086
env ${ACWD_RUN_ENV:-} "$dir/acwd" run --brokers "127.0.0.1:$KAFKA_PORT" --topic acw.events --group backlog \
	--redis "redis://127.0.0.1:$REDIS_PORT/0" --http "127.0.0.1:$HTTP_PORT" --log-level warn ${ACWD_RUN_FLAGS:-} >"$dir/run.log" 2>&1 &
run=$!
pids+=($run)
while [ "$(progress)" -lt "$N" ]; do
	if ! kill -0 "$run" 2>/dev/null; then
		echo "acwd run exited:"
		cat "$dir/run.log"
		exit 1
	fi
	sleep 0.2
done
t1=$(date +%s.%N)
broker1=$(ticks "$broker")
redis1=$(ticks "$redis")
calls1=$(redis_calls)
bytes1=$(redis_bytes)
# what acwd allocated (the Go runtime's count since it started: the drain,
# its start and the polls above; machine noise does not move it)
alloc=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^go_memstats_alloc_bytes_total/ {print $2 + 0}')
read -r utime stime < <(awk '{print $14, $15}' "/proc/$run/stat")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$run/status")
tck=$(getconf CLK_TCK)
calc() { awk "BEGIN { print $1 }"; }
secs=$(calc "$t1 - $t0")
rate=$(calc "$N / $secs")
cpu_us=$(calc "($utime + $stime) / $tck * 1000000 / $N")

echo "decoding the same log with encoding/json on one core…"
json=$(ACWD_BENCH_EVENTS=$N GOMAXPROCS=1 go test -run '^$' -bench 'JSONDecode$' -benchtime 2x ./cmd/acwd/ | awk '/BenchmarkJSONDecode/ {for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i}')

printf 'drained %d events in %.2f s: %.0f events/s\n' "$N" "$secs" "$rate"
printf 'acwd run CPU: %.2f µs per event (%.2f cores on average)\n' "$cpu_us" "$(calc "$cpu_us * $rate / 1000000")"
printf 'acwd run peak RSS: %d MB\n' "$((hwm / 1024))"
printf 'acwd run allocated %.0f bytes per event\n' "$(calc "$alloc / $N")"
printf 'meanwhile the devbroker: %.2f µs per event, redis-server: %.2f µs per event\n' \
	"$(calc "($broker1 - $broker0) / $tck * 1000000 / $N")" "$(calc "($redis1 - $redis0) / $tck * 1000000 / $N")"
printf 'Redis: %.3f commands and %.0f bytes read per event\n' "$(calc "($calls1 - $calls0) / $N")" "$(calc "($bytes1 - $bytes0) / $N")"
printf 'encoding/json, one core: %.0f events/s; acwd run drains at %.2f of it\n' "$json" "$(calc "$rate / $json")"
# The same comparison in CPU per event, which does not depend on Redis
# and the broker sharing acwd's cores: encoding/json's decode against all
# of acwd's work (decode, engine, the Redis transaction, fetching,
# publishing).
printf 'encoding/json decodes in %.2f µs per event: %.2f of acwd run'"'"'s CPU per event\n' "$(calc "1000000 / $json")" "$(calc "1000000 / $json / $cpu_us")"
