// The scrutable page: pick a user, edit the summary, move alpha; the list follows.
// Plain JavaScript, no dependencies. Every request carries a sequence number and an answer older
// than the one shown is dropped, so fast typing never shows an older ranking.
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 250;
const K = 10;

// What the page shows; window.tearsState lets a test read it.
const state = {
  info: null,
  user: null,          // the picked user's details, or null for a new user
  issued: 0,           // the last sequence number sent
  shown: 0,            // the sequence number of the list on screen
  request: null,       // the request body of the list on screen
  items: [],           // the list on screen
  previous: new Map(), // item -> rank in the list shown before it (for the arrows)
  explained: null,     // {seq, items: Map(item -> explanation)} for the list on screen
  undo: [],            // earlier {summary, alpha}
  last: null,          // the {summary, alpha} of the last request
};
window.tearsState = state;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const message = data && data.error ? data.error : response.status + " " + response.statusText;
    throw new Error(message);
  }
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(id, text, error) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", !!error);
}

function alpha() { return Number($("alpha").value); }

function currentBody() {
  const body = { summary: $("summary").value, alpha: alpha(), k: K };
  if (state.user) body.user = state.user.id;
  return body;
}

// --- ranking -------------------------------------------------------------------------------

let timer = null;
function scheduleRank() {
  clearTimeout(timer);
  timer = setTimeout(rank, DEBOUNCE_MS);
}

function remember() {
  const now = { summary: $("summary").value, alpha: alpha() };
  if (state.last && (state.last.summary !== now.summary || state.last.alpha !== now.alpha)) {
    state.undo.push(state.last);
    if (state.undo.length > 100) state.undo.shift();
  }
  state.last = now;
  $("undo").disabled = state.undo.length === 0;
}

async function rank() {
  clearTimeout(timer);
  const body = currentBody();
  if (body.summary.trim() === "") {
    setStatus("status", "Write a summary (or pick a user) to get recommendations.");
    return;
  }
  remember();
  const seq = ++state.issued;
  setStatus("status", "ranking…");
  let data;
  try {
    data = await api("/api/recommend", body);
  } catch (e) {
    if (seq > state.shown) setStatus("status", e.message, true);
    return;
  }
  if (seq <= state.shown) return; // an older answer than the one on screen: drop it
  showList(seq, body, data);
}

function moveOf(item, rank) {
  if (state.previous.size === 0) return { text: "", cls: "same", value: null };
  const was = state.previous.get(item);
  if (was === undefined) return { text: "new", cls: "new", value: "new" };
  if (was > rank) return { text: "↑" + (was - rank), cls: "up", value: String(was - rank) };
  if (was < rank) return { text: "↓" + (rank - was), cls: "down", value: String(rank - was) };
  return { text: "=", cls: "same", value: "0" };
}

function showList(seq, body, data) {
  state.previous = new Map(state.items.map((i) => [i.item, i.rank]));
  state.shown = seq;
  state.request = body;
  state.items = data.items;
  state.explained = null;
  const list = $("items");
  list.replaceChildren();
  for (const item of data.items) {
    const move = moveOf(item.item, item.rank);
    const li = el("li", "item");
    li.dataset.item = item.item;
    li.dataset.rank = item.rank;
    if (move.value !== null) li.dataset.move = move.value;
    li.dataset.moveClass = move.cls;
    li.append(el("span", "rank", item.rank + "."));
    const title = el("span", "title", item.title);
    title.append(el("span", "genres", item.genres.join(", ")));
    li.append(title);
    li.append(el("span", "move " + move.cls, move.text));
    li.addEventListener("mouseenter", () => explain(item.item, li));
    li.addEventListener("click", () => explain(item.item, li));
    list.append(li);
  }
  showSentences(data.sentences);
  const note = data.notes && data.notes.length ? " · " + data.notes.join("; ") : "";
  const who = body.user !== undefined ? "user " + body.user : "no history";
  setStatus("status", `top ${data.items.length} at alpha ${data.alpha.toFixed(2)} (${who}), ${data.took_ms.toFixed(0)} ms${note}`);
  $("items").dataset.seq = seq;
  $("explain").hidden = true;
}

