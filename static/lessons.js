// lessons.js: the lessons panel. Steps tick when the server says so (a
// "lesson" entry on the event stream); the page never decides by itself.

const SAVED = "pop3pg.progress";

export class Lessons {
  constructor(root, live) {
    this.root = root;
    this.live = live; // a status element that announces ticks
    this.bar = document.getElementById("current-step");
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
        this.start(l);
      });
    }
    this.showStep();
  }

  // showStep puts the current lesson's next step beside the terminal: its
  // title and the commands it asks for, as buttons that type them.
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
      $("step-count").textContent = "· complete";
      $("step-title").textContent = "Lesson complete: open the next one in Lessons.";
      return;
    }
    this.bar.classList.remove("done");
    $("step-count").textContent = `· step ${done + 1} of ${steps.length}`;
    const step = steps[done];
    $("step-title").textContent = step.querySelector("strong").textContent;
    const seen = new Set();
    for (const c of step.querySelectorAll(".md [data-cmd]")) {
      if (seen.has(c.dataset.cmd) || seen.size >= 3) continue;
      seen.add(c.dataset.cmd);
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.dataset.cmd = c.dataset.cmd;
      b.textContent = c.dataset.cmd;
      b.title = "Put it on the terminal's input line";
      cmds.append(b);
    }
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
    if (l) this.show(l, p.done, true);
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
      this.live.textContent = complete ? `${title}: complete.` : `${title}: “${step}” done.`;
      if (complete && l.open) {
        // On to the next lesson not yet done.
        const next = this.root.querySelector(".lesson:not(.complete)");
        if (next) {
          l.open = false;
          next.open = true; // its toggle makes it current
        }
      }
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
