// card.js: a row of a report card (the client lab's and the server
// lab's): the check's title and RFC clause, what the server saw, and the
// verdict.

// cardRow makes the row. kind is the verdict's class: pass, fail or none.
export function cardRow({ id, status, kind, mark, title, rfc, seen, exchange }) {
  const tr = document.createElement("tr");
  tr.dataset.check = id;
  tr.dataset.status = status;
  const cell = document.createElement("td");
  const clause = document.createElement("span");
  clause.className = "small rfc";
  clause.textContent = rfc;
  cell.append(title, " ", clause);
  if (seen) {
    const div = document.createElement("div");
    div.className = "small seen";
    div.textContent = seen;
    cell.append(div);
  }
  if (exchange) {
    const pre = document.createElement("pre");
    pre.className = "small seen";
    pre.textContent = exchange.join("\n");
    cell.append(pre);
  }
  const verdict = document.createElement("td");
  verdict.className = kind;
  verdict.textContent = mark;
  tr.append(cell, verdict);
  return tr;
}
