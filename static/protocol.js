// protocol.js: what the server's own tables say of POP3 and SMTP, read
// from the page (the "protocol" JSON the server writes into it), so that
// the script keeps no copy of the command table or the explanations.

const data = (() => {
  const el = document.getElementById("protocol");
  try {
    return el ? JSON.parse(el.textContent) : {};
  } catch {
    return {};
  }
})();

const bodies = new Map((data.pop3 || []).map((c) => [c.verb, c.body || ""]));

// multiLine says whether a +OK reply to the command line has a body,
// ended by a line holding "." (RFC 1939 §3), as pop3.MultiLine does.
export function multiLine(cmd) {
  const line = cmd.trim();
  const sp = line.indexOf(" ");
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const arg = sp < 0 ? "" : line.slice(sp + 1).trim();
  const body = bodies.get(verb);
  return body === "always" || (body === "without-arguments" && arg === "");
}

// smtpExplain explains a final SMTP reply line by its enhanced status
// code (RFC 3463) where the server's table has it, else by its reply code
// (RFC 5321 §4.2), as sessions.ExplainSMTP does; "" for any other line.
export function smtpExplain(line) {
  const m = /^(\d{3}) (\d\.\d{1,3}\.\d{1,3})?/.exec(line);
  if (!m) return "";
  const smtp = data.smtp || {};
  return (m[2] && smtp[m[2]]) || smtp[m[1]] || "";
}
