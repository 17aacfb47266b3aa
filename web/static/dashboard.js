// The live dashboard: one EventSource on /analytics/stream, redrawn on each message.
// No build step: plain ES2017 and the vendored uPlot (web/static/vendor).
(function () {
  "use strict";
  var STALE_AFTER_MS = 3000;     // no message for this long: say the figures are stale
  var RECONNECT_AFTER_MS = 6000; // ... and for this long: open a new connection
  var lastMessageAt = 0;
  var lastReason = "";
  var source = null;
  var charts = {};
  var $ = function (id) { return document.getElementById(id); };

  // money arrives as decimal strings: add them as integer cents, never as floats
  function cents(text) {
    if (text === null || text === undefined) return 0;
    var negative = text.charAt(0) === "-";
    var parts = text.replace("-", "").split(".");
    var value = parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
    return negative ? -value : value;
  }
  function money(c) {
    var negative = c < 0; c = Math.abs(c);
    var text = Math.floor(c / 100) + "." + String(c % 100).padStart(2, "0");
    return negative ? "-" + text : text;
  }
  function set(id, text, raw) {
    var el = $(id);
    el.textContent = text;
    el.setAttribute("data-value", raw === undefined ? text : String(raw));
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function chart(id, label, color, fmt) {
    var el = $(id);
    var opts = {
      width: Math.max(el.clientWidth, 280), height: 200,
      scales: { x: { time: true } },
      series: [{}, { label: label, stroke: color, width: 2, fill: color + "22", spanGaps: false,
                     value: function (u, v) { return v === null ? "–" : fmt(v); } }],
      axes: [{}, { values: function (u, vals) { return vals.map(fmt); }, size: 60 }],
      legend: { show: true },
    };
    return new uPlot(opts, [[], []], el);
  }

  function totals(windows) {
    var t = { orders: 0, value: 0, revenue: 0, captured: 0, declined: 0, cancelled: 0, shipped: 0, reasons: {} };
    windows.forEach(function (w) {
      t.orders += w.orders_placed;
      t.value += cents(w.orders_value);
      t.revenue += cents(w.revenue);
      t.captured += w.payments_captured;
      t.declined += w.payments_declined;
      t.cancelled += w.orders_cancelled;
      t.shipped += w.orders_shipped;
      Object.keys(w.cancelled_by_reason).forEach(function (r) {
        t.reasons[r] = (t.reasons[r] || 0) + w.cancelled_by_reason[r];
      });
    });
    return t;
  }

  function render(snap) {
    var main = snap.main.windows, live = snap.live.windows;
    var t = totals(main);
    $("range-minutes").textContent = main.length;
    set("kpi-orders", String(t.orders), t.orders);
    set("kpi-revenue", money(t.revenue), money(t.revenue));
    var aov = t.orders ? Math.round(t.value / t.orders) : null;
    set("kpi-aov", aov === null ? "–" : money(aov), aov === null ? "" : money(aov));
    var payments = t.captured + t.declined;
    var rate = payments ? t.declined / payments : null;
    set("kpi-decline", rate === null ? "–" : (rate * 100).toFixed(1) + " %", rate === null ? "" : rate.toFixed(4));
    set("kpi-cancelled", String(t.cancelled), t.cancelled);
    set("kpi-shipped", String(t.shipped), t.shipped);

    charts.orders.setData([live.map(function (w) { return w.start_ms / 1000; }),
                           live.map(function (w) { return w.orders_per_second; })]);
    charts.revenue.setData([main.map(function (w) { return w.start_ms / 1000; }),
                            main.map(function (w) { return cents(w.revenue) / 100; })]);
    charts.decline.setData([main.map(function (w) { return w.start_ms / 1000; }),
                            main.map(function (w) { return w.decline_rate; })]);

    var reasons = Object.keys(t.reasons).sort();
    $("cancellations").querySelector("tbody").innerHTML = reasons.length
      ? reasons.map(function (r) {
          return "<tr data-reason=\"" + esc(r) + "\"><td>" + esc(r) + "</td><td class=num>" + t.reasons[r] + "</td></tr>";
        }).join("")
      : "<tr><td colspan=2>none</td></tr>";

    var top = snap.top;
    $("top-window").textContent = "(" + top.window + " window from " +
      new Date(top.start_ms).toLocaleTimeString() + ", by quantity)";
    $("top-skus").querySelector("tbody").innerHTML = top.by_quantity.length
      ? top.by_quantity.map(function (s, i) {
          return "<tr data-sku=\"" + esc(s.sku) + "\"><td>" + (i + 1) + "</td><td>" + esc(s.sku) +
            "</td><td class=num>" + s.quantity + "</td><td class=num>" + esc(s.revenue) + "</td></tr>";
        }).join("")
      : "<tr><td colspan=4>no orders in this window</td></tr>";

    var h = snap.health;
    set("h-rate", h.facts_per_second.toFixed(1), h.facts_per_second);
    if (h.lag && h.lag.error) {
      set("h-lag", "unknown (" + h.lag.error + ")", "");
    } else if (h.lag) {
      set("h-lag", String(h.lag.total), h.lag.total);
      $("lag-topics").querySelector("tbody").innerHTML = Object.keys(h.lag.by_topic).map(function (k) {
        return "<tr><th>" + esc(k) + "</th><td class=num>" + h.lag.by_topic[k] + "</td></tr>";
      }).join("");
    }
    set("h-processed", String(h.facts_processed), h.facts_processed);
    set("h-duplicates", String(h.duplicates_ignored), h.duplicates_ignored);
    set("h-late", String(h.late_events), h.late_events);
    var age = h.watermark_ms ? Math.max(0, Math.round((snap.server_time_ms - h.watermark_ms) / 1000)) : null;
    set("h-watermark", h.watermark_ms ? new Date(h.watermark_ms).toLocaleTimeString() + " (" + age + " s ago)" : "no events yet");
    set("h-owner", h.served_by);
  }

  function markLive() {
    var status = $("status");
    status.className = "status live";
    status.textContent = "live";
    $("stale").hidden = true;
  }

  function markStale(text) {
    var status = $("status");
    status.className = "status stale";
    status.textContent = "stale";
    var banner = $("stale");
    banner.hidden = false;
    banner.textContent = text;
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/analytics/stream");
    source.addEventListener("figures", function (e) {
      lastMessageAt = Date.now();
      lastReason = "";
      try {
        var snap = JSON.parse(e.data);
        render(snap);
        window.dashboard.snapshot = snap;
        window.dashboard.updates += 1;
        markLive();
      }
      catch (err) { markStale("could not show the figures: " + err); }
    });
    source.addEventListener("unavailable", function (e) {
      lastReason = JSON.parse(e.data).reason;
      markStale("figures unavailable: " + lastReason + "; showing the last known figures");
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.OPEN) {
        markStale("connection to the worker lost; reconnecting…");
      }
    };
  }

  function watchdog() {
    var silent = Date.now() - lastMessageAt;
    if (lastMessageAt && silent > STALE_AFTER_MS) {
      markStale("stale: no update for " + Math.round(silent / 1000) + " s" +
        (lastReason ? " (" + lastReason + ")" : "") + "; reconnecting…");
    }
    if (silent > RECONNECT_AFTER_MS && (!source || source.readyState !== EventSource.CONNECTING)) {
      lastMessageAt = lastMessageAt || Date.now();
      connect();
      lastMessageAt = Date.now() - STALE_AFTER_MS;  // stays marked stale until data arrives
    }
  }

  // the operations panel: its own poll of /ops/overview (not the analytics stream)
  var OPS_EVERY_MS = 2000;
  var LAG_SECONDS_BAD = 60;  // the ShopReaderLagSeconds alert's bound
  function renderOps(ops) {
    $("ops-lag-error").textContent = ops.lag_error ? "(" + ops.lag_error + ")" : "";
    var names = Object.keys(ops.readers).sort();
    $("ops-readers").querySelector("tbody").innerHTML = names.map(function (name) {
      var r = ops.readers[name];
      var cls = r.seconds > LAG_SECONDS_BAD ? " class=behind" : "";
      return "<tr" + cls + " data-reader=\"" + esc(name) + "\" data-messages=\"" + r.messages +
        "\"><td>" + esc(name) + "</td><td class=num>" + r.messages + "</td><td class=num>" +
        r.seconds + " s</td></tr>";
    }).join("");
    var stalled = [];
    $("ops-workers").querySelector("tbody").innerHTML = ops.workers.map(function (w) {
      var agents = w.stalled.map(function (s) { return s.agent; });
      agents.forEach(function (a) { stalled.push(a + " on " + w.url); });
      var cls = w.state === "stalled" || w.state === "unreachable" ? " class=" + w.state : "";
      return "<tr" + cls + " data-worker=\"" + esc(w.url) + "\" data-state=\"" + esc(w.state) +
        "\" data-partitions=\"" + w.partitions.join(",") + "\"><td>" + esc(w.url) + "</td><td>" +
        esc(w.state) + "</td><td>" + w.partitions.join(", ") + "</td><td>" +
        (agents.length ? agents.map(esc).join(", ") : "none") + "</td></tr>";
    }).join("");
    set("ops-dead-letters", String(ops.dead_letters_open), ops.dead_letters_open);
    set("ops-stalled", stalled.length ? stalled.join("; ") : "none", stalled.length);
    window.dashboard.ops = ops;
  }
  function pollOps() {
    fetch("/ops/overview", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(renderOps)
      .catch(function (err) { $("ops-lag-error").textContent = "(overview unavailable: " + err.message + ")"; })
      .then(function () { setTimeout(pollOps, OPS_EVERY_MS); });
  }

  charts.orders = chart("chart-orders", "orders/s", "#2563eb", function (v) { return v.toFixed(1); });
  charts.revenue = chart("chart-revenue", "revenue", "#15803d", function (v) { return v.toFixed(0); });
  charts.decline = chart("chart-decline", "decline rate", "#b91c1c", function (v) { return (v * 100).toFixed(0) + "%"; });
  window.dashboard = { charts: charts, snapshot: null, updates: 0, ops: null };  // for tests and curious users
  connect();
  pollOps();
  setInterval(watchdog, 500);
})();
