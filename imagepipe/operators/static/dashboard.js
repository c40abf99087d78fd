"use strict";
// imagepipe operations dashboard: vanilla JS over the operator API. Every value from the API is inserted
// as text (never as HTML). The admin key is typed into the key form, or read once from the URL fragment
// (#code=..., never sent to a server) and then removed from the address bar; it lives in this tab's memory
// only and travels only in the x-functions-key header, never in a URL. A key in the query string (?code=)
// is removed and ignored: it has already been sent to the server and its logs.
(function () {
  const here = new URL(location.href);
  const fragment = new URLSearchParams(here.hash.slice(1));
  let KEY = fragment.get("code") || "";
  const queryKey = here.searchParams.has("code");
  if (fragment.has("code") || queryKey) {
    here.searchParams.delete("code");
    here.hash = "";
    history.replaceState(null, "", here.pathname + here.search);
  }
  const params = here.searchParams;
  const ACTIVE = ["Pending", "Running", "ContinuedAsNew", "Suspended"];
  const state = { continuation: null, selected: null, pollTimer: null, runs: [] };
  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(method, path, query, body) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    const headers = KEY ? { "x-functions-key": KEY } : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    const resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (resp.status === 401) {
      askForKey(KEY ? "the key was refused: enter the admin (master) key" : "enter the admin (master) key");
      throw new Error("401: this page needs the admin key");
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new Error(`${resp.status} ${err.code || ""}: ${err.message || text}`);
    }
    return data;
  }

  function askForKey(hint) {
    $("#key-panel").hidden = false;
    $("#key-hint").textContent = hint;
    $("#key-input").focus();
  }

  function useKey(ev) {
    ev.preventDefault();
    KEY = $("#key-input").value.trim();
    $("#key-input").value = "";
    $("#key-panel").hidden = true;
    refreshAll().catch((e) => { $("#health").textContent = `error: ${e.message}`; });
  }

  function toast(message) {
    const t = $("#toast");
    t.textContent = message;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const fmtMs = (ms) => (ms === null || ms === undefined ? "" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
  const errText = (e) => (e ? [e.step, e.code, e.message].filter(Boolean).join(": ") : "");
  const badge = (status) => el("span", { class: `badge ${status || ""}`, text: status || "?" });

  function filters() {
    const f = new FormData($("#filters"));
    const iso = (v) => (v ? new Date(v).toISOString() : "");
    return { status: f.get("status"), profile: f.get("profile"), createdFrom: iso(f.get("createdFrom")), createdTo: iso(f.get("createdTo")) };
  }

  // ------------------------------------------------------------------------------------------ runs
  async function loadRuns(append) {
    const query = { ...filters(), top: 50, continuation: append ? state.continuation : "" };
    const page = await api("GET", "/api/runs", query);
    const body = $("#runs tbody");
    if (!append) { body.replaceChildren(); state.runs = []; }
    for (const run of page.items) {
      state.runs.push(run);
      const row = el("tr", { "data-id": run.instanceId, "data-status": run.runtimeStatus, onclick: () => openRun(run.instanceId) },
        el("td", {}, el("code", { text: run.instanceId })),
        el("td", {}, badge(run.runtimeStatus)),
        el("td", { text: run.stage || "" }),
        el("td", { text: run.profile || "" }),
        el("td", { text: fmtTime(run.createdTime) }),
        el("td", { text: fmtMs(run.durationMs) }),
        el("td", { class: "err", title: errText(run.error), text: errText(run.error) }));
      if (run.instanceId === state.selected) row.classList.add("selected");
      body.append(row);
    }
    state.continuation = page.continuation;
    $("#more").hidden = !page.continuation;
    $("#runs-count").textContent = `${state.runs.length} of ${page.total} runs`;
    if (!page.total) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no runs match" })));
  }

  async function bulkReplay() {
    const f = filters();
    const spec = { status: f.status || "Failed", profile: f.profile, createdFrom: f.createdFrom, createdTo: f.createdTo, mode: "auto", limit: 100 };
    const dry = await api("POST", "/api/runs/replay", null, { ...spec, dryRun: true });
    const n = dry.wouldReplay.length;
    if (!n) { toast(`nothing to replay (${dry.matched} matched, ${dry.skipped.length} skipped)`); return; }
    const lines = dry.wouldReplay.slice(0, 10).map((r) => `${r.instanceId} (${r.action})`).join("\n");
    if (!confirm(`Replay ${n} run(s)?\n\n${lines}${n > 10 ? "\n…" : ""}`)) return;
    const done = await api("POST", "/api/runs/replay", null, { ...spec, dryRun: false });
    const box = $("#bulk-result");
    box.hidden = false;
    box.textContent = `Replayed ${done.accepted} of ${done.replayed.length} run(s): ` +
      done.replayed.map((r) => `${r.instanceId} ${r.action}${r.accepted ? "" : " FAILED " + errText(r.error)}`).join("; ");
    await refreshAll();
  }

  // ------------------------------------------------------------------------------------------ detail
  async function openRun(id) {
    state.selected = id;
    for (const tr of document.querySelectorAll("#runs tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    $("#detail").hidden = false;
    await renderRun(id, true);
    $("#detail").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function renderRun(id, withImage) {
    const run = await api("GET", `/api/runs/${encodeURIComponent(id)}`);
    if (state.selected !== id) return;
    $("#run-id").textContent = run.instanceId;
    const status = $("#run-status");
    status.className = `badge ${run.runtimeStatus}`;
    status.textContent = run.runtimeStatus;
    $("#detail").dataset.status = run.runtimeStatus;
    const active = ACTIVE.includes(run.runtimeStatus);
    $("#replay-auto").disabled = active;
    $("#replay-rewind").disabled = active || !run.rewindable;
    $("#replay-restart").disabled = active;
    $("#replay-auto").textContent = run.runtimeStatus === "Failed" ? (run.rewindable ? "Replay (rewind)" : "Replay (restart)") : "Replay (restart)";
    const facts = [["image", run.imageId], ["profile", run.profile], ["stage", run.stage], ["source", run.source],
      ["created", fmtTime(run.createdTime)], ["updated", fmtTime(run.lastUpdatedTime)], ["took", fmtMs(run.durationMs)]];
    $("#run-facts").replaceChildren(...facts.filter(([, v]) => v).map(([k, v]) => el("span", {}, `${k} `, el("b", { text: v }))));
    const errBox = $("#run-error");
    errBox.hidden = !run.error;
    errBox.textContent = run.error ? `Failed in ${run.error.step}: ${run.error.code} — ${run.error.message}` : "";
    renderTimeline(run.timeline);
    if (withImage && run.imageId) renderImage(run.imageId).catch((e) => { $("#caption").textContent = `image: ${e.message}`; });
    clearTimeout(state.pollTimer);
    if (active) state.pollTimer = setTimeout(() => renderRun(id, false).then(() => Promise.all([loadRuns(false), loadStats()])).catch(() => {}), 1000);
    else if (withImage === false && run.imageId) renderImage(run.imageId).catch(() => {});
  }

  function renderTimeline(timeline) {
    const box = $("#timeline");
    box.replaceChildren();
    const steps = timeline.steps || [];
    const times = [];
    for (const s of steps) for (const a of s.attempts) { if (a.scheduledTime) times.push(Date.parse(a.scheduledTime)); if (a.finishedTime) times.push(Date.parse(a.finishedTime)); }
    const t0 = Math.min(...times, Date.parse(timeline.startedTime || "") || Infinity);
    const t1 = Math.max(...times, Date.parse(timeline.finishedTime || "") || 0, t0 + 1);
    const pct = (t) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(2)}%`;
    if (!steps.length) box.append(el("div", { class: "muted", text: "no steps recorded yet" }));
    for (const step of steps) {
      const track = el("div", { class: "bar-track" });
      for (const timer of step.retryTimers || []) {
        if (!timer.createdTime) continue;
        const a = Date.parse(timer.createdTime), b = Date.parse(timer.firedTime || timer.fireAt || timer.createdTime);
        track.append(el("div", { class: "bar timer", title: `retry wait ${fmtMs(timer.delayMs)}`, style: `left:${pct(a)};width:${pct(t0 + Math.max(b - a, 0))}` }));
      }
      for (const a of step.attempts) {
        if (!a.scheduledTime) continue;
        const s = Date.parse(a.scheduledTime), f = a.finishedTime ? Date.parse(a.finishedTime) : t1;
        track.append(el("div", { class: `bar ${a.outcome}`, title: `attempt ${a.attempt}: ${a.outcome} ${fmtMs(a.durationMs)}`, style: `left:${pct(s)};width:${pct(t0 + Math.max(f - s, 0))}` }));
      }
      const attempts = step.attempts.map((a) => el("div", { class: `attempt ${a.outcome}` },
        `#${a.attempt} `, el("span", { class: "o", text: a.outcome }), ` ${fmtMs(a.durationMs)}`,
        a.retryDelayMs ? el("span", { class: "muted", text: ` after ${fmtMs(a.retryDelayMs)} wait` }) : null,
        a.error ? el("div", { class: "e", text: `${a.error.type}: ${a.error.message}${a.error.retryable === false ? " (permanent)" : ""}` }) : null));
      box.append(el("div", { class: "step", "data-step": step.name, "data-status": step.status },
        el("div", { class: "step-head" }, el("span", { class: "name", text: step.name }),
          el("span", {}, badge(step.status === "succeeded" ? "Completed" : step.status === "failed" ? "Failed" : "Running"),
            el("span", { class: "muted", text: ` ${step.attemptCount} attempt(s), ${fmtMs(step.durationMs)}` }))),
        track, attempts));
    }
  }

  async function renderImage(imageId) {
    const canvas = $("#image-canvas");
    if (canvas.dataset.imageId !== imageId) {  // another run's image must not stay on screen
      canvas.dataset.imageId = imageId;
      canvas.width = canvas.height = 10;
      $("#caption").textContent = "";
      $("#tags").replaceChildren();
      $("#ocr-text").textContent = "";
      $("#doc-fields").replaceChildren();
      $("#record-json").textContent = "";
    }
    const recordCall = api("GET", `/api/images/${encodeURIComponent(imageId)}`).catch(() => null);
    recordCall.then((record) => { $("#record-json").textContent = record ? JSON.stringify(record, null, 2) : "no record"; });
    const [record, blob] = await Promise.all([
      recordCall,
      fetch(`/api/dashboard/images/${encodeURIComponent(imageId)}/content`, { headers: KEY ? { "x-functions-key": KEY } : {} })
        .then(async (r) => {
          if (!r.ok) {
            const err = await r.json().then((d) => d.error || {}, () => ({}));
            throw new Error(`${r.status} ${err.code || ""}`.trim());
          }
          if (!(r.headers.get("content-type") || "").startsWith("image/")) throw new Error("not an image");
          return r.blob();
        }),
    ]);
    const bitmap = await createImageBitmap(blob);
    const scale = Math.min(1, 640 / bitmap.width);
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const analysis = (record && record.analysis) || {};
    const label = (text, x, y, color) => {
      ctx.font = "12px system-ui, sans-serif";
      const w = ctx.measureText(text).width + 6;
      ctx.fillStyle = color; ctx.fillRect(x, Math.max(0, y - 15), w, 15);
      ctx.fillStyle = "#fff"; ctx.fillText(text, x + 3, Math.max(11, y - 4));
    };
    const box = (b, color, text) => {
      if (!b) return;
      ctx.strokeStyle = color; ctx.lineWidth = 2;
      ctx.strokeRect(b.x * scale, b.y * scale, b.w * scale, b.h * scale);
      if (text) label(text, b.x * scale, b.y * scale, color);
    };
    for (const o of (analysis.objectsResult || {}).values || []) box(o.boundingBox, "#2f6fd6", `${(o.tags && o.tags[0] && o.tags[0].name) || "object"} ${pctConf(o.tags && o.tags[0] && o.tags[0].confidence)}`);
    for (const p of (analysis.peopleResult || {}).values || []) if ((p.confidence || 0) >= 0.5) box(p.boundingBox, "#c77d12", `person ${pctConf(p.confidence)}`);
    const read = (record && record.readResult) || analysis.readResult || {};
    const lines = [];
    for (const block of read.blocks || []) for (const line of block.lines || []) {
      lines.push(line.text);
      const poly = line.boundingPolygon || [];
      if (poly.length) {
        ctx.strokeStyle = "#2f9e6b"; ctx.lineWidth = 1.5; ctx.beginPath();
        poly.forEach((pt, i) => (i ? ctx.lineTo(pt.x * scale, pt.y * scale) : ctx.moveTo(pt.x * scale, pt.y * scale)));
        ctx.closePath(); ctx.stroke();
      }
    }
    $("#caption").textContent = (analysis.captionResult && analysis.captionResult.text) || (record ? `record: ${record.status}` : "no record yet");
    const tags = ((analysis.tagsResult || {}).values || []).slice(0, 15);
    $("#tags").replaceChildren(...tags.map((t) => el("span", { class: "chip", text: `${t.name} ${pctConf(t.confidence)}` })),
      ...((record && record.labelNames) || []).map((l) => el("span", { class: "chip label", text: l })),
      // custom labels (docs/custom-labels.md): one chip per active label set of the profile
      ...((record && record.customLabels) || []).map((c) => el("span", { class: "chip custom", text: `${c.labelSet}: ${c.name} ${pctConf(c.confidence)}` })));
    $("#ocr-text").textContent = (record && record.text) || lines.join("\n");
    renderDocumentFields(record, ctx, scale);
  }

  // Typed document fields (record.documentFields, docs/document-fields.md): one row each, value outlined.
  function renderDocumentFields(record, ctx, scale) {
    const fields = (record && record.documentFields && record.documentFields.fields) || {};
    const rows = Object.entries(fields).map(([name, f]) => {
      const poly = ((f.sources || [])[0] || {}).boundingPolygon || [];
      if (poly.length) {
        ctx.strokeStyle = "#7a3fbf"; ctx.lineWidth = 2; ctx.beginPath();
        poly.forEach((pt, i) => (i ? ctx.lineTo(pt.x * scale, pt.y * scale) : ctx.moveTo(pt.x * scale, pt.y * scale)));
        ctx.closePath(); ctx.stroke();
      }
      const shown = f.type === "currency" && f.currencyCode ? `${f.normalized} ${f.currencyCode}` : f.normalized;
      return el("tr", {}, el("td", { text: name }), el("td", { text: shown }), el("td", { class: "muted", text: pctConf(f.confidence) }));
    });
    $("#doc-fields").replaceChildren(...rows);
  }

  // ------------------------------------------------------------------------------------------ upload
  // A direct upload, as a client would do it: POST /api/uploads for a signed URL, then PUT the bytes straight to
  // the blob service (another origin: its CORS rules must allow this page's origin).
  async function upload() {
    const file = $("#upload-file").files[0];
    const out = $("#upload-result");
    if (!file) return;
    const profile = $("#upload-profile").value.trim();
    out.textContent = "asking for an upload URL…";
    delete out.dataset.status;
    const ticket = await api("POST", "/api/uploads", null, { contentType: file.type, filename: file.name, ...(profile ? { profile } : {}) });
    if (file.size > ticket.maxBytes) throw new Error(`the file is larger than ${ticket.maxBytes} bytes`);
    out.textContent = `uploading ${file.name}…`;
    let resp;
    try {
      resp = await fetch(ticket.uploadUrl, { method: ticket.method, headers: ticket.requiredHeaders, body: file, credentials: "omit", referrerPolicy: "no-referrer" });
    } catch (e) {
      out.dataset.status = "refused";
      out.textContent = `refused by the blob service (CORS must allow ${location.origin})`;
      throw new Error(`the blob service refused the upload (${e.message}): its CORS rules must allow ${location.origin}`);
    }
    if (!resp.ok) { out.dataset.status = "refused"; throw new Error(`the blob service answered ${resp.status}`); }
    out.dataset.id = ticket.id;
    out.dataset.status = "pending";
    out.textContent = `uploaded ${ticket.id}: pending`;
    const started = Date.now();
    while (Date.now() - started < 180000) {
      await new Promise((r) => setTimeout(r, 1000));
      const st = await api("GET", `/api/images/${encodeURIComponent(ticket.id)}/status`).catch(() => null);
      if (!st) continue;
      out.textContent = `uploaded ${ticket.id}: ${st.status}`;
      out.dataset.status = st.status;
      if (st.status === "completed" || st.status === "failed") break;
    }
    await refreshAll();
  }

  const pctConf = (c) => (typeof c === "number" ? `${Math.round(c * 100)}%` : "");

  async function replay(mode) {
    const id = state.selected;
    if (!id || !confirm(`Replay run ${id} (${mode})?`)) return;
    const result = await api("POST", `/api/runs/${encodeURIComponent(id)}/replay`, { mode });
    toast(`${id}: ${result.action} accepted`);
    await renderRun(id, false);
    await loadRuns(false);
  }

  // ------------------------------------------------------------------------------------------ stats
  async function loadStats() {
    const stats = await api("GET", "/api/stats", { windowMinutes: $("#window").value });
    const tiles = [["runs", stats.total], ["completed", stats.byStatus.Completed || 0], ["failed", stats.byStatus.Failed || 0],
      ["running", (stats.byStatus.Running || 0) + (stats.byStatus.Pending || 0)], ["per min", stats.throughput.perMinute],
      ["p50", fmtMs(stats.latencyMs.completed.p50) || "–"], ["p95", fmtMs(stats.latencyMs.completed.p95) || "–"]];
    $("#stat-tiles").replaceChildren(...tiles.map(([k, v]) => el("div", { class: "tile", "data-stat": k }, el("b", { text: String(v) }), el("small", { text: k }))));
    $("#reasons tbody").replaceChildren(...(stats.failureReasons.length ? stats.failureReasons.map((r) => el("tr", {},
      el("td", { text: String(r.count) }), el("td", {}, el("b", { text: `${r.step}` }), ` ${r.code}`, el("div", { class: "muted", text: (r.example || "").slice(0, 120) }))))
      : [el("tr", {}, el("td", { class: "muted", text: "no failures in the window" }))]));
    drawChart(stats);
    $("#health").textContent = `${stats.total} runs in ${stats.windowMinutes} min · updated ${new Date().toLocaleTimeString()}`;
  }

  function drawChart(stats) {
    const svg = $("#chart");
    const NS = "http://www.w3.org/2000/svg";
    const W = 640, H = 170, P = 24;
    const s = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
    svg.replaceChildren();
    const series = stats.series || [];
    const maxCount = Math.max(1, ...series.map((b) => b.completed + b.failed));
    const maxLat = Math.max(1, ...series.map((b) => b.p95Ms || 0));
    const bw = (W - 2 * P) / Math.max(1, series.length);
    svg.append(s("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#c9d0da" }));
    const points = [];
    series.forEach((b, i) => {
      const x = P + i * bw;
      const hOk = ((H - 2 * P) * b.completed) / maxCount, hBad = ((H - 2 * P) * b.failed) / maxCount;
      if (b.completed) svg.append(s("rect", { x: x + 1, y: H - P - hOk, width: Math.max(1, bw - 2), height: hOk, fill: "#2f9e6b" }));
      if (b.failed) svg.append(s("rect", { x: x + 1, y: H - P - hOk - hBad, width: Math.max(1, bw - 2), height: hBad, fill: "#d64545" }));
      if (b.p95Ms !== null) points.push(`${x + bw / 2},${H - P - ((H - 2 * P) * b.p95Ms) / maxLat}`);
    });
    if (points.length) svg.append(s("polyline", { points: points.join(" "), fill: "none", stroke: "#2f6fd6", "stroke-width": 2 }));
    const text = (x, y, t, anchor) => { const n = s("text", { x, y, "font-size": 10, fill: "#6b7585", "text-anchor": anchor || "start" }); n.textContent = t; svg.append(n); };
    text(P, 12, `${maxCount} runs`);
    text(W - P, 12, points.length ? `p95 up to ${fmtMs(maxLat)}` : "no completed runs", "end");
    text(P, H - 6, fmtTime(stats.from));
    text(W - P, H - 6, fmtTime(stats.to), "end");
  }

  async function refreshAll() {
    await Promise.all([loadRuns(false), loadStats()]);
    if (state.selected) await renderRun(state.selected, false).catch(() => {});
  }

  function guard(fn) {
    return (ev) => { if (ev) ev.preventDefault(); Promise.resolve(fn()).catch((e) => toast(e.message)); };
  }

  $("#key-form").addEventListener("submit", useKey);
  $("#upload-form").addEventListener("submit", guard(upload));
  $("#filters").addEventListener("submit", guard(() => loadRuns(false)));
  $("#more").addEventListener("click", guard(() => loadRuns(true)));
  $("#bulk-replay").addEventListener("click", guard(bulkReplay));
  $("#window").addEventListener("change", guard(loadStats));
  $("#replay-auto").addEventListener("click", guard(() => replay("auto")));
  $("#replay-rewind").addEventListener("click", guard(() => replay("rewind")));
  $("#replay-restart").addEventListener("click", guard(() => replay("restart")));
  $("#close-detail").addEventListener("click", () => { state.selected = null; clearTimeout(state.pollTimer); $("#detail").hidden = true; });
  const initial = params.get("status");
  if (initial) $("#status-filter").value = initial;
  if (queryKey) toast("a key in the URL's query string is sent to the server and ignored here: use #code=… or the key form");
  refreshAll().catch((e) => { $("#health").textContent = `error: ${e.message}`; });
  setInterval(() => loadStats().catch(() => {}), 15000);
})();
