// app.js: wires the playground page: the terminal, the event stream, the
// inspector, explanations, lessons and the helpers.
import { Terminal, transcriptOf } from "./terminal.js";
import { Inspector, Explainer } from "./inspector.js";
import { Lessons } from "./lessons.js";
import { md5hex } from "./md5.js";
import { smtpTerminal, openSMTP, composeNow } from "./smtp.js";
import { labPanel } from "./lab.js";
import { serverLabPanel } from "./serverlab.js";

const $ = (id) => document.getElementById(id);

// pageTab names this page in the events of its own terminal's connections.
function pageTab() {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// renewSession gets this page a new session after the server forgot the
// old one (a restart, expiry, or the organiser ended it): GET / sets a
// new cookie if the old one is no longer good, and /api/session makes the
// visitor, whom the page then shows. Terminals and the event stream that
// notice at once share one renewal; reopen runs after it.
let renewing = null;
function renewSession(reopen) {
  renewing ??= (async () => {
    try {
      await fetch("/", { headers: { Accept: "text/html" }, cache: "no-store" });
    } catch {
      return false;
    }
    return session();
  })().finally(() => { renewing = null; });
  return renewing.then((ok) => { if (ok) reopen?.(); return ok; });
}

// shownID is the visitor ID the page shows, once it has shown one.
let shownID = null;

// session makes sure this page's visitor exists (a bare page load makes
// none: the server waits for a browser that comes back with its cookie)
// and fills in the personal login. When the server gave the cookie a new
// visitor, the page says so: the old login no longer works. It returns
// false, having said why in the terminal's status, when the playground
// cannot take the visitor.
async function session() {
  try {
    const r = await fetch("/api/session", { headers: { Accept: "application/json" } });
    const info = await r.json();
    if (!r.ok) throw new Error(info.error || r.statusText);
    for (const el of document.querySelectorAll("[data-personal]")) {
      el.textContent = el.dataset.personal === "id" ? info.id : info.login;
    }
    showWho(info);
    if (info.address) {
      $("pl-address").textContent = info.address;
      for (const el of document.querySelectorAll(".mail-only")) el.hidden = false;
    }
    if (shownID !== null && shownID !== info.id) {
      const note = $("who-note");
      note.textContent = `You have a new playground session: you are ${info.pseudonym} (${info.handle}) now, ` +
        `with the personal login ${info.login}. The old one no longer works; your lesson progress stays.`;
      note.hidden = false;
    }
    shownID = info.id;
    showHand(info.help ? { raised: true, note: info.help.note } : { raised: false });
    return true;
  } catch (err) {
    $("term-status").textContent = err.message;
    const p = document.createElement("p");
    p.className = "term-note";
    p.textContent = err.message;
    $("term-out").append(p);
    return false;
  }
}

// showWho names the visitor as the organiser's page does.
function showWho(info) {
  $("who-name").textContent = info.pseudonym;
  $("who-handle").textContent = info.handle;
  $("who-display").textContent = info.display_name ? `, “${info.display_name}”` : "";
  if (document.activeElement !== $("display-name")) $("display-name").value = info.display_name || "";
}

// showHand shows whether the student's hand is up: the organiser sees it
// at the top of their list until one of them lowers it.
function showHand(h) {
  const form = $("help-form");
  form.classList.toggle("raised", h.raised);
  $("ask-help").textContent = h.raised ? "Lower my hand" : "Ask for help";
  const status = $("help-status");
  if (h.raised) status.textContent = "Your hand is up: the organiser sees it at the top of their list" + (h.note ? ` with “${h.note}”.` : ".");
  else if (h.by === "the organiser") status.textContent = "The organiser marked your question as helped.";
  else status.textContent = "";
}

function helpForm() {
  const form = $("help-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const lower = form.classList.contains("raised");
    const body = new URLSearchParams(lower ? { lower: "1" } : { note: $("help-note").value });
    try {
      const r = await fetch("/api/help", { method: "POST", headers: { Accept: "application/json" }, body });
      const h = await r.json();
      if (!r.ok) throw new Error(h.error || r.statusText);
      showHand(h);
      if (!lower) $("help-note").value = "";
    } catch (err) {
      $("help-status").textContent = "Not sent: " + err.message;
    }
  });
}

