// BullMQ worker for the Corral benchmark (the same bodies as systems/common.py):
// "incr" INCRs the shared counter through a plain ioredis client; "stamp" first RPUSHes
// its start time (seconds since the epoch) for the latency probe; "noop" (the empty
// body) only counts itself, and a 5 ms timer writes the count to the bench:done hash.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const url = process.env.BENCH_REDIS_URL;
const counter = new IORedis(url);
const now = () => (performance.timeOrigin + performance.now()) / 1000;
counter.hset("bench:loops", String(process.pid), "node (libuv)");
let done = 0;
let sent = 0;
setInterval(() => {
  if (done !== sent) {
    sent = done;
    counter.hset("bench:done", String(process.pid), sent);
  }
}, 5);

const worker = new Worker(
  "bench",
  async (job) => {
    if (job.name === "noop") {
      done += 1;
      return;
    }
    if (job.name === "stamp") await counter.rpush("bench:starts", String(now()));
    await counter.incr("bench:count");
  },
  { connection: new IORedis(url, { maxRetriesPerRequest: null }), concurrency: 50 },
);

const stop = async () => {
  await worker.close();
  counter.disconnect();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
