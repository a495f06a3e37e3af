// BullMQ producer for the Corral benchmark. Modes (prints one JSON object):
//   one N            add N jobs one await at a time      -> {"elapsed", "cpu", "redis_cpu"} (s)
//   bulk|fill N [KIND] addBulk in chunks of 1,000 (KIND: incr, noop) -> {"elapsed", "cpu", "redis_cpu"} (s)
//   latency N GAP    N probes: add, wait for the start    -> {"latencies": [seconds...]}
import { Queue } from "bullmq";
import IORedis from "ioredis";

const url = process.env.BENCH_REDIS_URL;
const [mode, countArg, extraArg] = process.argv.slice(2);
const kind = mode === "bulk" && extraArg ? extraArg : "incr";
const n = Number(countArg);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const queue = new Queue("bench", { connection });
await queue.waitUntilReady();
// Warm up (JIT, script cache) on a throwaway queue, as a long-running producer would be.
if (mode === "one" || mode === "bulk" || mode === "fill") {
  const warm = new Queue("bench-warmup", { connection });
  for (let i = 0; i < 300; i++) await warm.add("incr", { i });
  await warm.addBulk(Array.from({ length: 1000 }, (_, i) => ({ name: "incr", data: { i } })));
  await warm.obliterate({ force: true });
  await warm.close();
}
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const cpuSeconds = (since) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};
const redisCpu = async () => {
  const info = await connection.info("cpu");
  const field = (name) => Number(info.match(new RegExp(`${name}:([0-9.]+)`))[1]);
  return field("used_cpu_user") + field("used_cpu_sys");
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let result;
if (mode === "one") {
  const [redis0, start, cpu] = [await redisCpu(), performance.now(), process.cpuUsage()];
  for (let i = 0; i < n; i++) await queue.add("incr", { i });
  const elapsed = (performance.now() - start) / 1000;
  result = { elapsed, cpu: cpuSeconds(cpu), redis_cpu: (await redisCpu()) - redis0 };
} else if (mode === "bulk" || mode === "fill") {
  const [redis0, start, cpu] = [await redisCpu(), performance.now(), process.cpuUsage()];
  for (let first = 0; first < n; first += 1000) {
    const jobs = [];
    for (let i = first; i < Math.min(n, first + 1000); i++) jobs.push({ name: kind, data: { i } });
    await queue.addBulk(jobs);
  }
  const elapsed = (performance.now() - start) / 1000;
  result = { elapsed, cpu: cpuSeconds(cpu), redis_cpu: (await redisCpu()) - redis0 };
} else if (mode === "latency") {
  const blocking = new IORedis(url);
  const latencies = [];
  for (let i = 0; i < n; i++) {
    const sent = now();
    await queue.add("stamp", { i });
    const reply = await blocking.blpop("bench:starts", 30);
    if (reply === null) throw new Error(`latency probe ${i} did not start within 30 s`);
    latencies.push(Number(reply[1]) - sent);
    await sleep(Number(extraArg) * 1000);
  }
  blocking.disconnect();
  result = { latencies };
} else {
  throw new Error(`unknown mode ${mode}`);
}
await queue.close();
connection.disconnect();
process.stdout.write(JSON.stringify(result) + "\n");
