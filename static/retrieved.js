// retrieved.js: the message the last RETR of a terminal's transcript
// brought, for the mail view.
import { multiLine } from "./protocol.js";

// lastRetrieved is the message the last RETR brought, as the server sent
// it with the dot-stuffing undone (RFC 1939 §3), or null. Replies are
// paired with commands in order, from the connection's greeting on: a
// student may type ahead of the replies (RFC 2449 §6.6 keeps them in
// order), so the line after a RETR is not always its reply.
export function lastRetrieved(t) {
  let start = 0;
  for (let i = t.length - 1; i >= 0; i--) {
    if (t[i].who === "*" && t[i].text.startsWith("Connected to")) { start = i + 1; break; }
  }
  const queue = [""]; // commands waiting for their status line; "" is the greeting
  let body = null, found = null, sasl = false;
  for (let i = start; i < t.length; i++) {
    const e = t[i];
    if (e.who === "C") {
      if (sasl) sasl = false; // the answer to a SASL challenge
      else queue.push(e.text);
      continue;
    }
    if (e.who !== "S") continue;
    if (body) {
      if (e.text === ".") {
        if (body.retr) found = { cmd: body.cmd, raw: body.lines.join("\r\n") + "\r\n" };
        body = null;
      } else if (body.retr) {
        body.lines.push(e.text.startsWith(".") ? e.text.slice(1) : e.text);
      }
      continue;
    }
    if (e.text === "+" || e.text.startsWith("+ ")) { sasl = true; continue; }
    const cmd = queue.shift() || "";
    const retr = /^retr\b/i.test(cmd.trim());
    const ok = e.text.startsWith("+OK");
    if (retr && !ok) found = null;
    if (ok && multiLine(cmd)) body = { cmd, retr, lines: [] };
  }
  return body && body.retr ? null : found;
}