function nameForm() {
  const form = $("name-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = $("name-status");
    try {
      const r = await fetch("/api/name", {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(form)),
      });
      const info = await r.json();
      if (!r.ok) throw new Error(info.error || r.statusText);
      showWho(info);
      status.textContent = info.display_name ? "Saved: the organiser sees it beside your pseudonym." : "Cleared.";
    } catch (err) {
      status.textContent = "Not saved: " + err.message;
    }
  });
}

async function start() {
  if (!(await session())) return;
  nameForm();
  helpForm();
  const tab = pageTab();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const el = $("term");
  const term = new Terminal({
    out: $("term-out"),
    input: $("term-input"),
    status: $("term-status"),
    url: `${proto}//${location.host}/ws?tab=${tab}`,
    host: el.dataset.host,
    port: el.dataset.port,
    dialed: el.dataset.dialed,
  });
  window.pop3term = term; // for the console and the end-to-end test
  const inspector = new Inspector(tab);
  const explainer = new Explainer(term, tab);
  const lessons = new Lessons($("lessons"), $("lesson-live"));
  const apop = apopHelper(term);
  stepBar(lessons, term, inspector, apop, tab);
  terminalControls(term, explainer, inspector, lessons, apop);
  explainToggle();
  eventStream(term, inspector, explainer, lessons);
  resetForm(inspector);
  $("view-message").addEventListener("click", () => viewMessage(term));
  $("mv-close").addEventListener("click", () => { $("mailview").hidden = true; });
  transcriptButtons(term);
  labPanel();
  serverLabPanel();
  term.connect();
  term.input.focus({ preventScroll: true });
  smtpTerminal(proto, tab, renewSession);
}

// stepBar says what the step bar's buttons do (a lesson's do: line).
function stepBar(lessons, term, inspector, apop, tab) {
  lessons.page = {
    tab,
    pop3Open: () => term.state === "open",
    act: (a) => {
      const line = (a.line || "")
        .replaceAll("{address}", $("pl-address").textContent)
        .replaceAll("{count}", String(inspector.messageCount()))
        .replaceAll("{apop}", apop.digest("visitor"));
      switch (a.target) {
        case "connect": if (term.state === "closed") term.connect(); term.input.focus(); break;
        case "reset": $("reset-form").requestSubmit(); break;
        case "tab": window.open(location.href, "_blank"); break;
        case "smtp": openSMTP(); window.smtpterm?.type(line); break;
        case "compose": openSMTP(); composeNow(); break;
        default: term.type(line);
      }
    },
  };
}

// terminalControls wires the terminal's buttons and what its events
// change on the page.
function terminalControls(term, explainer, inspector, lessons, apop) {
  const connectBtn = $("term-connect");
  term.onevent = (e) => {
    if (e.type === "state") {
      connectBtn.textContent = e.state === "closed" ? "Connect" : "Disconnect";
      if (e.state === "connecting") explainer.connected();
      if (e.state === "closed") inspector.terminalClosed();
      // A session made anew (after a restart, or the organiser's End)
      // gets the progress this browser remembers.
      if (e.state === "open") lessons.restore();
      lessons.showStep(); // the bar's buttons follow the terminal
    } else if (e.type === "reply") {
      explainer.line(e.el, e.text);
      const ts = /<[^<>\s]+@[^<>\s]+>/.exec(e.text);
      if (ts && e.text.startsWith("+OK")) apop.greeting(ts[0]);
    }
  };
  connectBtn.addEventListener("click", () => {
    if (term.state === "closed") term.connect();
    else term.disconnect();
    term.input.focus();
  });
  $("term-clear").addEventListener("click", () => {
    term.clear();
    term.input.focus();
  });
  // Anything with data-cmd (chips, the reference, commands in lessons)
  // puts its command on the input line.
  document.addEventListener("click", (e) => {
    const t = e.target.closest("[data-cmd]");
    if (t) term.type(t.dataset.cmd);
  });
}

