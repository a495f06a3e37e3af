// Enqueue a job and wait for its result from Node (18+), no Python needed.
//   CORRAL_API=http://127.0.0.1:8000 CORRAL_KEY=... node examples/enqueue.mjs
const api = process.env.CORRAL_API ?? "http://127.0.0.1:8000";
const headers = { "content-type": "application/json" };
if (process.env.CORRAL_KEY) headers.authorization = `Bearer ${process.env.CORRAL_KEY}`;

const res = await fetch(`${api}/api/v1/jobs`, {
  method: "POST", headers,
  body: JSON.stringify({ task: "pos.sync", args: ["restaurant-42"], kwargs: { pages: 3 }, queue: "sync" }),
});
if (!res.ok) throw new Error(`enqueue failed: ${res.status} ${(await res.json()).error}`);
const job = await res.json();
const done = await (await fetch(`${api}/api/v1/queues/sync/jobs/${job.id}/result?timeout=30`, { headers })).json();
console.log(job.id, done.state, JSON.stringify(done.result));
