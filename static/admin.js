// admin.js: the organiser's page: live counts and visitors, actions, and
// a read-only view of one visitor's terminal.
import { visible } from "./terminal.js";

const $ = (id) => document.getElementById(id);

function ago(iso) {
  const s = Math.round((Date.now() - new Date(iso)) / 1000);
  if (s < 5) return "now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return new Date(iso).toTimeString().slice(0, 5);
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

function row(p, lessons) {
  const state = p.state
    ? [el("span", { className: `badge st-${p.state}`, textContent: p.state }), p.user ? " " + p.user : ""]
    : [el("span", { className: "small", textContent: "no session" })];
  const end = el("form", { method: "post", action: `/admin/visitors/${p.handle}/end` },
    el("button", { type: "submit", className: "btn small quiet", textContent: "End" }));
  end.dataset.confirm = `End ${p.name}'s session? Their sandbox is freed.`;
  const watch = el("button", { type: "button", className: "btn small quiet", textContent: p.watchers ? "Watching" : "Watch" });
  watch.dataset.watch = p.handle;
  watch.dataset.name = p.name;
  const actions = el("td", { className: "actions" });
  if (p.help) {
    actions.append(el("form", { method: "post", action: `/admin/visitors/${p.handle}/helped` },
      el("button", { type: "submit", className: "btn small", textContent: "Helped" })));
  }
  actions.append(watch, end);
  const who = el("td", {});
  if (p.display_name) who.append(el("strong", { textContent: p.display_name }), el("br"));
  who.append(p.name + " ", el("span", { className: "small handle", textContent: p.handle }));
  if (p.help) {
    who.append(el("br"), el("span", { className: "need asked-badge", textContent: `Asked for help ${ago(p.help.since)}` }));
    if (p.help.note) who.append(el("span", { className: "small", textContent: `: “${p.help.note}”` }));
  }
  if (p.stuck) who.append(el("br"), el("span", { className: "need stuck-badge", textContent: `Stuck: ${p.stuck}` }));
  const cell = (label, ...kids) => { const td = el("td", {}, ...kids); td.dataset.label = label; return td; };
  who.dataset.label = "Visitor";
  const tr = el("tr", { id: `v-${p.handle}` },
    who,
    cell("State", ...state),
    cell("Last command", el("code", { textContent: p.last_command })),
    cell("Lessons", `${p.lessons_done}/${lessons} done`, el("span", { className: "small", textContent: (p.lesson ? " " + p.lesson : "") + (p.mail_in ? ` · ${p.mail_in} mail received` : "") + (p.lab ? ` · client lab ${p.lab}` : "") })),
    cell("Active", ago(p.last_seen)),
    actions);
  tr.dataset.handle = p.handle;
  tr.classList.toggle("asked", !!p.help);
  tr.classList.toggle("stuck", !p.help && !!p.stuck);
  return tr;
}

// shown is the visitors as the organiser asked to see them: found by
// handle, pseudonym or name, filtered by lesson and need, sorted.
function shown(people) {
  const q = $("people-search").value.trim().toLowerCase();
  const lesson = $("people-lesson").value;
  const needs = $("people-needs").checked;
  const sort = $("people-sort").value;
  const list = people.filter((p) =>
    (!q || [p.handle, p.name, p.display_name].some((s) => (s || "").toLowerCase().includes(q))) &&
    (!lesson || p.lesson_id === lesson) &&
    (!needs || p.help || p.stuck));
  const by = {
    need: null, // the server's order: raised hands, the stuck, the rest
    name: (a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name),
    active: (a, b) => new Date(b.last_seen) - new Date(a.last_seen),
    progress: (a, b) => a.lessons_done - b.lessons_done,
  }[sort];
  return by ? list.sort(by) : list;
}

let lastState = null;

function drawPeople(st) {
  // Rows are redrawn in a stable order; the focused control keeps its
  // focus (by its row's handle and its kind), so a keyboard user is not
  // thrown back to the top every 3 seconds.
  const focused = document.activeElement?.closest?.("tr[data-handle]");
  const kind = focused && (document.activeElement.dataset.watch ? "[data-watch]" : "form button");
  const handle = focused?.dataset.handle;
  const people = shown(st.people || []);
  $("people").tBodies[0].replaceChildren(...people.map((p) => row(p, st.lessons)));
  if (handle) {
    $("people").querySelector(`tr[data-handle="${CSS.escape(handle)}"] ${kind}`)?.focus({ preventScroll: true });
  }
  $("nobody")?.toggleAttribute("hidden", (st.people || []).length > 0);
}

let refreshes = 0;

async function refresh() {
  let st;
  try {
    const r = await fetch("/admin/api/state", { headers: { Accept: "application/json" } });
    if (r.status === 401) return location.reload();
    st = await r.json();
  } catch {
    return;
  }
  lastState = st;
  $("people").dataset.refreshes = String(++refreshes); // for tests: a redraw happened
  $("n-visitors").textContent = st.visitors;
  $("n-active").textContent = st.active;
  $("n-help").textContent = (st.people || []).filter((p) => p.help || p.stuck).length;
  $("n-pop3").textContent = st.pop3_connections;
  $("n-terminals").textContent = st.terminals;
  $("n-bulletins").textContent = (st.bulletins || []).length;
  drawPeople(st);
  $("summary").replaceChildren(...(st.summary || []).map((l) => el("li", {}, `${l.title}: `,
    el("strong", { textContent: `${l.finished}/${l.of}` }), " finished",
    el("span", { className: "small", textContent: `, ${l.started} under way` }))));
  $("errors").replaceChildren(...(st.errors || []).map((e) => el("li", {},
    el("span", { className: "small" }, `${new Date(e.time).toTimeString().slice(0, 8)} `, el("a", { href: `#v-${e.handle}`, textContent: e.visitor })), " ",
    el("code", { textContent: e.command }), " → ", el("code", { textContent: e.reply }))));
  $("bulletins").replaceChildren(...(st.bulletins || []).map((b) => {
    if (b.withdrawn) return el("li", {}, el("s", { textContent: b.subject }), " ", el("span", { className: "small", textContent: "withdrawn" }));
    const form = el("form", { method: "post", action: `/admin/bulletins/${b.id}/withdraw`, className: "inline" },
      el("button", { type: "submit", className: "btn small quiet", textContent: "Withdraw" }));
    form.dataset.confirm = `Withdraw “${b.subject}”? Maildrops that have it keep it; no one else gets it.`;
    return el("li", {}, b.subject + " ", el("span", { className: "small", textContent: b.source }), " ", form);
  }));
}

async function post(form) {
  const r = await fetch(form.action, {
    method: "POST",
    headers: { Accept: "application/json" },
    body: new URLSearchParams(new FormData(form)),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

let watching = null; // the watched visitor's event stream

// The sign-in page shares this script but has nothing to wire.
if ($("people")) start();

function start() {
  for (const id of ["people-search", "people-lesson", "people-needs", "people-sort"]) {
    $(id).addEventListener("input", () => { if (lastState) drawPeople(lastState); });
  }
  refresh();
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.action.includes("/admin/") || form.action.endsWith("/logout") || form.action.endsWith("/login")) return;
    e.preventDefault();
    if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
    const status = { "bulletin-form": $("bulletin-status"), "announce-form": $("announce-status") }[form.id] || null;
    try {
      const res = await post(form);
      if (form.id === "bulletin-form") {
        status.textContent = `Posted: “${res.subject}”.`;
        form.reset();
      } else if (form.id === "announce-form") {
        status.textContent = res.announcement ? `On every page now: “${res.announcement}”` : "Taken down.";
      }
    } catch (err) {
      if (status) status.textContent = "Not posted: " + err.message;
      else alert(err.message);
    }
    refresh();
  });

  // Watching one visitor's terminal.
  function stopWatching() {
    if (watching) watching.close();
    watching = null;
    $("watch").hidden = true;
  }
  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-watch]");
    if (!b) return;
    stopWatching();
    const out = $("watch-out");
    out.textContent = "";
    $("watch-title").textContent = `Watching ${b.dataset.name} (read-only)`;
    $("watch").hidden = false;
    watching = new EventSource(`/admin/visitors/${encodeURIComponent(b.dataset.watch)}/watch`);
    watching.addEventListener("line", (m) => {
      const l = JSON.parse(m.data);
      const line = el("div", { className: "ln " + { C: "cli", S: "srv", "*": "sys" }[l.who] });
      if (l.who === "S") {
        const ok = l.text.startsWith("+OK");
        line.append(el("span", { className: ok ? "ok" : "err", textContent: ok ? "+OK" : "-ERR" }), visible(l.text.replace(/^(\+OK|-ERR)/, "")));
      } else {
        line.textContent = visible(l.text);
      }
      out.append(line);
      out.parentElement.scrollTop = out.parentElement.scrollHeight;
    });
    refresh();
  });
  $("watch-stop").addEventListener("click", () => {
    stopWatching();
    refresh();
  });

  setInterval(refresh, 3000);
}
