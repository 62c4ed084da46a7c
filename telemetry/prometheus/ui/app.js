// Weir's live page: polls /ui/state once a second, lays the plan out with dagre, and shows a selected
// stage's last five minutes from /ui/history. No inline script or style: it runs under
// Content-Security-Policy: default-src 'self'.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const NODE_W = 212;
  const NODE_H = 112;
  const LINE_CHARS = 33; // what fits in a node's line at 12px
  const HISTORY_SERIES = [
    ["in_per_second", "items in / s", rate],
    ["out_per_second", "items out / s", rate],
    ["busy", "busy", percent],
    ["backpressure", "backpressure", percent],
    ["queue_depth", "queue depth", count],
    ["errors_per_second", "errors / s", rate],
  ];

  let current = null; // the pipeline shown (its name)
  let planKey = ""; // stages and edges last laid out
  let selected = null; // the selected stage's name
  let lastState = null;
  let polling = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function html(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function si(x) {
    const a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (x / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (x / 1e3).toFixed(1) + "k";
    if (a >= 1e3) return (x / 1e3).toFixed(2) + "k";
    if (a >= 10 || x === 0) return x.toFixed(0);
    return x.toFixed(1);
  }
  function rate(x) { return si(x) + "/s"; }
  function count(x) { return Number.isInteger(x) && Math.abs(x) < 1e4 ? String(x) : si(x); }
  function percent(x) { return (100 * x).toFixed(x < 0.1 && x > 0 ? 1 : 0) + "%"; }
  function duration(s) {
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.floor(s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function pressure(s, phase) {
    if (phase !== "running" && s.in_per_second === 0 && s.out_per_second === 0) return "idle";
    if (s.backpressure > 0.5) return "bp-high";
    if (s.backpressure > 0.1) return "bp-low";
    return "bp-ok";
  }

  // ---- the run state at the top ----
  function showRun(p) {
    const run = $("run");
    run.replaceChildren();
    const add = (label, value, cls) => {
      const d = html("div", null, null, run);
      html("dt", null, label, d);
      html("dd", cls || null, value, d);
    };
    let items = 0;
    for (const s of p.stages) if (s.kind === "source") items += s.items_out;
    add("pipeline", p.name);
    add("run", p.run_id || "–");
    add("phase", p.phase, "phase-" + p.phase);
    if (p.phase === "finished") add("status", p.status, "status-" + p.status);
    add("uptime", duration(p.uptime_seconds || 0));
    add("items read", count(items));
    add("errors", count(p.errors || 0), p.errors > 0 ? "status-failed" : null);
    if (p.checkpoints !== undefined) add("checkpoints", count(p.checkpoints));
  }

  // ---- the graph ----
  function edgeRate(p, e, byName) {
    const to = byName.get(e.to);
    const from = byName.get(e.from);
    const ins = p.edges.filter((x) => x.to === e.to).length;
    const outs = p.edges.filter((x) => x.from === e.from).length;
    if (ins === 1 && to) return to.in_per_second;
    if ((outs === 1 || (from && from.kind === "fan_out")) && from) return from.out_per_second;
    return null;
  }

  function layout(p, rankdir) {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: rankdir, nodesep: 24, ranksep: rankdir === "LR" ? 40 : 26, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const groups = new Map();
    for (const s of p.stages) {
      if (!groups.has(s.node)) groups.set(s.node, []);
      groups.get(s.node).push(s.name);
    }
    for (const s of p.stages) g.setNode("s:" + s.name, { width: NODE_W, height: NODE_H });
    for (const [node, names] of groups) {
      if (names.length < 2) continue;
      g.setNode("n:" + node, { label: "fused node " + node, paddingTop: 24 });
      for (const n of names) g.setParent("s:" + n, "n:" + node);
    }
    for (const e of p.edges) g.setEdge("s:" + e.from, "s:" + e.to, { width: 64, height: 16, labelpos: "c" });
    dagre.layout(g);
    return g;
  }

  function path(points) {
    let d = "M" + points[0].x + "," + points[0].y;
    if (points.length === 2) return d + " L" + points[1].x + "," + points[1].y;
    for (let i = 1; i < points.length - 1; i++) {
      const p = points[i];
      const q = points[i + 1];
      const mx = i === points.length - 2 ? q.x : (p.x + q.x) / 2;
      const my = i === points.length - 2 ? q.y : (p.y + q.y) / 2;
      d += " Q" + p.x + "," + p.y + " " + mx + "," + my;
    }
    return d;
  }

  // Left to right or top to bottom, whichever shows the graph larger in the pane (never above 1:1).
  function bestLayout(p, box) {
    const availW = Math.max(200, box.clientWidth - 36);
    const availH = Math.max(200, box.clientHeight - 26);
    let best = null;
    for (const dir of ["LR", "TB"]) {
      const g = layout(p, dir);
      const w = Math.ceil(g.graph().width || 400);
      const h = Math.ceil(g.graph().height || 200);
      const fit = Math.min(1, availW / w, availH / h);
      if (!best || fit > best.fit + 0.02) best = { g, w, h, fit };
    }
    return best;
  }

  function drawGraph(p) {
    const box = $("graph");
    box.replaceChildren();
    const { g, w, h, fit } = bestLayout(p, box);
    const svg = el("svg", { viewBox: "0 0 " + w + " " + h, width: Math.floor(w * fit), height: Math.floor(h * fit), role: "group", "aria-label": "stages of " + p.name });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }, marker);
    const clusters = el("g", { class: "clusters" }, svg);
    const edges = el("g", { class: "edges" }, svg);
    const nodes = el("g", { class: "nodes" }, svg);
    for (const id of g.nodes()) {
      if (!id.startsWith("n:")) continue;
      const n = g.node(id);
      const c = el("g", { class: "cluster" }, clusters);
      el("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 8 }, c);
      el("text", { x: n.x - n.width / 2 + 8, y: n.y - n.height / 2 + 14 }, c).textContent = n.label;
    }
    for (const e of g.edges()) {
      const d = g.edge(e);
      const eg = el("g", { class: "edge", "data-from": e.v.slice(2), "data-to": e.w.slice(2) }, edges);
      el("path", { d: path(d.points), "marker-end": "url(#arrow)" }, eg);
      el("rect", { class: "label-bg", x: d.x - 34, y: d.y - 9, width: 68, height: 16, rx: 3 }, eg);
      el("text", { class: "rate", x: d.x, y: d.y + 3, "text-anchor": "middle" }, eg);
    }
    for (const s of p.stages) {
      const n = g.node("s:" + s.name);
      const x = n.x - NODE_W / 2;
      const y = n.y - NODE_H / 2;
      const sg = el("g", { class: "stage", tabindex: 0, role: "button", "data-stage": s.name, transform: "translate(" + x + "," + y + ")" }, nodes);
      el("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 6 }, sg);
      el("text", { class: "name", x: 10, y: 19 }, sg).textContent = s.name.length > 20 ? s.name.slice(0, 19) + "…" : s.name;
      el("text", { class: "kind", x: 10, y: 34 }, sg);
      el("text", { class: "in", x: 10, y: 52 }, sg);
      el("text", { class: "out", x: NODE_W - 10, y: 52, "text-anchor": "end" }, sg);
      el("text", { class: "busy", x: 10, y: 68 }, sg);
      el("text", { class: "bp", x: NODE_W - 10, y: 68, "text-anchor": "end" }, sg);
      el("text", { class: "l3", x: 10, y: 84 }, sg);
      el("text", { class: "l4", x: 10, y: 100 }, sg);
      el("rect", { class: "busy-track", x: 10, y: 104, width: NODE_W - 20, height: 4, rx: 2 }, sg);
      el("rect", { class: "busy-fill", x: 10, y: 104, width: 0, height: 4, rx: 2 }, sg);
      const badges = el("g", { class: "badges" }, sg);
      badges.dataset.for = s.name;
      sg.addEventListener("click", () => select(s.name));
      sg.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          select(s.name);
        }
      });
    }
    box.appendChild(svg);
  }

  function fit(text) {
    return text.length > LINE_CHARS ? text.slice(0, LINE_CHARS - 1) + "…" : text;
  }

  function badge(parent, text, cls, right) {
    const b = el("g", { class: "badge " + cls }, parent);
    const w = 8 + text.length * 6.4;
    el("rect", { x: right - w, y: 6, width: w, height: 16 }, b);
    el("text", { x: right - w / 2, y: 18, "text-anchor": "middle" }, b).textContent = text;
    return right - w - 4;
  }

  function updateGraph(p) {
    const byName = new Map(p.stages.map((s) => [s.name, s]));
    for (const sg of document.querySelectorAll("#graph .stage")) {
      const s = byName.get(sg.dataset.stage);
      if (!s) continue;
      sg.setAttribute("class", "stage " + pressure(s, p.phase) + (s.name === selected ? " selected" : ""));
      sg.dataset.inRate = s.in_per_second;
      sg.dataset.outRate = s.out_per_second;
      sg.dataset.circuit = s.circuit || "";
      sg.querySelector(".kind").textContent = s.kind + (s.parallelism > 1 ? " · " + s.parallelism + " partitions" : "");
      sg.querySelector(".in").textContent = "in " + rate(s.in_per_second);
      sg.querySelector(".out").textContent = "out " + rate(s.out_per_second);
      sg.querySelector(".busy").textContent = "busy " + percent(s.busy);
      sg.querySelector(".bp").textContent = "backpressure " + percent(s.backpressure);
      const bad = [];
      if (s.errors) bad.push("err " + count(s.errors));
      if (s.dead_letters) bad.push("dead " + count(s.dead_letters));
      if (s.late) bad.push("late " + count(s.late));
      const w = ["queue " + count(s.queue_depth)];
      if (s.windows_open !== undefined) w.push(count(s.windows_open) + " windows");
      if (s.watermark_lag_seconds !== undefined) w.push("lag " + s.watermark_lag_seconds.toFixed(1) + " s");
      sg.querySelector(".l3").textContent = fit(w.join(" · "));
      const l4 = sg.querySelector(".l4");
      l4.textContent = fit(bad.length ? bad.join(" · ") : "no errors");
      l4.setAttribute("class", "l4" + (bad.length ? " bad" : ""));
      sg.querySelector(".busy-fill").setAttribute("width", Math.round((NODE_W - 20) * Math.min(1, s.busy)));
      const badges = sg.querySelector(".badges");
      badges.replaceChildren();
      let right = NODE_W - 6;
      if (s.circuit) right = badge(badges, s.circuit === "half_open" ? "HALF OPEN" : "CIRCUIT " + s.circuit.toUpperCase(), "circuit-" + s.circuit, right);
      if (s.parallelism > 1) badge(badges, "×" + s.parallelism, "parallel", right);
      const label = [s.name, s.kind, "in " + rate(s.in_per_second), "out " + rate(s.out_per_second),
        "busy " + percent(s.busy), "backpressure " + percent(s.backpressure)];
      if (s.circuit) label.push("circuit " + s.circuit);
      if (s.errors) label.push(s.errors + " errors");
      sg.setAttribute("aria-label", label.join(", "));
    }
    for (const eg of document.querySelectorAll("#graph .edge")) {
      const r = edgeRate(p, { from: eg.dataset.from, to: eg.dataset.to }, byName);
      eg.querySelector(".rate").textContent = r === null ? "" : rate(r);
    }
  }

  // ---- the detail panel ----
  function sparkline(parent, label, values, fmt) {
    const box = html("div", "spark", null, parent);
    box.dataset.series = label;
    html("span", "label", label, box);
    const last = values.length ? values[values.length - 1] : 0;
    const max = values.reduce((m, v) => Math.max(m, v), 0);
    html("span", "value", fmt(last) + (values.length ? "  (max " + fmt(max) + ")" : ""), box);
    const w = 300;
    const h = 40;
    const svg = el("svg", { viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none", role: "img", "aria-label": label + " over the last " + values.length + " seconds" }, box);
    if (values.length >= 2) {
      const top = max > 0 ? max : 1;
      const pts = values.map((v, i) => (i * w / (values.length - 1)).toFixed(1) + "," + (h - 2 - (v / top) * (h - 4)).toFixed(1));
      el("polygon", { points: "0," + h + " " + pts.join(" ") + " " + w + "," + h }, svg);
      el("polyline", { points: pts.join(" ") }, svg);
    }
  }

  function showDetail(p, history) {
    const panel = $("detail");
    const s = p.stages.find((x) => x.name === selected);
    if (!s) {
      panel.replaceChildren();
      html("p", "empty", "Select a stage (click, or Tab and Enter) to see its last five minutes and its errors.", panel);
      return;
    }
    panel.replaceChildren();
    html("h2", null, s.name, panel);
    html("div", "empty", s.kind + " · fused node " + s.node + (s.parallelism > 1 ? " · " + s.parallelism + " partitions" : ""), panel);
    const facts = html("dl", "facts", null, panel);
    const fact = (k, v, cls) => { html("dt", null, k, facts); html("dd", cls || null, v, facts); };
    fact("items in", count(s.items_in));
    fact("items out", count(s.items_out));
    fact("in / out per s", rate(s.in_per_second) + " / " + rate(s.out_per_second));
    fact("busy", percent(s.busy));
    fact("backpressure", percent(s.backpressure));
    fact("queue depth", count(s.queue_depth));
    fact("errors", count(s.errors));
    fact("dead letters", count(s.dead_letters));
    if (s.skipped) fact("skipped", count(s.skipped));
    if (s.filtered) fact("filtered out", count(s.filtered));
    if (s.retries) fact("retries", count(s.retries));
    if (s.timeouts) fact("timeouts", count(s.timeouts));
    fact("late items", count(s.late));
    if (s.windows_open !== undefined) fact("open windows", count(s.windows_open));
    if (s.watermark_lag_seconds !== undefined) fact("watermark lag", s.watermark_lag_seconds.toFixed(2) + " s");
    if (s.circuit) fact("circuit", s.circuit.replace("_", "-"), "circuit-state-" + s.circuit);
    html("h3", null, "last five minutes", panel);
    const series = html("div", "series", null, panel);
    if (history) {
      for (const [key, label, fmt] of HISTORY_SERIES) sparkline(series, label, history[key] || [], fmt);
    } else {
      html("p", "empty", "loading…", series);
    }
    html("h3", null, "errors", panel);
    if (!s.error_summaries.length) {
      html("p", "empty", "none", panel);
    } else {
      const ul = html("ul", "errors", null, panel);
      for (const e of s.error_summaries) {
        const li = html("li", null, null, ul);
        html("div", "type", e.type + " × " + e.count + (e.retryable ? " (retried)" : ""), li);
        html("div", null, e.message, li);
      }
    }
  }

  async function fetchHistory(p) {
    if (!selected) return null;
    const url = "/ui/history?pipeline=" + encodeURIComponent(p.name) + "&stage=" + encodeURIComponent(selected);
    const r = await fetch(url, { cache: "no-store" });
    return r.ok ? r.json() : null;
  }

  async function select(name) {
    selected = name;
    if (!lastState) return;
    const p = lastState.pipelines.find((x) => x.name === current);
    if (!p) return;
    updateGraph(p);
    showDetail(p, null);
    try {
      showDetail(p, await fetchHistory(p));
    } catch (e) {
      showDetail(p, null);
    }
  }

  // ---- polling ----
  function choose(state) {
    const pick = $("pick");
    const names = state.pipelines.map((p) => p.name);
    if (!names.includes(current)) current = names.length ? names[0] : null;
    $("pick-label").hidden = names.length < 2;
    if (pick.options.length !== names.length || names.some((n, i) => pick.options[i].value !== n)) {
      pick.replaceChildren();
      for (const n of names) {
        const o = document.createElement("option");
        o.value = n;
        o.textContent = n;
        pick.appendChild(o);
      }
    }
    pick.value = current || "";
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const r = await fetch("/ui/state", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const state = await r.json();
      lastState = state;
      $("conn").textContent = "updated " + new Date().toLocaleTimeString();
      $("conn").classList.remove("down");
      choose(state);
      const p = state.pipelines.find((x) => x.name === current);
      if (!p) return;
      showRun(p);
      const key = p.name + "|" + p.stages.map((s) => s.name + "@" + s.node).join(",") + "|" + p.edges.map((e) => e.from + ">" + e.to).join(",");
      if (key !== planKey && p.stages.length) {
        planKey = key;
        drawGraph(p);
      }
      updateGraph(p);
      if (selected) showDetail(p, await fetchHistory(p));
    } catch (e) {
      $("conn").textContent = "no answer from the server; retrying";
      $("conn").classList.add("down");
    } finally {
      polling = false;
    }
  }

  function start() {
    $("pick").addEventListener("change", (ev) => {
      current = ev.target.value;
      planKey = "";
      selected = null;
      poll();
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && selected) {
        selected = null;
        if (lastState) {
          const p = lastState.pipelines.find((x) => x.name === current);
          if (p) { updateGraph(p); showDetail(p, null); }
        }
      }
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => { planKey = ""; poll(); }, 200);
    });
    poll();
    setInterval(poll, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
