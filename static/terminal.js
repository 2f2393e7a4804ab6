// terminal.js: a telnet-like terminal over the playground's WebSocket bridge.
//
// It does telnet's job in line mode: local echo and line editing, CRLF on
// Enter, pasted lines sent as they are. The server's bytes are shown as
// text: control bytes made visible as ^X, never interpreted as HTML or as
// escape sequences (DESIGN §7).

import { gloss } from "./gloss.js";
import { lastRetrieved } from "./retrieved.js";

const MAX_LINES = 5000; // scroll-back
const MAX_TRANSCRIPT = 20000; // lines kept for the transcript
const HISTORY = 200;
const CLOSE_FOREIGN_HOST = 4000;
const CLOSE_CONNECT_FAILED = 4001;
const ANNOUNCED = 10; // body lines of a reply read aloud before a summary
const CLOSE_REFUSED = 4002; // the reason says why
const CLOSE_NO_SESSION = 4003; // the page's session is gone: make one, retry
const CLOSE_ENDED = 4004; // the organiser ended the session

// visible replaces control characters (other than tab) with caret notation.
export function visible(s) {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) =>
    c === "\x7f" ? "^?" : "^" + String.fromCharCode(c.charCodeAt(0) + 64));
}

export class Terminal {
  constructor({ out, input, status, url, host, port, dialed }) {
    this.out = out;
    this.input = input;
    this.status = status;
    this.url = url;
    this.host = host;
    this.port = port;
    this.dialed = dialed;
    this.ws = null;
    this.state = "closed"; // closed | connecting | open
    this.decoder = null;
    this.partial = null; // the line element still being received
    this.partialText = "";
    this.pending = []; // server text waiting for the next frame
    this.frame = 0;
    this.history = [];
    this.histPos = 0;
    this.draft = "";
    this.transcript = []; // {time, who: "C" | "S" | "*", text}, secrets masked
    this.saslPending = false; // the server asked for a SASL response
    this.onevent = () => {};
    this.lineWatchers = new Set(); // called with each complete server line

    input.addEventListener("keydown", (e) => this.keydown(e));
    input.addEventListener("paste", (e) => this.paste(e));
    out.addEventListener("mouseup", () => {
      // Clicking the output focuses the input, unless text is selected.
      if (!window.getSelection().toString()) input.focus({ preventScroll: true });
    });
  }

  // --- connection -------------------------------------------------------

