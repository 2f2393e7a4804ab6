// smtp.js: the SMTP terminal and the compose panel that drives it.
import { Terminal } from "./terminal.js";
import { smtpExplain } from "./protocol.js";

const $ = (id) => document.getElementById(id);

// smtpTerminal wires the SMTP terminal, when mail in is on: the same
// bridge, to the playground's SMTP listener (chosen by name on the
// server), connected when the student asks.
export function smtpTerminal(proto, tab, renewSession) {
  const el = $("smtp-term");
  if (!el) return null;
  const smtp = new Terminal({
    out: $("smtp-out"),
    input: $("smtp-input"),
    status: $("smtp-status"),
    url: `${proto}//${location.host}/ws?target=smtp&tab=${tab}`,
    host: el.dataset.host,
    port: el.dataset.port,
    dialed: el.dataset.dialed,
  });
  // Each final reply line gets its meaning, from the code the server
  // sent (RFC 5321 §4.2, RFC 3463 for the enhanced code).
  smtp.lineWatchers.add((text, div) => {
    const why = smtpExplain(text);
    if (why) smtp.explain(div, why);
  });
  const btn = $("smtp-connect");
  smtp.onevent = (e) => {
    if (e.type === "state") btn.textContent = e.state === "closed" ? "Connect" : "Disconnect";
  };
  btn.addEventListener("click", () => {
    if (smtp.state === "closed") smtp.connect();
    else smtp.disconnect();
    smtp.input.focus();
  });
  $("smtp").addEventListener("toggle", () => {
    if ($("smtp").open && smtp.state === "closed") smtp.connect();
  });
  smtp.onnosession = () => renewSession();
  window.smtpterm = smtp; // for the console and the end-to-end test
  composePanel(smtp);
  return smtp;
}

// composePanel sends a message by driving the SMTP terminal: the envelope
// pipelined, the content only after the server's 354, dot-stuffed as
// RFC 5321 §4.5.2 asks; the student watches the dialogue it performs.
function composePanel(smtp) {
  const form = $("compose");
  const status = $("compose-status");
  const from = () => $("pl-address").textContent;
  $("c-to").value = from();
  $("smtp").addEventListener("toggle", () => { if (!$("c-to").value) $("c-to").value = from(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const to = $("c-to").value.trim().replace(/[<>\s]/g, "");
    const subject = $("c-subject").value.replace(/[\r\n]+/g, " ");
    const body = $("c-body").value.split(/\r\n|\r|\n/);
    status.textContent = "Sending through the SMTP terminal…";
    if (smtp.state !== "open") {
      const greeting = smtp.waitLine(/^220 /, 5000);
      smtp.connect();
      if (!(await greeting)) {
        status.textContent = "Not sent: the SMTP listener did not answer.";
        return;
      }
    }
    const data = smtp.waitLine(/^(354|503|554) /, 5000);
    smtp.submit(["EHLO browser", `MAIL FROM:<${from()}>`, `RCPT TO:<${to}>`, "DATA"]);
    const reply = await data;
    if (!reply || !reply.startsWith("354")) {
      smtp.submit(["QUIT"]);
      status.textContent = "Not sent: see the server's replies in the terminal.";
      return;
    }
    const done = smtp.waitLine(/^[245]\d\d /, 5000);
    smtp.submit([`From: <${from()}>`, `To: <${to}>`, `Subject: ${subject}`, "",
      ...body.map((l) => (l.startsWith(".") ? "." + l : l)), ".", "QUIT"]);
    const end = await done;
    status.textContent = end && end.startsWith("250")
      ? "Sent: it arrives at the recipient's next POP3 login."
      : "Not sent: " + (end || "no answer from the server.");
    if (end && end.startsWith("250")) form.reset(), ($("c-to").value = from());
  });
}

// openSMTP opens the SMTP terminal's panel, which connects it.
export function openSMTP() {
  const d = $("smtp");
  if (d && !d.open) d.open = true;
}

// composeNow sends the compose panel's message, filling in what is empty.
export function composeNow() {
  if (!$("c-to").value) $("c-to").value = $("pl-address").textContent;
  if (!$("c-subject").value) $("c-subject").value = "by hand";
  if (!$("c-body").value) $("c-body").value = "Hello from the step bar.";
  $("compose").requestSubmit();
}