// explainToggle turns the explanations under replies on and off, and
// remembers the choice.
function explainToggle() {
  const toggle = $("explain-toggle");
  const setExplain = (on) => {
    toggle.checked = on;
    document.body.classList.toggle("no-explain", !on);
    try { localStorage.setItem("pop3pg.explain", on ? "1" : "0"); } catch { /* private mode */ }
  };
  let saved = null;
  try { saved = localStorage.getItem("pop3pg.explain"); } catch { /* private mode */ }
  setExplain(saved !== "0");
  toggle.addEventListener("change", () => setExplain(toggle.checked));
}

// eventStream reads the server's events for the inspector, the
// explanations and the lessons, and gets a new session when the server
// no longer knows this page's.
function eventStream(term, inspector, explainer, lessons) {
  let events = null;
  const entry = (type) => (m) => {
    const d = JSON.parse(m.data);
    inspector.handle(type, d);
    if (type === "pop3") explainer.event(d);
    if (type === "lesson") lessons.progress(d);
  };
  const openEvents = () => {
    if (events && events.readyState !== EventSource.CLOSED) return;
    const es = new EventSource("/events");
    events = es;
    for (const type of ["pop3", "lesson", "reset", "mail"]) es.addEventListener(type, entry(type));
    es.addEventListener("watch", (m) => {
      $("watched").hidden = !(JSON.parse(m.data).watchers > 0);
    });
    es.addEventListener("help", (m) => showHand(JSON.parse(m.data)));
    es.addEventListener("announcement", (m) => {
      const a = JSON.parse(m.data);
      const el = $("announcement");
      el.textContent = a.text ? `From the organiser: ${a.text}` : "";
      el.hidden = !a.text;
    });
    // The browser reconnects a stream by itself, but gives up on an
    // error status: the server no longer knows this page's visitor.
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED && events === es) sessionGone();
    });
    es.addEventListener("gone", () => {
      es.close();
      if (events === es) sessionGone();
    });
  };
  // sessionGone gets the page its new visitor and shows who it is.
  const sessionGone = () => {
    inspector.sessionLost("The playground no longer knew this page (it restarted, or your session was ended): here is a fresh session.");
    return renewSession(() => { events?.close(); events = null; openEvents(); lessons.restore(); });
  };
  openEvents();
  term.onnosession = sessionGone;
  term.onended = (why) => inspector.sessionLost(why + " Your next connection gets a fresh mailbox; your lesson progress stays.");
}

// resetForm resets the sandbox without leaving the page.
function resetForm(inspector) {
  $("reset-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = $("reset-status");
    status.textContent = "Resetting…";
    try {
      const r = await fetch("/reset", { method: "POST", headers: { Accept: "application/json" } });
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
      status.textContent = inspector.loggedIn()
        ? "Reset: the next login sees every message. The session logged in now keeps the maildrop it had at its login (RFC 1939 §8): QUIT and log in again to see them."
        : "Reset: every message is back at your next login.";
    } catch (err) {
      status.textContent = "Reset failed: " + err.message;
    }
  });
}

// transcriptButtons copy or download both terminals' transcript, in the
// order things happened, labelled, passwords masked.
function transcriptButtons(term) {
  const tstatus = $("transcript-status");
  const transcript = () => transcriptOf([["POP3", term], ["SMTP", window.smtpterm]]);
  window.pop3transcript = transcript; // for the end-to-end test
  $("transcript-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(transcript());
      tstatus.textContent = "Copied, passwords masked.";
    } catch {
      tstatus.textContent = "The browser did not allow copying: use Download.";
    }
  });
  $("transcript-download").addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([transcript()], { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `pop3-transcript-${new Date().toISOString().replace(/[:.]/g, "-")}.txt`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    tstatus.textContent = "Downloaded, passwords masked.";
  });
}

