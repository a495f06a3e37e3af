// The progress page: one EventSource on the app's stream of this job (Corral's
// job events: state, progress per page, end), which the browser reconnects by itself.
"use strict";
const jobId = decodeURIComponent(window.location.pathname.split("/").pop());
const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat();

function show(view) {
  const p = view.progress;
  if (p) {
    $("bar").max = p.totalPages;
    $("bar").value = p.currentPage;
    $("detail").textContent =
      `Page ${p.currentPage} of ${p.totalPages}: ` +
      `${number.format(p.ordersProcessed)} of about ${number.format(p.estimatedTotal)} orders`;
  }
  if (view.status) $("status").textContent = view.status;
}

const events = new EventSource(`/api/sync-jobs/${encodeURIComponent(jobId)}/events`);
events.addEventListener("state", (e) => show(JSON.parse(e.data)));
events.addEventListener("progress", (e) => show(JSON.parse(e.data)));
events.addEventListener("end", (e) => {
  events.close();  // the stream is over: don't reconnect
  const view = JSON.parse(e.data);
  show(view);
  if (view.status === "completed") {
    $("bar").value = $("bar").max;
    $("status").textContent = `✅ Your ${number.format(view.result.orders)} orders are ready!`;
    $("dashboard").href = `/dashboard/${encodeURIComponent(view.result.restaurantId)}`;
    $("dashboard").hidden = false;
  }
});