// --- explanations --------------------------------------------------------------------------

async function explain(item, li) {
  for (const node of document.querySelectorAll("li.item.selected")) node.classList.remove("selected");
  li.classList.add("selected");
  const seq = state.shown;
  if (!state.explained || state.explained.seq !== seq) {
    state.explained = { seq, items: null, pending: null };
  }
  const ex = state.explained;
  if (!ex.items) {
    showExplanation(item, null, "explaining…");
    if (!ex.pending) ex.pending = api("/api/explain", state.request);
    try {
      const data = await ex.pending;
      ex.items = new Map(data.items.map((i) => [i.item, i]));
    } catch (e) {
      ex.pending = null;
      if (state.shown === seq) showExplanation(item, null, e.message);
      return;
    }
  }
  if (state.shown !== seq || !li.classList.contains("selected")) return; // the list moved on
  showExplanation(item, ex.items.get(item), null);
}

function showExplanation(item, explained, message) {
  const box = $("explain");
  box.hidden = false;
  box.dataset.item = item;
  const shown = state.items.find((i) => i.item === item);
  $("explain-title").textContent = shown ? "#" + shown.rank + " " + shown.title : "item " + item;
  const list = $("explain-sentences");
  list.replaceChildren();
  if (!explained || !explained.explanation) {
    $("explain-ranks").textContent = message || "no explanation";
    return;
  }
  const e = explained.explanation;
  const a0 = e.rank_alpha0 === null || e.rank_alpha0 === undefined ? "–" : "#" + e.rank_alpha0;
  $("explain-ranks").textContent = `rank at alpha 0 (history only): ${a0} · at alpha 1 (text only): #${e.rank_alpha1}`;
  const top = e.sentences.slice(0, 3);
  if (top.length === 0) list.append(el("li", "muted", "one sentence: nothing to leave out"));
  for (const s of top) list.append(el("li", "", s.text));
}

// --- the summary and its edits -------------------------------------------------------------

function showSentences(sentences) {
  const box = $("sentences");
  box.replaceChildren();
  sentences.forEach((s, i) => {
    const chip = el("button", "chip sentence", s);
    chip.type = "button";
    chip.title = "remove this sentence";
    chip.dataset.index = i;
    chip.addEventListener("click", () => applyEdit({ edit: "remove_sentence", args: i }));
    box.append(chip);
  });
}

async function applyEdit(edit) {
  try {
    const data = await api("/api/edit", { summary: $("summary").value, edit });
    if (!data.changed) {
      setStatus("status", "that edit does not change this summary");
      return;
    }
    $("summary").value = data.summary;
    showSentences(data.sentences);
    await rank();
  } catch (e) {
    setStatus("status", e.message, true);
  }
}

function showGenres(genres) {
  const box = $("genres");
  box.replaceChildren();
  for (const g of genres) {
    const chip = el("button", "chip genre", "More " + g);
    chip.type = "button";
    chip.dataset.genre = g;
    chip.addEventListener("click", () => applyEdit({ edit: "append", args: "More " + g + "." }));
    box.append(chip);
  }
}

// --- users ---------------------------------------------------------------------------------

function stars(r) {
  const n = Math.max(0, Math.min(5, Math.round(r)));
  return "★".repeat(n) + "☆".repeat(5 - n);
}

