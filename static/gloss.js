// gloss.js: plain words for the explanations' jargon.

// GLOSS says in plain words what the explanations' jargon means: shown on
// hover (title) and on tap or keyboard focus (the gloss's own text), and
// read by screen readers after the word.
const GLOSS = [
  [/\boctets?\b/g, "bytes: units of 8 bits, as the RFCs count them"],
  [/\bmaildrops?\b/g, "the mailbox the server keeps for an account"],
  [/\bRFC (\d+) §([\d.]+)/g, (m) => `${m[0]}: the Internet standard RFC ${m[1]}, section ${m[2]}`],
  [/\bqueued\b/g, "accepted for delivery"],
  [/\bunique-ids?\b/g, "a message's name that stays the same from one session to the next"],
  [/\bdot-stuff(?:ed|ing)\b/g, "a line that starts with a dot gets a second one, so that it is not taken for the end"],
  [/\bUPDATE\b/g, "the state after QUIT in which the server really deletes what was marked"],
  [/\bTRANSACTION\b/g, "logged in: the state in which you read and mark messages"],
  [/\bAUTHORIZATION\b/g, "not logged in yet: the state in which you say who you are"],
];

// gloss splits text into text and glossed words, at most one gloss a term.
export function gloss(text) {
  const hits = [];
  for (const [re, meaning] of GLOSS) {
    re.lastIndex = 0;
    const m = re.exec(text);
    if (!m) continue;
    const plain = typeof meaning === "function" ? meaning(m) : meaning;
    if (!hits.some((h) => m.index < h.end && h.start < m.index + m[0].length)) {
      hits.push({ start: m.index, end: m.index + m[0].length, word: m[0], plain });
    }
  }
  hits.sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const h of hits) {
    out.push(text.slice(at, h.start));
    const g = document.createElement("span");
    g.className = "gloss";
    g.tabIndex = 0;
    g.title = h.plain;
    g.dataset.gloss = h.plain;
    g.textContent = h.word;
    const sr = document.createElement("span");
    sr.className = "visually-hidden";
    sr.textContent = ` (${h.plain})`;
    out.push(g, sr);
    at = h.end;
  }
  out.push(text.slice(at));
  return out;
}
