// lessons.js: the lessons panel. Steps tick when the server says so (a
// "lesson" entry on the event stream); the page never decides by itself.

const SAVED = "pop3pg.progress";

export class Lessons {
  constructor(root, live) {
    this.root = root;
    this.live = live; // a status element that announces ticks
    this.bar = document.getElementById("current-step");
    this.where = new Map(); // lesson → where its next step must happen (the server's word)
    // The lesson under way: the one open on the page.
    this.current = root.querySelector(".lesson[open]") || root.querySelector(".lesson:not(.complete)");
    for (const btn of root.querySelectorAll(".lesson-restart")) {
      btn.addEventListener("click", () => this.restart(btn.closest(".lesson")));
    }
    for (const l of root.querySelectorAll(".lesson")) {
      this.show(l, Number(l.querySelector("[data-progress]").textContent.split("/")[0]), false);
      // Opening a lesson says it is the one under way: only its steps
      // tick from now on.
      l.addEventListener("toggle", () => {
        if (!l.open) return;
        this.current = l;
        this.showStep();
        if (this.following === l) {
          this.following = null; // the server moved on to it by itself
          return;
        }
        this.start(l);
      });
    }
    this.showStep();
  }

  // showStep puts the current lesson's next step beside the terminal: its
  // title and the actions that finish it (the lesson's do: line), as
  // buttons. A command goes on its terminal's input line (Enter sends it);
  // an action the page does ({connect}, {reset}, {compose}, {tab}) is done
  // at once. Buttons wait for the terminal they need: a POP3 command while
  // the POP3 terminal is closed gives way to Connect, and a button pressed
  // is marked as pressed until the step changes.
  showStep() {
    const l = this.current;
    if (!this.bar || !l) return;
    const steps = [...l.querySelectorAll(".lesson-steps > li")];
    const done = steps.filter((li) => li.classList.contains("done")).length;
    const title = l.querySelector(".lesson-title").textContent;
    const $ = (id) => document.getElementById(id);
    this.bar.hidden = false;
    $("step-lesson").textContent = title;
    const cmds = $("step-cmds");
    cmds.replaceChildren();
    if (done >= steps.length) {
      this.bar.classList.add("done");
      $("step-count").textContent = "· done";
      const next = this.root.querySelector(".lesson:not(.complete)");
      if (next) {
        $("step-title").textContent = "Lesson done. Next: " + next.querySelector(".lesson-title").textContent;
        const b = this.button("Start it", () => { l.open = false; next.open = true; });
        cmds.append(b);
      } else {
        $("step-title").textContent = "Lesson done, and with it every lesson of the course: well done!";
      }
      return;
    }
    this.bar.classList.remove("done");
    $("step-count").textContent = `· step ${done + 1} of ${steps.length}`;
    const step = steps[done];
    $("step-title").textContent = step.querySelector("strong").textContent;
    const key = `${l.dataset.lesson}/${done}`;
    if (this.usedKey !== key) {
      this.usedKey = key;
      this.used = new Set();
    }
    let actions = [];
    try { actions = JSON.parse(step.dataset.do || "[]"); } catch { /* none */ }
    const open = this.page?.pop3Open() ?? true;
    // Where the server says the step must happen (a lesson across two
    // tabs), and whether the session it needs has closed.
    const w = this.where.get(l.dataset.lesson);
    const here = w && w.done === done ? w : null;
    const myTab = this.page?.tab;
    if (here?.blocked) {
      $("step-title").textContent += `: ${here.blocked}.`;
      cmds.append(this.button(`Start again from step ${here.rewind}`, () => this.rewind(l, here.rewind)));
      return;
    }
    if (here?.tab && myTab && here.tab !== myTab) {
      $("step-title").textContent += " (in your other tab: the one whose session this step needs)";
      return;
    }
    if (here?.notTab && myTab) {
      if (here.notTab === myTab) {
        $("step-title").textContent += " (in a second tab: this one holds the first session)";
        actions = actions.filter((a) => a.target === "tab");
      } else {
        actions = actions.filter((a) => a.target !== "tab");
      }
    }
    actions.forEach((a, i) => {
      if (a.target === "connect" && open) return;
      if (!a.target && !open) return;
      const label = {
        connect: "Connect", reset: "Reset mailbox", compose: "Send it with Compose", tab: "Open a second tab",
      }[a.target] || (a.target === "smtp" ? `SMTP: ${a.line}` : a.line);
      const b = this.button(label, () => {
        if (a.target === "connect") {
          // Connecting is offered whenever the terminal is closed; what
          // came before it in the step (a QUIT) is behind us now.
          for (let j = 0; j < i; j++) this.used.add(j);
        } else {
          this.used.add(i);
          b.classList.add("used");
        }
        this.page?.act(a);
      });
      b.dataset.action = a.target || "pop3";
      if (this.used.has(i)) b.classList.add("used");
      cmds.append(b);
    });
  }

