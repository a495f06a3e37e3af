// BullMQ worker for the Corral benchmark: each job INCRs the shared counter; a "stamp"
// job first RPUSHes its start time (seconds since the epoch) for the latency probe.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const url = process.env.BENCH_REDIS_URL;
const counter = new IORedis(url);
const now = () => (performance.timeOrigin + performance.now()) / 1000;

const worker = new Worker(
  "bench",
  async (job) => {
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
