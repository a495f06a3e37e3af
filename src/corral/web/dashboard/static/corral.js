// Corral dashboard: the little JavaScript every page shares. Loaded from /static (the
// Content-Security-Policy allows no inline script); page scripts live beside it.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Times are rendered in UTC by the server; show them in the viewer's time zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.localised) return;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.title = el.textContent;
      el.textContent = when.toLocaleString();
      el.dataset.localised = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.target); });

  // Buttons with data-confirm ask first (no inline handlers under the CSP).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);

  // Once a form is on its way, live refetches stand down: their answer (a reload when
  // the job's state changed) must not race the page the form leads to.
  var leaving = false;
  document.addEventListener("submit", function (event) {
    if (!event.defaultPrevented && !event.target.hasAttribute("hx-get")) leaving = true;
  });
  window.addEventListener("pageshow", function () { leaving = false; });
  ["htmx:beforeRequest", "htmx:beforeOnLoad"].forEach(function (name) {
    document.addEventListener(name, function (event) { if (leaving) event.preventDefault(); });
  });

  // The queue page's "tick every job" box.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box || box.id !== "tick-all" || !box.form) return;
    box.form.querySelectorAll('input[type=checkbox][name="ids"]').forEach(function (el) {
      el.checked = box.checked;
    });
  });

  // The queue page's tab counts follow the live feed's counts.
  document.addEventListener("corral:counts", function (event) {
    var tabs = document.getElementById("state-tabs");
    if (!tabs) return;
    var name = tabs.getAttribute("data-queue");
    var row = (event.detail.queues || []).filter(function (q) { return q.name === name; })[0];
    if (!row) return;
    tabs.querySelectorAll("a[data-state]").forEach(function (tab) {
      var count = tab.querySelector(".count");
      var value = row[tab.getAttribute("data-state")];
      if (!count || value === undefined) return;
      if (count.textContent !== String(value)) count.textContent = String(value);
      if (tab.getAttribute("data-state") === "failed") count.classList.toggle("bad", value > 0);
    });
  });

  // The enqueue form: the chosen task's signature and queue under its picker.
  function showSignature(select) {
    var option = select.options[select.selectedIndex];
    var line = document.getElementById("enq-signature");
    if (!option || !line) return;
    line.querySelector("code").textContent = option.getAttribute("data-signature");
    line.querySelector("span").textContent = "\u2192 " + option.getAttribute("data-queue");
    var queue = document.getElementById("enq-queue");
    if (queue) queue.placeholder = option.getAttribute("data-queue");
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "enq-task" && event.target.tagName === "SELECT") {
      showSignature(event.target);
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("enq-task");
    if (select && select.tagName === "SELECT") showSignature(select);
  });

  window.Corral = { csrfToken: csrfToken, localTimes: localTimes };
})();
