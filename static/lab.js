// lab.js: the client lab's panel: the scenario, the report card, and the
// check of what the student's client saved. The card comes from
// /api/lab, read while the panel is open.

import { cardRow } from "./card.js";

const $ = (id) => document.getElementById(id);
const MARK = { pass: "✓ pass", fail: "✗ fail", "not exercised": "– not yet" };

export function labPanel() {
  const panel = $("client-lab");
  if (!panel) return;
  let timer = null;
  const status = $("lab-status");

  const draw = (info) => {
    const sel = $("lab-scenario");
    if (!sel.options.length) {
      const groups = { pop3: "POP3: your reading client", smtp: "SMTP: your sending client" };
      for (const [proto, label] of Object.entries(groups)) {
        const scs = info.scenarios.filter((sc) => sc.protocol === proto && (proto === "pop3" || info.address));
        if (!scs.length) continue;
        const g = document.createElement("optgroup");
        g.label = label;
        for (const sc of scs) g.append(new Option(sc.title + (sc.fault ? " (a fault)" : ""), sc.id));
        sel.append(g);
      }
    }
    $("lab-user").textContent = info.login;
    if (info.address) $("lab-address").textContent = info.address;
    const card = info.card;
    if (document.activeElement !== sel) sel.value = card.scenario.id;
    $("lab-does").textContent = "A correct client: " + card.scenario.does;
    $("lab-caption").textContent = card.sessions
      ? `Scenario “${card.scenario.title}”: ${card.sessions} ${card.scenario.protocol === "smtp" ? "message" : "connection"}${card.sessions === 1 ? "" : "s"} seen.`
      : `Scenario “${card.scenario.title}”: no connection yet. Run your client against ${info.host} port ${info.port}.`;
    const rows = card.checks.map((c) => cardRow({
      id: c.id, status: c.status, kind: c.status === "not exercised" ? "none" : c.status,
      mark: MARK[c.status] || c.status, title: c.title, rfc: c.rfc, seen: c.seen,
    }));
    $("lab-card").tBodies[0].replaceChildren(...rows);
  };

  const load = async () => {
    try {
      const r = await fetch("/api/lab", { headers: { Accept: "application/json" } });
      if (r.ok) draw(await r.json());
    } catch { /* the next poll tries again */ }
  };
  window.labRefresh = load; // for the end-to-end test

  panel.addEventListener("toggle", () => {
    clearInterval(timer);
    if (panel.open) {
      load();
      timer = setInterval(load, 3000);
    }
  });

  $("lab-scenario-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await fetch("/api/lab/scenario", { method: "POST", body: new URLSearchParams(new FormData(e.target)) });
    const info = await r.json();
    if (!r.ok) {
      status.textContent = info.error;
      return;
    }
    draw(info);
    status.textContent = `Scenario “${info.card.scenario.title}” started: a fresh lab maildrop, nothing seen yet.`;
  });

  $("lab-proof-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "Checking…";
    const r = await fetch("/api/lab/proof", { method: "POST", body: new FormData(e.target) });
    const info = await r.json();
    if (!r.ok) {
      status.textContent = info.error;
      return;
    }
    draw(info);
    const bad = info.submitted.filter((p) => !p.ok);
    status.textContent = bad.length
      ? bad.map((p) => `${p.name}: ${p.why}`).join(" · ")
      : `${info.submitted.length} saved message${info.submitted.length === 1 ? "" : "s"} match what the server sent.`;
  });
}
