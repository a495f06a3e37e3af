// The overview's charts (uPlot, vendored): jobs completed and failed per slot, and the
// p95 run time, of every queue together over the last hour or day. The data comes from
// {data-source}?span={data-span} after the page loaded (the page itself never waits for
// it), and again on live counts (corral:counts, see live.js), at most every 10 seconds.
(function () {
  "use strict";

  var section = document.getElementById("history");
  if (!section || typeof window.uPlot === "undefined") return;
  var source = section.getAttribute("data-source") + "?span=" +
    encodeURIComponent(section.getAttribute("data-span") || "hour");
  var REFRESH_MS = 10000;
  var plots = {};
  var fetchedAt = 0;
  var loading = false;

  function color(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function sizeOf(el) {
    return { width: Math.max(240, el.clientWidth), height: 180 };
  }

  function axes() {
    var stroke = color("--muted", "#777");
    var grid = { stroke: color("--line", "#ddd"), width: 1 };
    return [{ stroke: stroke, grid: grid, ticks: grid }, { stroke: stroke, grid: grid, ticks: grid }];
  }

  function draw(id, series, data) {
    var el = document.getElementById(id);
    if (!el) return;
    if (plots[id]) {
      plots[id].setData(data);
      return;
    }
    var size = sizeOf(el);
    plots[id] = new window.uPlot(
      { width: size.width, height: size.height, series: [{}].concat(series), axes: axes() },
      data,
      el
    );
  }

  function show(history) {
    var xs = [], completed = [], failed = [], p95 = [];
    history.points.forEach(function (point) {
      xs.push(point.ts / 1000);
      completed.push(point.completed);
      failed.push(point.failed);
      p95.push(point.p95_ms);
    });
    draw("chart-outcomes", [
      { label: "completed", stroke: color("--ok", "#1a7f37"), width: 2 },
      { label: "failed", stroke: color("--bad", "#c9302c"), width: 2 }
    ], [xs, completed, failed]);
    draw("chart-p95", [
      // Points too: minutes with completions are often isolated, and a lone value
      // draws no line.
      { label: "p95 ms", stroke: color("--accent", "#2457c5"), width: 2, points: { show: true, size: 5 } }
    ], [xs, p95]);
    var totals = section.querySelector("[data-totals]");
    if (totals) {
      totals.textContent = history.totals.completed + " completed, " +
        history.totals.failed + " failed";
    }
    var overall = section.querySelector("[data-p95]");
    if (overall) {
      overall.textContent = history.totals.p95_ms === null
        ? "no completed job"
        : "p95 over the span: " + history.totals.p95_ms + " ms";
    }
    section.setAttribute("data-loaded", String(history.totals.completed + history.totals.failed));
  }

  function load() {
    if (loading) return;
    loading = true;
    fetchedAt = Date.now();
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (history) { if (history) show(history); })
      .catch(function () {})
      .then(function () { loading = false; });
  }

  document.addEventListener("corral:counts", function () {
    if (Date.now() - fetchedAt >= REFRESH_MS) load();
  });
  window.addEventListener("resize", function () {
    Object.keys(plots).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) plots[id].setSize(sizeOf(el));
    });
  });
  load();
})();
