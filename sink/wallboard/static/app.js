// acwstream wallboard: renders the state pushed on /api/events (Server-Sent
// Events). The first message of a connection is full; later ones carry only
// the agents that changed. Timers run here between messages on the
// event-time clock the server sends (now + elapsed × rate).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const STATE_LABEL = {
    acw: "Wrap-up", talking: "On call", hold: "On hold", ringing: "Ringing",
    ready: "Ready", not_ready: "Not ready", logged_out: "Logged out",
  };
  // display order of states: wrap-ups first, they are what the board is for
  const ORDER = { acw: 0, talking: 1, hold: 1, ringing: 1, ready: 2, not_ready: 3, logged_out: 4 };
  const COUNTS = [["acw", "In wrap-up"], ["call", "On call"], ["ready", "Ready"], ["not_ready", "Not ready"], ["logged_out", "Logged out"]];

  const agents = new Map(); // id → agent record
  const cards = new Map(); // id → <li>
  let rest = null; // last state: open, tiles, alerts, clock
  let clockAt = 0; // performance.now() when rest arrived
  let seenAlerts = new Set();
  let updates = 0;
  let lastMsg = 0; // Date.now() of the last message
  let frozen = null; // the board clock when the connection dropped (timers stop there)
  const byId = (a, b) => a.localeCompare(b, undefined, { numeric: true });

  function now() {
    if (frozen !== null) return frozen;
    if (!rest) return Date.now();
    return rest.now + (performance.now() - clockAt) * rest.rate;
  }
  function fmtDur(ms) {
    if (!(ms >= 0)) ms = 0;
    const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }
  function fmtSecs(ms) { return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s"; }
  function fmtTime(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(e, t) { if (e.textContent !== t) e.textContent = t; }

  // level of a wrap-up of elapsed ms with the agent's thresholds:
  // "over" past the overrun threshold, "warn" past the warn one.
  function level(elapsed, warnMS, overMS) {
    if (overMS && elapsed > overMS) return "over";
    if (warnMS && elapsed > warnMS) return "warn";
    return "";
  }
  const FLAG = { over: "Overrun", warn: "Past warn", "": "" };

  // ---- agents -------------------------------------------------------
  function card(a) {
    let li = cards.get(a.id);
    if (!li) {
      li = el("li", "agent");
      li.dataset.agent = a.id;
      li.append(el("span", "name", a.id), el("span", "timer"), el("span", "state"), el("span", "flag"), el("span", "meta"));
      cards.set(a.id, li);
    }
    li.className = "agent s-" + (a.state || "unknown");
    setText(li.children[0], a.name || a.id); // the display name, when the feed gives one
    li.children[0].classList.toggle("long", (a.name || a.id).length > 24); // set smaller, never cut
    li.dataset.name = a.name || "";
    li.dataset.state = a.state;
    if (a.state === "acw") li.dataset.start = a.acw_start; else delete li.dataset.start;
    let label = STATE_LABEL[a.state] || a.state || "Unknown";
    if (a.state === "not_ready" && a.reason) label += " · " + a.reason;
    setText(li.children[2], label);
    let meta = [a.team, a.queue].filter(Boolean).join(" · ");
    if (a.state !== "acw" && a.last_acw_ms) {
      meta += (meta ? " · " : "") + "last wrap-up " + fmtSecs(a.last_acw_ms) + (a.last_acw_overrun ? " (overrun)" : "");
    }
    setText(li.children[4], meta);
    return li;
  }
  function tickCard(li, a, t) {
    const start = a.state === "acw" && a.acw_start ? a.acw_start : a.since;
    const elapsed = t - start;
    setText(li.children[1], fmtDur(elapsed));
    let lvl = "";
    if (a.state === "acw") lvl = level(elapsed, a.warn_ms, a.overrun_ms);
    li.classList.toggle("warn", lvl === "warn");
    li.classList.toggle("over", lvl === "over");
    setText(li.children[3], FLAG[lvl]);
    li.title = a.id + ": " + (STATE_LABEL[a.state] || a.state) + " for " + fmtDur(elapsed) + (lvl ? " — " + FLAG[lvl] : "");
  }
  // ?team=NAME or ?queue=NAME shows only that team's agents (or the
  // agents on that queue's calls): each team's screen shows its own
  // people. The tiles link to these.
  const only = new URLSearchParams(location.search);
  const onlyTeam = only.get("team"), onlyQueue = only.get("queue");
  const shown = (a) => (!onlyTeam || a.team === onlyTeam) && (!onlyQueue || a.queue === onlyQueue);
  function renderAgents() {
    const list = [...agents.values()].filter(shown).sort((a, b) => (ORDER[a.state] ?? 5) - (ORDER[b.state] ?? 5) || byId(a.id, b.id));
    const grid = $("agents");
    let prev = null;
    for (const a of list) {
      const li = card(a);
      const want = prev ? prev.nextSibling : grid.firstChild;
      if (want !== li) grid.insertBefore(li, want);
      prev = li;
    }
    for (const [id, li] of cards) {
      if (!agents.has(id) || !shown(agents.get(id))) { li.remove(); cards.delete(id); }
    }
    $("no-agents").hidden = list.length > 0;
    const n = { acw: 0, call: 0, ready: 0, not_ready: 0, logged_out: 0 };
    for (const a of list) {
      if (a.state === "talking" || a.state === "hold" || a.state === "ringing") n.call++;
      else if (a.state in n) n[a.state]++;
    }
    const counts = $("counts");
    counts.replaceChildren(...COUNTS.map(([k, label]) => {
      const li = el("li", "c-" + k);
      li.append(el("b", "", String(n[k])), document.createTextNode(" " + label));
      return li;
    }));
  }

  // fitAgents: in large mode the board is one screen, never scrolled.
  // The cards are in display order (wrap-up, on call, then the rest);
  // they shrink (the grid's --s, down to 0.5) until every card in
  // wrap-up or on a call fits above the bottom of the screen, or all of
  // them do; the cards that still do not fit are left out, and a line
  // says how many of each state.
  const ACTIVE = new Set(["acw", "talking", "hold", "ringing"]);
  const SCALES = [1, 0.92, 0.85, 0.78, 0.72, 0.66, 0.6, 0.55, 0.5];
  function fitAgents() {
    const grid = $("agents"), more = $("agents-more");
    const list = [...grid.children];
    for (const li of list) li.classList.remove("paged");
    if (!document.body.classList.contains("large")) {
      grid.style.removeProperty("--s");
      setText(more, "");
      return;
    }
    const visible = list.filter((li) => getComputedStyle(li).display !== "none"); // logged-out cards may be hidden
    if (visible.length === 0) return;
    let lastActive = null;
    for (const li of visible) if (ACTIVE.has(li.dataset.state)) lastActive = li;
    const main = document.querySelector("main");
    const limit = () => main.getBoundingClientRect().bottom - parseFloat(getComputedStyle(main).paddingBottom) - more.offsetHeight;
    const fits = (li) => !li || li.getBoundingClientRect().bottom <= limit() + 0.5;
    const last = visible[visible.length - 1];
    let chosen = SCALES[SCALES.length - 1];
    for (const sc of SCALES) { // the largest scale that fits every card, else the active ones
      grid.style.setProperty("--s", String(sc));
      if (fits(last)) { chosen = sc; break; }
    }
    if (!fits(last)) {
      for (const sc of SCALES) {
        grid.style.setProperty("--s", String(sc));
        if (fits(lastActive)) { chosen = sc; break; }
      }
    }
    grid.style.setProperty("--s", String(chosen));
    const left = {};
    let n = 0;
    const from = visible.findIndex((li) => !fits(li)); // this card and every one after it are left out
    for (const li of from < 0 ? [] : visible.slice(from)) {
      li.classList.add("paged");
      const k = STATE_LABEL[li.dataset.state] || li.dataset.state;
      left[k] = (left[k] || 0) + 1;
      n++;
    }
    setText(more, n ? `+${n} more not shown: ` + Object.entries(left).map(([k, v]) => `${v} ${k.toLowerCase()}`).join(", ") : "");
  }

  // ---- longest wrap-ups ----------------------------------------------
  function renderLongest() {
    const ol = $("longest");
    const items = rest.open.map((o) => {
      const a = agents.get(o.agent_id) || { id: o.agent_id };
      const li = el("li");
      li.dataset.agent = o.agent_id;
      li.dataset.start = o.start;
      li.dataset.warn = a.warn_ms || 0;
      li.dataset.over = a.overrun_ms || 0;
      li.append(el("span", "name", a.name || o.agent_id), el("span", "timer"), el("span", "flag"),
        el("span", "meta", [a.team, a.queue, a.call_id].filter(Boolean).join(" · ")));
      return li;
    });
    ol.replaceChildren(...items);
    $("no-longest").hidden = items.length > 0;
    setText($("open-count"), rest.open_count ? String(rest.open_count) : "");
  }
  function tickLongest(t) {
    for (const li of $("longest").children) {
      const elapsed = t - Number(li.dataset.start);
      const lvl = level(elapsed, Number(li.dataset.warn), Number(li.dataset.over));
      setText(li.children[1], fmtDur(elapsed));
      setText(li.children[2], FLAG[lvl]);
      li.className = lvl;
    }
  }

  // ---- alerts ---------------------------------------------------------
  // An overrun and its resolution are one wrap-up (agent and start): while
  // it is open it is an active overrun, with a live timer; once resolved,
  // one line of history. History is newest first.
  function alertLine(al, text, kind, label) {
    const li = el("li", "k-" + kind);
    li.dataset.agent = al.agent_id;
    li.dataset.kind = kind;
    li.dataset.id = al.id;
    li.dataset.start = al.start;
    li.dataset.at = al.at;
    const t = el("time", "", fmtTime(al.at));
    t.dateTime = new Date(al.at).toISOString();
    li.append(t, el("span", "kind", label), document.createTextNode(text));
    if (seenAlerts.size > 0 && !seenAlerts.has(al.id)) li.classList.add("new");
    return li;
  }
  function renderAlerts() {
    const wraps = new Map();
    for (const al of rest.alerts) {
      const k = al.agent_id + "@" + al.start;
      const w = wraps.get(k) || {};
      w[al.kind] = al;
      wraps.set(k, w);
    }
    const active = [], history = [];
    for (const w of wraps.values()) (w.overrun && !w.resolved ? active : history).push(w);
    active.sort((a, b) => a.overrun.start - b.overrun.start); // the longest first
    const at = (w) => (w.resolved || w.overrun).at;
    history.sort((a, b) => at(b) - at(a) || byId(a.resolved?.agent_id || "", b.resolved?.agent_id || ""));
    const who = (al) => {
      const where = [al.team, al.queue].filter(Boolean).join(" · ");
      const name = agents.get(al.agent_id)?.name || al.agent_id; // the display name, when known
      return `${name}${where ? " (" + where + ")" : ""}`;
    };
    const activeItems = active.map(({ overrun: al }) => {
      const li = alertLine(al, `${who(al)} still wrapping up ${al.call_id || "a call"} past ${fmtSecs(al.threshold_ms)}`, "overrun", "Overrun");
      li.append(el("span", "elapsed"));
      return li;
    });
    const historyItems = history.map(({ overrun: o, resolved: r }) => {
      if (!r) return alertLine(o, `${who(o)} was past ${fmtSecs(o.threshold_ms)} in ${o.call_id || "a call"}`, "overrun", "Overrun");
      const took = r.at - r.start;
      if (took <= r.threshold_ms) {
        return alertLine(r, `${who(r)} had finished ${r.call_id || "the call"}'s wrap-up in ${fmtSecs(took)}, within ${fmtSecs(r.threshold_ms)}: its close arrived late`, "resolved", "Resolved");
      }
      const since = o ? ` (overrun since ${fmtTime(o.at)})` : "";
      return alertLine(r, `${who(r)} finished the overrun wrap-up of ${r.call_id || "a call"} after ${fmtSecs(took)}${since}`, "resolved", "Resolved");
    });
    seenAlerts = new Set(rest.alerts.map((al) => al.id));
    $("active-alerts").replaceChildren(...activeItems);
    $("alerts").replaceChildren(...historyItems);
    $("no-active").hidden = activeItems.length > 0;
    $("no-alerts").hidden = historyItems.length > 0;
    tickAlerts(now());
  }
  function tickAlerts(t) {
    for (const li of $("active-alerts").children) setText(li.lastChild, fmtDur(t - Number(li.dataset.start)));
  }

  // ---- tiles ------------------------------------------------------------
  function pct(v) { return v.toFixed(1) + " %"; }
  // name, value, hot (shown in red), the name's short form (large mode)
  const COLS = [
    ["Calls", (s) => String(s.calls_handled), null, "Calls"],
    ["Avg ACW", (s) => (s.acw_count ? fmtSecs(s.acw_avg_ms) : "–"), null, "ACW"],
    ["ACW % work", (s) => pct(s.acw_pct_of_work), null, "ACW %"],
    ["AHT", (s) => (s.handle_count ? fmtSecs(s.aht_ms) : "–"), null, "AHT"],
    ["Occupancy", (s) => pct(s.occupancy_pct), null, "Occ."],
    ["Coded", (s) => (s.acw_count ? pct(s.acw_coded_pct) : "–"), null, "Coded"],
    ["Overruns", (s) => String(s.overrun_count), (s) => s.overrun_count > 0, "Over"],
  ];
  // queues carry wrap-up, handle and call counts only: time in state is per agent
  const PER_AGENT = ["ACW % work", "Occupancy"];
  const colsOf = (scope) => (scope === "queue" ? COLS.filter((c) => !PER_AGENT.includes(c[0])) : COLS);
  function statsRow(label, cls, s, cols) {
    const tr = el("tr", cls);
    tr.append(el("td", "", label));
    for (const [, f, hot] of cols) {
      const td = el("td", s && hot && hot(s) ? "hot" : "", s ? f(s) : "–");
      tr.append(td);
    }
    return tr;
  }
  function liveCounts(scope, key) {
    let acw = 0, call = 0, ready = 0;
    for (const a of agents.values()) {
      if ((scope === "team" ? a.team : a.queue) !== key) continue;
      if (a.state === "acw") acw++;
      else if (a.state === "talking" || a.state === "hold" || a.state === "ringing") call++;
      else if (a.state === "ready") ready++;
    }
    return scope === "team" ? `${acw} wrap-up · ${call} on call · ${ready} ready` : `${acw} wrap-up · ${call} on call`;
  }
  function renderTiles(scope) {
    const ul = $(scope + "s");
    ul.style.setProperty("--cols", String(colsOf(scope).length)); // large mode's one line per tile
    const tiles = (rest.tiles[scope] || []).slice().sort((a, b) => byId(a.key, b.key));
    ul.replaceChildren(...tiles.map((tl) => {
      const li = el("li", "tile");
      li.dataset.key = tl.key;
      const h = el("h3");
      const link = el("a", "", tl.key);
      link.href = "?" + new URLSearchParams({ [scope]: tl.key }).toString(); // this team's (queue's) screen
      h.append(link);
      h.append(el("span", "live", liveCounts(scope, tl.key)));
      const table = el("table");
      const head = el("tr");
      const cols = colsOf(scope);
      head.append(el("th", "", ""), ...cols.map(([name, , , short]) => {
        const th = el("th");
        th.title = name;
        th.append(el("span", "long", name), el("span", "short", short));
        return th;
      }));
      table.append(head, statsRow("Interval", "interval", tl.interval, cols), statsRow("Today", "today", tl.day, cols));
      li.append(h, table);
      return li;
    }));
    const start = rest.interval_start, end = start + rest.window_ms;
    setText($(scope + "s-hint"), `interval ${fmtTime(start).slice(0, 5)}–${fmtTime(end).slice(0, 5)} · today ${rest.day}`);
  }
  function kpis(box, label, s) {
    const parts = [el("span", "label", label)];
    for (const [name, f] of COLS) {
      const k = el("div", "kpi");
      k.append(el("b", "", s ? f(s) : "–"), el("span", "", name));
      parts.push(k);
    }
    box.replaceChildren(...parts);
  }
  function renderCenter() {
    const c = (rest.tiles.center || [])[0] || {};
    kpis($("center-interval"), "Centre · this interval", c.interval);
    kpis($("center-day"), "Centre · today", c.day);
  }

  // ---- clock and status -------------------------------------------------
  function tick() {
    const t = now();
    for (const [id, li] of cards) tickCard(li, agents.get(id), t);
    if (rest) {
      tickLongest(t);
      tickAlerts(t);
    }
    setText($("clock"), fmtTime(t));
    if (lastMsg && $("status").classList.contains("live")) {
      const ago = Math.round((Date.now() - lastMsg) / 1000);
      setText($("status-text"), ago < 2 ? "Live · updated just now" : `Live · last update ${fmtDur(ago * 1000)} ago`);
    }
  }
  function status(kind, text) {
    $("status").className = "status " + kind;
    setText($("status-text"), text);
  }

  // ---- stream -------------------------------------------------------------
  function onState(st) {
    if (st.full) agents.clear();
    for (const a of st.agents) agents.set(a.id, a);
    for (const id of st.removed || []) agents.delete(id);
    rest = st;
    clockAt = performance.now();
    updates++;
    document.body.dataset.seq = st.seq;
    document.body.dataset.updates = updates;
    renderAgents();
    renderLongest();
    renderAlerts();
    renderTiles("team");
    renderTiles("queue");
    renderCenter();
    fitAgents();
    setText($("clock-note"), st.rate !== 1 ? `simulated ×${st.rate}` : "");
    lastMsg = Date.now();
    status("live", "Live");
    setStale(false);
    tick();
  }
  // setStale: a board whose connection dropped must not look live. The
  // timers stop where the last data left them and a full-width banner says
  // since when, until fresh data arrives.
  function setStale(on) {
    if (on && frozen === null && rest) {
      frozen = now();
      setText($("stale-since"), fmtTime(rest.now)); // the board clock of the last data
    } else if (!on) {
      frozen = null;
    }
    $("stale").hidden = frozen === null;
    document.body.classList.toggle("is-stale", frozen !== null);
    if (on) tick(); // show the frozen clock now, not at the next tick
  }
  function connect() {
    const es = new EventSource("api/events");
    es.addEventListener("state", (e) => onState(JSON.parse(e.data)));
    es.onopen = () => status("live", "Live");
    es.onerror = () => {
      status("down", "Reconnecting… (showing the last state)");
      setStale(true);
    };
  }

  // ---- controls -------------------------------------------------------------
  function setLarge(on) {
    document.body.classList.toggle("large", on);
    document.documentElement.classList.toggle("large", on); // the root font scales with the viewport
    $("large").setAttribute("aria-pressed", String(on));
    fitAgents();
  }
  // the board's screen can change without a new state (a resize, fonts
  // loading, the tiles' column taking its width): fit again
  if (window.ResizeObserver) new ResizeObserver(() => fitAgents()).observe(document.querySelector("main"));
  window.addEventListener("resize", () => fitAgents());
  if (document.fonts) document.fonts.ready.then(() => fitAgents());
  $("large").addEventListener("click", () => setLarge(!document.body.classList.contains("large")));
  document.addEventListener("keydown", (e) => {
    if ((e.key === "l" || e.key === "L") && !e.ctrlKey && !e.metaKey && !e.altKey && e.target.tagName !== "INPUT") {
      setLarge(!document.body.classList.contains("large"));
    }
  });
  $("show-out").addEventListener("change", (e) => { document.body.classList.toggle("show-out", e.target.checked); fitAgents(); });
  const params = new URLSearchParams(location.search);
  if (params.has("large")) setLarge(params.get("large") !== "0");
  if (params.get("out") === "1") { $("show-out").checked = true; document.body.classList.add("show-out"); }

  if (onlyTeam || onlyQueue) {
    const what = onlyTeam ? "team " + onlyTeam : "queue " + onlyQueue;
    $("agents-h").textContent = "Agents · " + what;
    const all = el("a", "all", "all agents");
    all.href = "?";
    $("agents-h").append(" ", all);
  }

  setInterval(tick, 250);
  connect();
})();