  connect() {
    if (this.state !== "closed") return;
    this.setState("connecting");
    const [ip] = splitHostPort(this.dialed);
    this.system(`Trying ${ip}...`);
    this.decoder = new TextDecoder("utf-8");
    let opened = false;
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.system(`Connected to ${this.host}.`);
      this.system("Escape character is '^]'.");
      this.setState("open");
    };
    ws.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : this.decoder.decode(new Uint8Array(e.data), { stream: true });
      this.receive(text);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.flush();
      this.endPartial();
      if (e.code === CLOSE_NO_SESSION && this.onnosession && !this.retried) {
        // The server restarted, or forgot this page's session: the page
        // makes a new one, then this terminal tries once more.
        this.retried = true;
        this.setState("closed");
        this.onnosession().then((ok) => { if (ok) this.connect(); });
        return;
      }
      this.retried = false;
      if (e.code === CLOSE_CONNECT_FAILED || e.code === CLOSE_REFUSED || e.code === CLOSE_NO_SESSION) {
        this.system(`telnet: Unable to connect to remote host: ${e.reason || "the playground refused the connection"}`);
      } else if (e.code === CLOSE_ENDED) {
        this.system(`Connection closed: ${e.reason}`);
        this.onended?.(e.reason);
      } else if (!opened && e.code !== 1000) {
        this.system("telnet: Unable to connect to remote host: the playground did not answer (is it running?)");
      } else if (e.code === CLOSE_FOREIGN_HOST) {
        this.system("Connection closed by foreign host.");
      } else {
        this.system("Connection closed.");
      }
      this.system("Press Enter or Connect to connect again.", "hint");
      this.setState("closed");
    };
  }

  disconnect() {
    if (this.ws) this.ws.close(1000);
  }

  setState(s) {
    this.state = s;
    this.status.textContent = { closed: "disconnected", connecting: "connecting…", open: "connected" }[s];
    this.status.dataset.state = s;
    this.onevent({ type: "state", state: s });
  }

  send(text) {
    if (this.state !== "open") return false;
    this.ws.send(new TextEncoder().encode(text));
    return true;
  }

  // --- output -----------------------------------------------------------

  // receive queues server text; it is drawn once per animation frame so
  // that a 50 KB RETR arriving in many frames does not relayout each time.
  receive(text) {
    this.pending.push(text);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    if (!this.pending.length) return;
    const text = this.pending.join("");
    this.pending = [];
    const stick = this.atBottom();
    const frag = document.createDocumentFragment();
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const last = i === lines.length - 1;
      this.partialText += lines[i];
      if (last) break;
      let line = this.partialText;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      this.partialText = "";
      if (this.partial) {
        this.fillServerLine(this.partial, line, true);
        this.partial = null;
      } else {
        const div = document.createElement("div");
        frag.append(div); // before filling: an explanation may go after it
        this.fillServerLine(div, line, true);
      }
    }
    if (this.partialText) {
      if (!this.partial) {
        this.partial = document.createElement("div");
        frag.append(this.partial);
      }
      this.fillServerLine(this.partial, this.partialText, false);
    }
    this.out.append(frag);
    this.trim();
    if (stick) this.scrollToEnd();
  }

  endPartial() {
    if (this.partial) {
      this.partial = null;
      this.partialText = "";
    }
  }

  // fillServerLine draws a server line; complete is false while its end
  // has not arrived yet.
  fillServerLine(div, text, complete) {
    div.className = "ln srv";
    div.textContent = "";
    const m = /^(\+OK|-ERR)(\b.*)?$/.exec(text);
    if (complete) {
      this.announce(div, text, !!m);
      for (const f of this.lineWatchers) f(text, div);
    }
    if (m) {
      const tag = document.createElement("span");
      tag.className = m[1] === "+OK" ? "ok" : "err";
      tag.textContent = m[1];
      div.append(tag, visible(m[2] || ""));
      div.classList.add(m[1] === "+OK" ? "reply-ok" : "reply-err");
    } else {
      div.textContent = visible(text) || "\u200b";
    }
    if (complete) {
      this.record("S", text);
      this.saslPending = text === "+" || text.startsWith("+ ");
      if (m) this.onevent({ type: "reply", ok: m[1] === "+OK", text, el: div });
    }
  }

  // announce keeps a long reply from pouring into the screen reader's
  // live log line by line: the first lines of a multi-line body are read,
  // the rest are shown but hidden from it, and the terminating "." line
  // says how long the reply was ("440 lines, 49 KB").
  announce(div, text, status) {
    if (status || this.saslPending) {
      this.body = { lines: 0, bytes: 0 };
      return;
    }
    const b = this.body || (this.body = { lines: 0, bytes: 0 });
    if (text === ".") {
      if (b.lines > ANNOUNCED) {
        const note = document.createElement("span");
        note.className = "visually-hidden";
        note.textContent = ` end of the reply: ${b.lines} lines, ${kb(b.bytes)}; the transcript has them all.`;
        queueMicrotask(() => div.append(note));
      }
      this.body = { lines: 0, bytes: 0 };
      return;
    }
    b.lines++;
    b.bytes += text.length + 2;
    if (b.lines > ANNOUNCED) div.setAttribute("aria-hidden", "true");
  }

  // explain puts an explanation under a reply line: dim, not copied with
  // a selection, read by screen readers as part of the log.
  explain(el, text) {
    const stick = this.atBottom();
    const div = document.createElement("div");
    div.className = "ln explain";
    div.append("\u21b3 ", ...gloss(text));
    el.after(div);
    if (stick) this.scrollToEnd();
  }

  // --- transcript ---------------------------------------------------------

  record(who, text) {
    this.transcript.push({ time: new Date(), who, text });
    if (this.transcript.length > MAX_TRANSCRIPT) this.transcript.splice(0, this.transcript.length - MAX_TRANSCRIPT);
  }

  // mask hides what a client line gives away: a password, a SASL response.
  mask(line) {
    if (this.saslPending) return line === "*" ? line : "****";
    if (/^PASS\s/i.test(line)) return line.slice(0, 4) + " ****";
    const auth = /^(AUTH\s+\S+)\s+\S/i.exec(line);
    if (auth) return auth[1] + " ****";
    return line;
  }

  // transcriptText is the session so far as text: a timestamp, who spoke
  // (C client, S server, * terminal) and the line, secrets masked.
  transcriptText() {
    return this.transcript.map((e) => `${e.time.toISOString()} ${e.who}: ${visible(e.text)}`).join("\n") + "\n";
  }

  // clientLine shows what was sent, as telnet's local echo does.
  clientLine(text) {
    this.record("C", this.mask(text));
    this.saslPending = false;
    const div = document.createElement("div");
    div.className = "ln cli";
    div.textContent = visible(text) || "\u200b";
    this.out.append(div);
    this.trim();
    this.scrollToEnd();
  }

  system(text, cls = "sys") {
    this.flush();
    if (cls === "sys") this.record("*", text);
    const div = document.createElement("div");
    div.className = "ln " + cls;
    div.textContent = text;
    this.out.append(div);
    this.trim();
    this.scrollToEnd();
  }

  trim() {
    let extra = this.out.childElementCount - MAX_LINES;
    while (extra-- > 0) this.out.firstElementChild.remove();
  }

  clear() {
    this.flush();
    this.out.textContent = "";
    this.partial = null;
  }

  atBottom() {
    const el = this.out.parentElement;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  scrollToEnd() {
    const el = this.out.parentElement;
    el.scrollTop = el.scrollHeight;
  }

  // --- input ------------------------------------------------------------

  // lastRetrieved is the message the last RETR brought (retrieved.js).
  lastRetrieved() {
    return lastRetrieved(this.transcript);
  }

  // waitLine resolves with the next server line matching re, or null
  // after ms.
  waitLine(re, ms) {
    return new Promise((resolve) => {
      const f = (text) => {
        if (!re.test(text)) return;
        this.lineWatchers.delete(f);
        clearTimeout(timer);
        resolve(text);
      };
      const timer = setTimeout(() => { this.lineWatchers.delete(f); resolve(null); }, ms);
      this.lineWatchers.add(f);
    });
  }

  // submit sends lines (each ended by CRLF) in one message, as a pasted
  // block is sent by telnet: the server sees them pipelined.
  submit(lines) {
    if (this.state !== "open") {
      this.connect();
      return false;
    }
    this.flush();
    this.endPartial();
    for (const l of lines) this.clientLine(l);
    this.send(lines.map((l) => l + "\r\n").join(""));
    for (const l of lines) this.remember(l);
    return true;
  }

  remember(line) {
    if (line && this.history[this.history.length - 1] !== line) {
      this.history.push(line);
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.histPos = this.history.length;
    this.draft = "";
  }

  keydown(e) {
    const inp = this.input;
    const ctrl = e.ctrlKey && !e.altKey && !e.metaKey;
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      if (this.state !== "open") {
        this.connect();
        return;
      }
      const line = inp.value;
      inp.value = "";
      this.submit([line]);
      return;
    }
    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      e.preventDefault();
      this.recall(e.key === "ArrowUp" ? -1 : 1);
      return;
    }
    if (!ctrl) return;
    switch (e.key.toLowerCase()) {
      case "l": // clear the screen
        e.preventDefault();
        this.clear();
        break;
      case "u": // erase to the start of the line
        e.preventDefault();
        inp.value = inp.value.slice(inp.selectionStart);
        inp.setSelectionRange(0, 0);
        break;
      case "w": { // erase the word before the cursor
        e.preventDefault();
        const end = inp.selectionStart;
        const before = inp.value.slice(0, end).replace(/\S+\s*$/, "");
        inp.value = before + inp.value.slice(end);
        inp.setSelectionRange(before.length, before.length);
        break;
      }
      case "]": // telnet's escape: here, close the connection
        e.preventDefault();
        this.system("telnet> close");
        this.disconnect();
        break;
    }
  }

  recall(dir) {
    if (!this.history.length) return;
    if (this.histPos === this.history.length) this.draft = this.input.value;
    this.histPos = Math.max(0, Math.min(this.history.length, this.histPos + dir));
    const v = this.histPos === this.history.length ? this.draft : this.history[this.histPos];
    this.input.value = v;
    this.input.setSelectionRange(v.length, v.length);
  }

  // paste sends a multi-line block as it is: every complete line at once,
  // the last unfinished one left on the input line.
  paste(e) {
    const text = (e.clipboardData || window.clipboardData).getData("text");
    if (!/[\r\n]/.test(text)) return; // a single line: the input takes it
    e.preventDefault();
    const inp = this.input;
    const joined = inp.value.slice(0, inp.selectionStart) + text + inp.value.slice(inp.selectionEnd);
    const lines = joined.split(/\r\n|\r|\n/);
    const rest = lines.pop();
    inp.value = rest;
    if (lines.length) this.submit(lines);
  }

  // type puts a command on the input line (the chips, the reference).
  type(cmd) {
    this.input.value = cmd;
    this.input.focus();
    this.input.setSelectionRange(cmd.length, cmd.length);
  }
}

function splitHostPort(addr) {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr || "");
  return m ? [m[1], m[2]] : [addr, ""];
}

function kb(n) {
  return n < 1024 ? `${n} octets` : `${Math.round(n / 1024)} KB`;
}

// transcriptOf is the transcripts of several terminals as one text, in
// the order things happened, each line labelled with its terminal's name
// (POP3, SMTP): the mail lesson's dialogue is in both.
export function transcriptOf(terms) {
  const lines = [];
  for (const [name, t] of terms) {
    if (!t) continue;
    for (const e of t.transcript) lines.push({ ...e, name });
  }
  lines.sort((a, b) => a.time - b.time);
  return lines.map((e) => `${e.time.toISOString()} ${e.name} ${e.who}: ${visible(e.text)}`).join("\n") + "\n";
}