async function pickUser(id) {
  state.undo = [];
  state.last = null;
  state.items = [];
  state.previous = new Map();
  $("undo").disabled = true;
  if (id === "") {
    state.user = null;
    $("history-box").hidden = true;
    $("summary").value = "";
    $("swap").disabled = true;
    $("reset").disabled = true;
    $("items").replaceChildren();
    showSentences([]);
    setStatus("status", "A new user: write a summary (with no history, alpha is 1).");
    return;
  }
  let user;
  try {
    user = await api("/api/users/" + encodeURIComponent(id));
  } catch (e) {
    setStatus("status", e.message, true);
    return;
  }
  state.user = user;
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const h of user.history.slice(0, 12)) {
    const tr = el("tr");
    tr.append(el("td", "", h.title + (h.year ? " (" + h.year + ")" : "")));
    tr.append(el("td", "", stars(h.rating)));
    tr.append(el("td", "muted", h.genres.join(", ")));
    body.append(tr);
  }
  $("history-box").hidden = false;
  $("summary").value = user.summary || "";
  const fav = user.favourite_genre, least = user.least_favourite_genre;
  $("swap").disabled = !(fav && least);
  $("swap").textContent = fav && least ? `Swap ${fav} ⇄ ${least}` : "Swap favourite ⇄ least favourite";
  $("reset").disabled = !user.summary;
  await rank();
}

// --- cold start ----------------------------------------------------------------------------

let coldSeq = 0;
async function coldStart() {
  const text = $("cold-text").value.trim();
  if (!text) return;
  const seq = ++coldSeq;
  setStatus("cold-status", "ranking…");
  try {
    const data = await api("/api/recommend", { summary: text, k: K });
    if (seq !== coldSeq) return;
    const list = $("cold-items");
    list.replaceChildren();
    for (const item of data.items) {
      const li = el("li", "item");
      li.dataset.item = item.item;
      li.append(el("span", "rank", item.rank + "."));
      const title = el("span", "title", item.title);
      title.append(el("span", "genres", item.genres.join(", ")));
      li.append(title);
      li.append(el("span", "move"));
      list.append(li);
    }
    setStatus("cold-status", `alpha 1 (no history), ${data.took_ms.toFixed(0)} ms`);
  } catch (e) {
    if (seq === coldSeq) setStatus("cold-status", e.message, true);
  }
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  try {
    const [info, users] = await Promise.all([api("/api/info"), api("/api/users")]);
    state.info = info;
    const star = info.alpha_star === null || info.alpha_star === undefined ? "" : `, alpha* ${info.alpha_star}`;
    $("model-info").textContent = `${info.kind} on ${info.backbone}${star} · ${info.items} items · ${info.users} users`;
    $("alpha").value = info.default_alpha;
    $("alpha-value").textContent = Number(info.default_alpha).toFixed(2);
    $("alpha").disabled = !info.has_backbone;
    $("summary").maxLength = info.max_summary_chars;
    showGenres(info.genres);
    const select = $("user-select");
    for (const u of users.users) {
      const option = el("option", "", `${u.id} (${u.set}, ${u.ratings} rated${u.has_summary ? "" : ", no summary"})`);
      option.value = u.id;
      select.append(option);
    }
    setStatus("status", "Pick a user, or write a summary as a new user.");
  } catch (e) {
    setStatus("status", "cannot reach the server: " + e.message, true);
  }
  document.body.dataset.ready = "true";
}

$("user-select").addEventListener("change", (e) => pickUser(e.target.value));
$("summary").addEventListener("input", scheduleRank);
$("alpha").addEventListener("input", () => {
  $("alpha-value").textContent = alpha().toFixed(2);
  scheduleRank();
});
$("swap").addEventListener("click", () => {
  const u = state.user;
  if (u && u.favourite_genre && u.least_favourite_genre) {
    applyEdit({ edit: "swap_genres", args: [u.favourite_genre, u.least_favourite_genre] });
  }
});
$("undo").addEventListener("click", () => {
  const back = state.undo.pop();
  if (!back) return;
  state.last = null;
  $("summary").value = back.summary;
  $("alpha").value = back.alpha;
  $("alpha-value").textContent = Number(back.alpha).toFixed(2);
  $("undo").disabled = state.undo.length === 0;
  rank();
});
$("reset").addEventListener("click", () => {
  if (state.user && state.user.summary) {
    $("summary").value = state.user.summary;
    rank();
  }
});
$("cold-go").addEventListener("click", coldStart);
$("cold-text").addEventListener("keydown", (e) => { if (e.key === "Enter") coldStart(); });
start();
