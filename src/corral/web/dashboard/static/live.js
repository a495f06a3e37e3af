// The dashboard's live feed: one EventSource per tab on {data-base}live?{data-live}
// (see web/dashboard/live.py), for pages whose <body> has data-live.
//
// Other pages hook these events, fired on <body> and bubbling to `document`
// (e.g. htmx: hx-trigger="corral:job from:body"):
//   corral:counts  detail = {queues: [{name, waiting, ..., paused, workers, healthy, reason}]}
//   corral:job     detail = {queue, id, event}; event "resync" when some may have been
//                  missed (also sent for each watched job each time the stream opens)
//   corral:live    detail = {state: "open" | "connecting" | "closed"}
// The header's #live-dot shows the state. EventSource reconnects by itself after a
// network error; when the server answers with an error instead (a restart behind a
// proxy, a session that ended), this script tries again, waiting longer each time.
(function () {
  "use strict";

  var body = document.body;
  if (!body || !body.hasAttribute("data-live")) return;
  var query = body.getAttribute("data-live") || "";
  var url = (body.getAttribute("data-base") || "/") + "live" + (query ? "?" + query : "");
  var watched = new URLSearchParams(query).getAll("job");
  var dot = document.getElementById("live-dot");
  var source = null;
  var delay = 1000;
  var refetching = false;

  function emit(name, detail) {
    body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
  }

  function show(state) {
    if (dot) {
      dot.classList.toggle("on", state === "open");
      dot.classList.toggle("off", state !== "open");
      dot.title = state === "open" ? "live updates: on" : "live updates: reconnecting…";
      dot.setAttribute("data-state", state);
    }
    emit("corral:live", { state: state });
  }

  function healthBadge(row) {
    var badge = document.createElement("span");
    badge.className = row.healthy ? "badge ok" : "badge bad";
    badge.textContent = row.healthy ? "healthy" : row.reason;
    if (!row.healthy) badge.title = row.reason;
    return badge;
  }

  // Rows come and go with queues: then the table's rows are fetched again (rendered
  // for this viewer by the server); otherwise the cells change in place.
  function refetchRows(table) {
    if (refetching) return;
    refetching = true;
    fetch(table.getAttribute("data-rows"), { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html !== null) table.tBodies[0].innerHTML = html;
      })
      .catch(function () {})
      .then(function () { refetching = false; });
  }

  function updateCounts(data) {
    var table = document.getElementById("queues");
    if (!table || !table.tBodies.length) return;
    var rows = {};
    table.tBodies[0].querySelectorAll("tr[data-queue]").forEach(function (tr) {
      rows[tr.getAttribute("data-queue")] = tr;
    });
    var names = data.queues.map(function (q) { return q.name; });
    var shown = Object.keys(rows);
    if (names.length !== shown.length || names.some(function (n) { return !rows[n]; })) {
      refetchRows(table);
      return;
    }
    data.queues.forEach(function (q) {
      var tr = rows[q.name];
      tr.querySelectorAll("[data-count]").forEach(function (cell) {
        var value = String(q[cell.getAttribute("data-count")]);
        if (cell.textContent !== value) cell.textContent = value;
      });
      var workers = tr.querySelector("[data-workers]");
      if (workers) workers.textContent = String(q.workers);
      tr.setAttribute("data-paused", q.paused ? "1" : "0");
      var health = tr.querySelector("[data-health]");
      if (health) health.replaceChildren(healthBadge(q));
    });
  }

  function connect() {
    show("connecting");
    source = new EventSource(url);
    source.addEventListener("open", function () {
      delay = 1000;
      show("open");
      // Also on the first open: a job that changed between the page's render and
      // this stream's subscription sent its event to no one (a worker claiming a
      // job just retried from its page would otherwise show "waiting" until the
      // next event, which may be minutes away).
      watched.forEach(function (key) {
        var slash = key.indexOf("/");
        emit("corral:job", { queue: key.slice(0, slash), id: key.slice(slash + 1), event: "resync" });
      });
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        show("closed");
        source.close();
        window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      } else {
        show("connecting");
      }
    });
    source.addEventListener("counts", function (event) {
      var data = JSON.parse(event.data);
      updateCounts(data);
      emit("corral:counts", data);
    });
    source.addEventListener("job", function (event) {
      emit("corral:job", JSON.parse(event.data));
    });
  }

  // Leaving the page closes the stream at once (the server frees the tab).
  window.addEventListener("pagehide", function () { if (source) source.close(); });
  window.addEventListener("pageshow", function (event) { if (event.persisted) connect(); });
  connect();
})();
