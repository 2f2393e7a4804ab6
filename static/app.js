// app.js: wires the playground page to its terminal and panel.
import { Terminal } from "./terminal.js";

const $ = (id) => document.getElementById(id);

function start() {
  const el = $("term");
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const term = new Terminal({
    out: $("term-out"),
    input: $("term-input"),
    status: $("term-status"),
    url: `${proto}//${location.host}/ws`,
    host: el.dataset.host,
    port: el.dataset.port,
    dialed: el.dataset.dialed,
  });
  window.pop3term = term; // for the console and the end-to-end test

  const connectBtn = $("term-connect");
  term.onevent = (e) => {
    if (e.type === "state") {
      connectBtn.textContent = e.state === "closed" ? "Connect" : "Disconnect";
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
  for (const chip of document.querySelectorAll(".chip[data-cmd]")) {
    chip.addEventListener("click", () => term.type(chip.dataset.cmd));
  }

  const form = $("reset-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = $("reset-status");
    status.textContent = "Resetting…";
    try {
      const r = await fetch("/reset", { method: "POST", headers: { Accept: "application/json" } });
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
      status.textContent = "Every message is back. Reconnect to see them.";
    } catch (err) {
      status.textContent = "Reset failed: " + err.message;
    }
  });

  term.connect();
  term.input.focus({ preventScroll: true });
}

start();
