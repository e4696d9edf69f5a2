// The console's only script: it refreshes the overview and queue in place,
// runs the live activity feed, and asks before a purge. The pages work
// without it, only not live.
"use strict";

(function () {
  // Parts of a page with data-refresh are fetched again every 2 seconds
  // and replaced; the server renders them, so no HTML is built here.
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; })
        .catch(function () {})
        .finally(function () { busy = false; });
    }, 2000);
  });

  // Purge asks first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.dataset && e.target.dataset.confirm;
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // The activity feed: server-sent events, newest on top. Rows are built
  // with textContent, so nothing in an event can become markup.
  var feed = document.getElementById("feed");
  if (!feed) return;
  var state = document.getElementById("feed-state");
  var keep = 500;
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text || "";
    tr.appendChild(td);
    return td;
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  var es = new EventSource(feed.dataset.source);
  es.onopen = function () { state.textContent = "live"; };
  es.onerror = function () { state.textContent = "reconnecting…"; };
  es.addEventListener("activity", function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    var tr = document.createElement("tr");
    tr.className = "new kind-" + String(ev.kind).replace(/[^a-z_]/g, "");
    var t = new Date(ev.time);
    cell(tr, pad(t.getHours()) + ":" + pad(t.getMinutes()) + ":" + pad(t.getSeconds()));
    cell(tr, ev.kind);
    cell(tr, [ev.connector, ev.driver].filter(Boolean).join(" → "));
    var jc = cell(tr, "");
    if (ev.job) {
      var a = document.createElement("a");
      a.href = "/jobs/" + encodeURIComponent(ev.job);
      a.textContent = ev.job;
      jc.appendChild(a);
    }
    cell(tr, ev.message);
    feed.insertBefore(tr, feed.firstChild);
    while (feed.children.length > keep) feed.removeChild(feed.lastChild);
  });
})();
