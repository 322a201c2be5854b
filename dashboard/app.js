// bootherd dashboard: hash routes (#/, #/nodes?range=…, #/node/<name>), JSON from /dashboard/api,
// refreshed every two seconds. No build step, no dependencies.
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  let timer = null;
  let route = "";

  function api(path) {
    const sep = path.includes("?") ? "&" : "?";
    const url = "api/" + path + (token ? sep + "token=" + encodeURIComponent(token) : "");
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      return r.json();
    });
  }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function cls(prefix, v) { return prefix + String(v || "").replace(/[^a-z0-9_-]/gi, ""); }
  function nodeLink(n) { return '<a href="#/node/' + encodeURIComponent(n) + '">' + esc(n) + "</a>"; }
  function stamp() { live.textContent = "updated " + new Date().toLocaleTimeString(); }
  function fail(e) { live.textContent = "cannot reach the appliance: " + e.message; }

  function overview() {
    return api("overview").then(function (o) {
      let h = "<h2>Nodes by status</h2><div class=\"cards\">";
      h += '<div class="card"><span class="n" id="total-nodes">' + o.nodes + '</span><span class="l">nodes</span></div>';
      o.by_status.forEach(function (s) {
        h += '<div class="card"><span class="n ' + cls("st-", s[0]) + '">' + s[1] + '</span><span class="l">' + esc(s[0]) + "</span></div>";
      });
      h += "</div>";
      h += '<h2>Boots in progress <span class="muted">(' + o.in_progress.length + ")</span></h2>";
      if (o.in_progress.length === 0) h += '<p class="muted" id="no-progress">No boot in the last ten minutes.</p>';
      else {
        h += '<table id="progress"><thead><tr><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Last step</th><th scope="col">When</th></tr></thead><tbody>';
        o.in_progress.forEach(function (p) {
          h += "<tr><td>" + nodeLink(p.node) + '</td><td class="' + cls("st-", p.status) + '">' + esc(p.status) +
            '</td><td class="' + cls("ev-", p.event) + '">' + esc(p.event) + " " + esc(p.detail) + "</td><td>" + esc(p.time) + "</td></tr>";
        });
        h += "</tbody></table>";
      }
      h += '<h2>Failures <span class="muted">(' + o.failures.length + ")</span></h2>";
      if (o.failures.length === 0) h += '<p class="muted">None.</p>';
      else {
        h += '<table id="failures"><thead><tr><th scope="col">Node</th><th scope="col">Why</th></tr></thead><tbody>';
        o.failures.forEach(function (f) { h += "<tr><td>" + nodeLink(f.node) + '</td><td class="error">' + esc(f.why) + "</td></tr>"; });
        h += "</tbody></table>";
      }
      h += "<h2>Requests served</h2><div class=\"cards\">";
      Object.keys(o.requests).forEach(function (k) {
        h += '<div class="card"><span class="n">' + o.requests[k] + '</span><span class="l">' + esc(k) + "</span></div>";
      });
      h += "</div>";
      main.innerHTML = h;
    });
  }

  function nodes(range) {
    const form = '<h2>Nodes</h2><form id="search" role="search"><label for="range">Noderange</label>' +
      '<input type="search" id="range" name="range" placeholder="all, compute, n[01-20], /^rack1" value="' + esc(range) + '">' +
      '<button type="submit">Search</button></form>';
    return api("nodes?range=" + encodeURIComponent(range)).then(function (o) {
      let h = form;
      if (o.error) h += '<p class="error" role="alert">' + esc(o.error) + "</p>";
      h += '<p class="muted" id="count">' + o.total + " node(s)</p>";
      h += '<table id="nodes"><thead><tr><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Since</th><th scope="col">Address</th><th scope="col">MAC</th><th scope="col">Boot state</th><th scope="col">Groups</th></tr></thead><tbody>';
      o.nodes.forEach(function (n) {
        h += "<tr><td>" + nodeLink(n.node) + '</td><td class="' + cls("st-", n.status) + '">' + esc(n.status) + "</td><td>" + esc(n.statustime) +
          "</td><td>" + esc(n.ip) + "</td><td>" + esc(n.mac) + "</td><td>" + esc(n.currstate) + "</td><td>" + esc(n.groups) + "</td></tr>";
      });
      h += "</tbody></table>";
      const focused = document.activeElement && document.activeElement.id === "range";
      main.innerHTML = h;
      const f = document.getElementById("search");
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        location.hash = "#/nodes?range=" + encodeURIComponent(document.getElementById("range").value);
      });
      if (focused) document.getElementById("range").focus();
    });
  }

  function node(name) {
    return api("node/" + encodeURIComponent(name)).then(function (o) {
      let h = "<h2>" + esc(o.node) + "</h2><table id=\"attrs\"><tbody>";
      o.attrs.forEach(function (a) { h += '<tr><th scope="row">' + esc(a[0]) + "</th><td>" + esc(a[1]) + "</td></tr>"; });
      h += "</tbody></table><h2>Lease</h2>";
      h += o.lease ? "<p>" + esc(o.lease.ip) + " for " + esc(o.lease.mac) + " (" + esc(o.lease.state) + ")</p>" : '<p class="muted">None.</p>';
      h += '<h2>Power</h2><div id="power" role="group" aria-label="Power actions">';
      ["stat", "on", "off", "reset", "boot", "wake"].forEach(function (a) {
        h += '<button type="button" data-action="' + a + '">' + a + "</button> ";
      });
      h += '</div><pre id="power-out" aria-live="polite"></pre>';
      h += '<h2>Boot timeline</h2>';
      if (o.timeline.length === 0) h += '<p class="muted">No boot events recorded.</p>';
      else {
        h += '<table id="timeline"><thead><tr><th scope="col">When</th><th scope="col">Step</th><th scope="col">What</th><th scope="col">Bytes</th><th scope="col">ms</th></tr></thead><tbody>';
        o.timeline.forEach(function (e) {
          h += "<tr><td>" + esc(e.time) + '</td><td class="' + cls("ev-", e.event) + '">' + esc(e.event) + "</td><td>" + esc(e.detail) +
            '</td><td class="num">' + esc(e.bytes) + '</td><td class="num">' + esc(e.ms) + "</td></tr>";
        });
        h += "</tbody></table>";
      }
      main.innerHTML = h;
      // The page is redrawn every two seconds: keep the last power answer on it.
      document.getElementById("power-out").textContent = powerText;
      Array.prototype.forEach.call(document.querySelectorAll("#power button"), function (btn) {
        btn.addEventListener("click", function () {
          const a = btn.getAttribute("data-action");
          powerText = "rpower " + o.node + " " + a + " …";
          document.getElementById("power-out").textContent = powerText;
          const url = "api/node/" + encodeURIComponent(o.node) + "/power/" + a + (token ? "?token=" + encodeURIComponent(token) : "");
          fetch(url, { method: "POST", headers: { "X-Bootherd": "1" } })
            .then(function (r) { return r.json(); })
            .then(function (j) { powerText = j.output; }, function (e) { powerText = "failed: " + e.message; })
            .then(function () { document.getElementById("power-out").textContent = powerText; });
        });
      });
    });
  }
  let powerText = "";

  function render() {
    const h = location.hash || "#/";
    let job;
    if (h.indexOf("#/node/") === 0) job = function () { return node(decodeURIComponent(h.slice(7))); };
    else if (h.indexOf("#/nodes") === 0) {
      const q = h.indexOf("?") >= 0 ? new URLSearchParams(h.slice(h.indexOf("?") + 1)).get("range") || "" : "";
      job = function () { return nodes(q); };
    } else job = overview;
    if (h !== route) { route = h; powerText = ""; main.focus(); }
    clearInterval(timer);
    const tick = function () {
      // Do not redraw under someone typing a noderange.
      if (document.activeElement && document.activeElement.id === "range" && h.indexOf("#/nodes") === 0 && timer) return;
      job().then(stamp, fail);
    };
    tick();
    timer = setInterval(tick, 2000);
  }
  window.addEventListener("hashchange", render);
  render();
})();