  button(label, onclick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.textContent = label;
    b.addEventListener("click", onclick);
    return b;
  }

  async start(l) {
    try {
      await fetch(`/api/lessons/${encodeURIComponent(l.dataset.lesson)}/start`, {
        method: "POST",
        headers: { Accept: "application/json" },
      });
    } catch { /* offline: the server keeps the lesson it had */ }
  }

  // progress takes a lesson entry: {lesson, done, steps}. The page keeps
  // a copy, so that progress outlives a restart of the server.
  progress(p) {
    const l = this.root.querySelector(`.lesson[data-lesson="${CSS.escape(p.lesson)}"]`);
    // A lesson done, the server moves on to the next by itself: when a
    // step of it ticks, the page follows.
    if (l && l !== this.current && this.current?.classList.contains("complete") && p.done > 0) {
      this.following = l;
      this.current.open = false;
      l.open = true;
      this.current = l;
    }
    if (l) {
      this.where.set(p.lesson, { done: p.done, tab: p.tab || "", notTab: p.not_tab || "", blocked: p.blocked || "", rewind: p.rewind || 0 });
      this.show(l, p.done, true);
    }
    const saved = this.saved();
    saved[p.lesson] = p.done;
    try { localStorage.setItem(SAVED, JSON.stringify(saved)); } catch { /* private mode */ }
  }

  saved() {
    try { return JSON.parse(localStorage.getItem(SAVED) || "{}") || {}; } catch { return {}; }
  }

  // restore gives a new session (after a restart, or a reload that lost
  // it) the progress this browser remembers.
  async restore() {
    const saved = this.saved();
    if (!Object.keys(saved).length) return;
    try {
      const r = await fetch("/api/lessons/restore", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify(saved),
      });
      if (!r.ok) return;
      for (const p of await r.json()) {
        const l = this.root.querySelector(`.lesson[data-lesson="${CSS.escape(p.id)}"]`);
        if (l) this.show(l, p.done, false);
      }
      this.showStep();
    } catch { /* offline */ }
  }

  show(l, done, announce) {
    const steps = l.querySelectorAll(".lesson-steps > li");
    const before = l.querySelectorAll(".lesson-steps > li.done").length;
    steps.forEach((li, i) => {
      li.className = i < done ? "step done" : i === done ? "step current" : "step";
      li.querySelector(".step-state").textContent = i < done ? "done:" : "to do:";
    });
    l.querySelector("[data-progress]").textContent = `${done}/${steps.length}`;
    if (l === this.current) this.showStep();
    const complete = done >= steps.length;
    l.classList.toggle("complete", complete);
    const title = l.querySelector(".lesson-title").textContent;
    l.querySelector(".lesson-done").textContent = complete ? "Lesson complete: well done!" : "";
    if (announce && done > before) {
      const step = steps[done - 1].querySelector("strong").textContent;
      this.live.textContent = complete ? `${title}: done.` : `${title}: “${step}” done.`;
    }
  }

  async rewind(l, step) {
    try {
      const r = await fetch(`/api/lessons/${encodeURIComponent(l.dataset.lesson)}/rewind`, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams({ step: String(step) }),
      });
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    } catch (err) {
      this.live.textContent = "Could not go back: " + err.message;
    }
  }

  async restart(l) {
    try {
      const r = await fetch(`/api/lessons/${encodeURIComponent(l.dataset.lesson)}/restart`, {
        method: "POST",
        headers: { Accept: "application/json" },
      });
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    } catch (err) {
      this.live.textContent = "Could not restart the lesson: " + err.message;
    }
  }
}
