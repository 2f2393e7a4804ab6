// serverlab.js: the server lab's panel: pop3check's suite against a
// student's POP3 server, each result shown as the server streams it.

import { cardRow } from "./card.js";

const $ = (id) => document.getElementById(id);
const MARK = { PASS: "✓ pass", FAIL: "✗ fail", WARN: "! warn", SKIP: "– skip" };

export function serverLabPanel() {
  const form = $("server-lab-form");
  if (!form) return;
  const status = $("sl-status");
  const tbody = $("sl-card").tBodies[0];
  const row = (r) => cardRow({
    id: r.id, status: r.status, kind: r.status === "PASS" ? "pass" : r.status === "FAIL" ? "fail" : "none",
    mark: MARK[r.status] || r.status, title: r.title, rfc: `${r.rfc} ${r.word}`,
    seen: r.status !== "PASS" ? r.detail : "", exchange: r.exchange,
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    tbody.replaceChildren();
    status.textContent = "Checking…";
    let r;
    try {
      r = await fetch("/api/serverlab", { method: "POST", body: new URLSearchParams(new FormData(form)) });
    } catch (err) {
      status.textContent = "Not checked: " + err.message;
      return;
    }
    if (!r.ok) {
      status.textContent = (await r.json()).error || r.statusText;
      return;
    }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line) continue;
        const d = JSON.parse(line);
        if (d.id) {
          tbody.append(row(d));
          status.textContent = `Checking… ${tbody.rows.length} done.`;
        } else {
          status.textContent = `${d.checks} checks: ${d.passed} passed, ${d.failed} failed, ${d.warned} warned, ${d.skipped} skipped.`;
        }
      }
    }
  });
}
