#!/usr/bin/env bash
# Profile one Corral worker draining N bench jobs from its own redis-server.
#   bench/profile_worker.sh [N] [OUT]      (N=60000; OUT=/tmp/corral-profile)
# BODY=noop runs jobs with the empty body (no INCR): Corral's own cost per job. The INCR
# body goes through a plain redis.asyncio.Redis, as in the benchmark's headline; set
# BENCH_BODY=ctx to send it through ctx.redis instead.
# Prints the drain rate and the worker's CPU µs/job; with PROFILE=1 it runs the worker
# under py-spy (`pip install py-spy`, or PYSPY=/path/to/py-spy) and writes OUT.txt in
# py-spy's raw format (one "frame;frame;... count" line per stack).
# Needs bench/.venv (python bench/run.py --setup) and /usr/bin/time.
set -euo pipefail
N=${1:-60000}; OUT=${2:-/tmp/corral-profile}
BENCH=$(cd "$(dirname "$0")" && pwd)
PY=$BENCH/.venv/bin/python
PORT=${PORT:-6391}
redis-server --port "$PORT" --save "" --appendonly no --daemonize yes --logfile /dev/null
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true' EXIT
sleep 0.3
export BENCH_REDIS_URL=redis://127.0.0.1:$PORT/0 CORRAL_URL=redis://127.0.0.1:$PORT/0
export PYTHONPATH=$BENCH
cd "$BENCH"
"$PY" -c "
import asyncio
from systems.corral_redis import make_app
async def main():
    app, _ = make_app('$CORRAL_URL')
    task = app.tasks['bench.${BODY:-incr}']
    await task.enqueue_many([(i,) for i in range($N)])
    await app.close()
asyncio.run(main())"
worker=("$PY" -m corral worker systems.corral_redis:app -c 50 --log-level warning)
if [ -n "${PROFILE:-}" ]; then
  "${PYSPY:-py-spy}" record -r 250 --format raw -o "$OUT.txt" -- "${worker[@]}" &
else
  /usr/bin/time -f "%U %S" -o "$OUT.cpu" "${worker[@]}" &
fi
if [ "${BODY:-incr}" = noop ]; then  # no counter: read Corral's own completion count
  count() { redis-cli -p "$PORT" hget "corral:{bench}:meta" m:completed; }
else
  count() { redis-cli -p "$PORT" get bench:count; }
fi
until [ -n "$(count)" ]; do sleep 0.01; done
c0=$(count); start=$(date +%s.%N)
until [ "$(count)" = "$N" ]; do sleep 0.05; done
end=$(date +%s.%N)
pkill -INT -f "corral worker systems.corral_redis" || true
wait
python3 -c "print(f'drain: {($N - $c0) / ($end - $start):,.0f} jobs/s')"
if [ -z "${PROFILE:-}" ]; then
  python3 -c "u, s = open('$OUT.cpu').read().split()[-2:]; print(f'worker CPU: {(float(u) + float(s)) * 1e6 / $N:.0f} us/job (start-up included)')"
fi