// viewMessage shows the last message RETR brought as a mail client does:
// decoded header, the route drawn as hops, text parts as text, HTML parts
// in an iframe sandboxed from scripts, forms and this page, attachments
// listed. Nothing from the message is ever inserted as HTML here.
async function viewMessage(term) {
  const status = $("transcript-status");
  const last = term.lastRetrieved();
  if (!last) {
    status.textContent = "No message yet: type RETR and a message number first.";
    return;
  }
  let v;
  try {
    const r = await fetch("/api/view", { method: "POST", headers: { Accept: "application/json", "Content-Type": "text/plain" }, body: last.raw });
    v = await r.json();
    if (!r.ok) throw new Error(v.error || r.statusText);
  } catch (err) {
    status.textContent = "Cannot show it: " + err.message;
    return;
  }
  const el = (tag, props = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, props); e.append(...kids); return e; };
  $("mv-title").textContent = `${last.cmd}, as a mail client shows it`;
  $("mv-head").replaceChildren(...[["From", v.From], ["To", v.To], ["Cc", v.Cc], ["Subject", v.Subject], ["Date", v.Date]]
    .filter(([, val]) => val).flatMap(([k, val]) => [el("dt", { textContent: k }), el("dd", { textContent: val })]));
  $("mv-route").replaceChildren(...(v.Route || []).map((h, i) => {
    const li = el("li", { className: h.Playground ? "hop own-hop" : "hop" });
    li.append(el("strong", { textContent: h.By || "?" }), ` received it from ${h.From || "?"}`);
    if (h.With) li.append(` with ${h.With}`);
    if (h.Time) li.append(el("span", { className: "small", textContent: ` · ${new Date(h.Time).toUTCString()}` }));
    if (i > 0 && h.Delay) {
      const s = Math.round(h.Delay / 1e9);
      li.append(el("span", { className: "small", textContent: s >= 0 ? ` · ${s} s after the hop before` : ` · its clock is ${-s} s behind the hop before` }));
    }
    if (h.Playground) li.append(el("span", { className: "badge st-TRANSACTION", textContent: "this playground" }));
    return li;
  }));
  const body = $("mv-body");
  body.replaceChildren(...(v.Text || []).map((t) => el("pre", { className: "mv-text", textContent: t })));
  for (const html of v.HTML || []) {
    const f = el("iframe", { className: "mv-html", title: "The HTML part, with scripts and remote content blocked" });
    f.setAttribute("sandbox", ""); // no scripts, no forms, no same-origin
    f.setAttribute("referrerpolicy", "no-referrer");
    f.srcdoc = html;
    body.append(el("p", { className: "small", textContent: "HTML part (scripts and remote images blocked):" }), f);
  }
  $("mv-attachments").replaceChildren(...(v.Attachments || []).map((a) =>
    el("li", { textContent: `Attachment: ${a.Name || "(no name)"}, ${a.Type}, ${a.Size} octets` })));
  $("mv-notes").textContent = (v.Notes || []).join(" ");
  $("mailview").hidden = false;
  $("mailview").scrollIntoView({ block: "nearest" });
}

// apopHelper computes APOP's digest in the page: MD5 of the greeting's
// timestamp followed by the password (RFC 1939 §7).
function apopHelper(term) {
  const user = $("apop-user"), ts = $("apop-ts"), pass = $("apop-pass"), out = $("apop-line");
  const line = () => {
    if (!ts.value.trim()) return "";
    return `APOP ${user.value.trim()} ${md5hex(ts.value.trim() + pass.value)}`;
  };
  const update = () => { out.textContent = line() || "APOP … (connect: the greeting carries the timestamp)"; };
  for (const i of [user, ts, pass]) i.addEventListener("input", update);
  $("apop-type").addEventListener("click", () => {
    const l = line();
    if (l) term.type(l);
  });
  update();
  return {
    greeting(stamp) {
      ts.value = stamp;
      update();
    },
    // digest is the APOP digest of the last greeting's timestamp and pass.
    digest(pass) {
      return ts.value.trim() ? md5hex(ts.value.trim() + pass) : "";
    },
  };
}

start();
