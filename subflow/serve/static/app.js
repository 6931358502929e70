// subflow review page: plain JavaScript over the HTTP API (the same routes a program uses).
// Every edit goes to the server the moment it is made; the page keeps no state of its own
// that a reload or a server restart could lose.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
};

const state = {
  settings: null,
  job: null, // the job under review
  cues: [], // sorted by start
  times: [], // every frame's time, then the end of the video
  selected: null, // cue id
  filter: "all",
  edge: "start",
  playUntil: null,
  pollTimer: null,
};

// -- talking to the server ------------------------------------------------------

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function toast(message, kind = "error") {
  const box = $("#toast");
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), kind === "error" ? 6000 : 2500);
}

function saved(text = "Saved") {
  const now = new Date();
  $("#saved").textContent = `${text} ✓ ${now.toLocaleTimeString()}`;
  document.body.dataset.saves = String(Number(document.body.dataset.saves || 0) + 1);
}

// -- formatting ---------------------------------------------------------------------

function clock(seconds) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000), m = Math.floor((ms % 3600000) / 60000), s = Math.floor((ms % 60000) / 1000);
  const rest = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}.${String(ms % 1000).padStart(3, "0")}`;
  return h ? `${h}:${rest}` : rest;
}

function frameIndex(t) {
  const times = state.times;
  let lo = 0, hi = times.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t + 1e-6) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// -- home: new jobs and the job list ----------------------------------------------

function jobOptions() {
  const options = {};
  const engine = $("#opt-engine").value, region = $("#opt-region").value.trim();
  const sample = $("#opt-sample").value, task = $("#opt-task").value, target = $("#opt-target").value.trim();
  if (engine) options.engine = engine;
  if (region) options.region = region;
  if (sample) options.sample_every = Number(sample);
  if (task) options.task = task;
  if (target) options.target = target;
  if ($("#opt-fast").checked) options.fast = true;
  return options;
}

function upload(file) {
  const form = new FormData();
  form.append("file", file);
  for (const [key, value] of Object.entries(jobOptions())) form.append(key, String(value));
  const status = $("#upload-status");
  const request = new XMLHttpRequest(); // XHR: fetch cannot report upload progress
  request.open("POST", "/api/jobs");
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) status.textContent = `Uploading ${file.name}: ${Math.round((100 * e.loaded) / e.total)} %`;
  };
  request.onload = () => {
    let data = {};
    try { data = JSON.parse(request.responseText); } catch { data = { error: request.statusText }; }
    if (request.status >= 400) {
      status.textContent = "";
      toast(data.error || request.statusText);
      return;
    }
    status.textContent = `Queued ${data.name}`;
    location.hash = `#/job/${data.id}`;
  };
  request.onerror = () => toast("the upload failed (connection lost)");
  status.textContent = `Uploading ${file.name}…`;
  request.send(form);
}

async function startFromPath(path) {
  try {
    const job = await api("POST", "/api/jobs/by-path", { path, options: jobOptions() });
    location.hash = `#/job/${job.id}`;
  } catch (error) {
    toast(error.message);
  }
}

async function browse(path) {
  try {
    const listing = await api("GET", `/api/media?path=${encodeURIComponent(path)}`);
    $("#media-path").textContent = listing.path || "media roots";
    $("#media-up").onclick = () => browse(listing.path && !state.settings.media_roots.includes(listing.path) ? listing.path.replace(/\/[^/]+$/, "") : "");
    const list = $("#media-list");
    list.replaceChildren(
      ...listing.folders.map((name) => el("li", { onclick: () => browse(listing.path ? `${listing.path}/${name}` : name) }, `${name}/`)),
      ...listing.videos.map((video) =>
        el("li", { onclick: () => startFromPath(`${listing.path}/${video.name}`), title: "Extract this video" },
          el("span", {}, video.name), el("span", { class: "muted" }, `${(video.size / 1048576).toFixed(1)} MB`))),
    );
  } catch (error) {
    toast(error.message);
  }
}

async function showJobs() {
  let jobs;
  try {
    jobs = await api("GET", "/api/jobs");
  } catch (error) {
    toast(error.message);
    return;
  }
  $("#no-jobs").hidden = jobs.length > 0;
  $("#jobs").replaceChildren(
    ...jobs.map((job) => {
      const share = job.duration ? Math.min(1, (job.progress?.position ?? job.position) / job.duration) : job.state === "done" ? 1 : 0;
      const actions = el("td", {});
      if (job.state === "queued" || job.state === "running") actions.append(el("button", { class: "small", onclick: () => api("POST", `/api/jobs/${job.id}/cancel`).then(showJobs, (e) => toast(e.message)) }, "Cancel"));
      else actions.append(el("button", { class: "small ghost", onclick: () => confirm(`Delete ${job.name} and its edits?`) && api("DELETE", `/api/jobs/${job.id}`).then(showJobs, (e) => toast(e.message)) }, "Delete"));
      return el("tr", { dataset: { job: job.id } },
        el("td", {}, el("a", { href: `#/job/${job.id}` }, job.name)),
        el("td", { class: `state-${job.state}`, title: job.error || "" }, job.state + (job.error ? `: ${job.error}` : "")),
        el("td", {}, el("span", { class: "bar-mini" }, el("div", { style: `width:${Math.round(share * 100)}%` })), ` ${Math.round(share * 100)} %`),
        el("td", {}, String(job.progress?.cues ?? job.cues)),
        el("td", {}, job.engine),
        actions);
    }),
  );
  clearTimeout(state.pollTimer);
  if (location.hash === "" || location.hash === "#/") {
    if (jobs.some((job) => job.state === "queued" || job.state === "running")) state.pollTimer = setTimeout(showJobs, 1000);
  }
}

// -- review: cues --------------------------------------------------------------------

function visibleCues() {
  return state.filter === "review" ? state.cues.filter((cue) => cue.review.length) : state.cues;
}

function cueById(id) {
  return state.cues.find((cue) => cue.id === id);
}

function confidenceBadge(value) {
  const kind = value >= 0.85 ? "good" : value >= 0.6 ? "mid" : "bad";
  return el("span", { class: `badge ${kind}`, title: "confidence of the read" }, `${Math.round(value * 100)} %`);
}

function card(cue, number) {
  const editable = state.job && ["done", "cancelled", "failed"].includes(state.job.state);
  const crop = cue.crop
    ? el("div", { class: "crop-box", title: "Zoom (z)", onclick: () => zoom(cue) }, el("img", { class: "crop", src: cue.crop, alt: cue.text, loading: "lazy" }))
    : el("div", { class: "crop-box" }, el("span", { class: "no-crop" }, "no crop (added by hand)"));
  const texts = el("div", { class: "texts" },
    el("div", {}, el("label", {}, "Text"), textArea(cue, null, cue.text, editable)),
    ...state.job.languages.map((lang) => el("div", {}, el("label", {}, lang), textArea(cue, lang, cue.translations[lang] || "", editable))));
  const nudgeButton = (edge, frames, label) =>
    el("button", { title: `${edge} ${frames > 0 ? "one frame later" : "one frame earlier"}`, onclick: (e) => { e.stopPropagation(); nudge(cue.id, edge, frames); }, disabled: editable ? null : "" }, label);
  const meta = el("div", { class: "meta" },
    el("span", { class: "times" },
      nudgeButton("start", -1, "◀"), el("span", { class: "start" }, clock(cue.start)), nudgeButton("start", 1, "▶"),
      " → ",
      nudgeButton("end", -1, "◀"), el("span", { class: "end" }, clock(cue.end)), nudgeButton("end", 1, "▶")),
    el("span", { class: "dur" }, `${(cue.end - cue.start).toFixed(2)} s`),
    confidenceBadge(cue.confidence),
    ...cue.review.map((reason) => el("span", { class: "chip" }, reason)),
    ...cue.flags.filter((f) => f === "added" || f === "reread").map((f) => el("span", { class: "chip info" }, f)),
    el("span", { class: "actions" },
      el("button", { title: "Play this cue (p)", onclick: (e) => { e.stopPropagation(); playCue(cue.id); } }, "▶ Play"),
      editable ? el("button", { title: "Split (s)", onclick: () => split(cue.id) }, "Split") : null,
      editable ? el("button", { title: "Merge with next (m)", onclick: () => merge(cue.id) }, "Merge ↓") : null,
      editable ? el("button", { title: "Delete (Del)", onclick: () => remove(cue.id) }, "Delete") : null));
  return el("article", { class: "cue" + (cue.id === state.selected ? " selected" : ""), dataset: { id: cue.id }, onclick: () => select(cue.id, { seek: true }) },
    el("div", { class: "num" }, String(number)),
    el("div", { class: "main" }, crop, texts, meta));
}

function textArea(cue, lang, value, editable) {
  const area = el("textarea", { rows: Math.max(1, value.split("\n").length), spellcheck: "true", dataset: { lang: lang || "" }, "aria-label": lang ? `translation ${lang}` : "text" });
  area.value = value;
  area.readOnly = !editable;
  area.dataset.original = value;
  area.addEventListener("focus", () => select(cue.id, { scroll: false }));
  area.addEventListener("blur", () => commitText(cue.id, area));
  area.addEventListener("keydown", (e) => textKeys(e, cue.id, area));
  return area;
}

function render() {
  const list = $("#cues");
  const cues = visibleCues();
  const numbers = new Map(state.cues.map((cue, i) => [cue.id, i + 1]));
  const scroll = list.scrollTop;
  const active = document.activeElement;
  const keep = active?.tagName === "TEXTAREA" && active.closest(".cue")
    ? { id: active.closest(".cue").dataset.id, lang: active.dataset.lang, value: active.value, original: active.dataset.original, from: active.selectionStart, to: active.selectionEnd }
    : null;
  list.replaceChildren(...cues.map((cue) => card(cue, numbers.get(cue.id))));
  list.scrollTop = scroll;
  if (keep) { // an edit landed while the editor types: keep the caret, and any text not saved yet
    const area = document.querySelector(`.cue[data-id="${keep.id}"] textarea[data-lang="${keep.lang}"]`);
    if (area) {
      if (keep.value !== keep.original) area.value = keep.value;
      area.focus();
      area.setSelectionRange(keep.from, keep.to);
    }
  }
  const look = state.cues.filter((cue) => cue.review.length).length;
  $("#counts").textContent = `${state.cues.length} cues, ${look} need a look`;
  document.body.dataset.cues = String(state.cues.length);
}

function patchList(result) {
  // Draw again only the cards an edit touched, and move them where their new times put them:
  // a full redraw of a film's 1500 cards takes about a second.
  const list = $("#cues");
  const cues = visibleCues();
  const position = new Map(cues.map((cue, i) => [cue.id, i]));
  for (const id of result.removed) cardOf(id)?.remove();
  const changed = [...result.changed].sort((a, b) => (position.get(a.id) ?? -1) - (position.get(b.id) ?? -1));
  for (const cue of changed) {
    const old = cardOf(cue.id);
    if (!position.has(cue.id)) { // filtered out now
      old?.remove();
      continue;
    }
    let node = old;
    if (old && old.contains(document.activeElement)) { // the editor is typing here: keep the text box
      old.querySelector(".meta").replaceWith(card(cue, 0).querySelector(".meta"));
    } else {
      node = card(cue, 0);
      if (old) old.replaceWith(node);
    }
    let next = null;
    for (let i = position.get(cue.id) + 1; i < cues.length && !next; i++) next = cardOf(cues[i].id);
    if (next) {
      if (node.nextElementSibling !== next) list.insertBefore(node, next);
    } else if (list.lastElementChild !== node) list.append(node);
  }
  const numbers = new Map(state.cues.map((cue, i) => [String(cue.id), i + 1]));
  for (const node of list.children) node.firstElementChild.textContent = String(numbers.get(node.dataset.id)); // .num
  const look = state.cues.filter((cue) => cue.review.length).length;
  $("#counts").textContent = `${state.cues.length} cues, ${look} need a look`;
  document.body.dataset.cues = String(state.cues.length);
}

function cardOf(id) {
  return document.querySelector(`.cue[data-id="${id}"]`);
}

function select(id, { scroll = true, seek = false } = {}) {
  if (id === null || id === undefined) return;
  const previous = state.selected;
  state.selected = id;
  if (previous !== id) cardOf(previous)?.classList.remove("selected");
  const node = cardOf(id);
  node?.classList.add("selected");
  if (scroll) node?.scrollIntoView({ block: "nearest", behavior: "smooth" });
  if (previous !== id || seek) {
    const cue = cueById(id);
    if (cue && seek) seekTo(cue.start);
    showBoundary();
  }
}

function move(step) {
  const cues = visibleCues();
  if (!cues.length) return;
  let i = cues.findIndex((cue) => cue.id === state.selected);
  i = i < 0 ? 0 : Math.max(0, Math.min(cues.length - 1, i + step));
  select(cues[i].id, { seek: true });
}

function moveToReview(step) {
  const cues = state.cues;
  let i = cues.findIndex((cue) => cue.id === state.selected);
  for (let k = 1; k <= cues.length; k++) {
    const j = (i + step * k + cues.length * k) % cues.length;
    if (cues[j].review.length) return select(cues[j].id, { seek: true });
  }
  toast("no cue needs a look", "info");
}

function apply(result, message) {
  for (const id of result.removed) state.cues = state.cues.filter((cue) => cue.id !== id);
  for (const cue of result.changed) {
    const i = state.cues.findIndex((c) => c.id === cue.id);
    if (i >= 0) state.cues[i] = cue; else state.cues.push(cue);
  }
  state.cues.sort((a, b) => a.start - b.start || a.end - b.end || a.id - b.id);
  if (result.removed.includes(state.selected)) state.selected = result.changed[0]?.id ?? null;
  const known = new Set(state.job.languages);
  if (result.changed.some((cue) => Object.keys(cue.translations).some((lang) => !known.has(lang)))) {
    openJob(state.job.id); // a first translation into a language: a new column, and every cue's review changes
  } else patchList(result);
  if (result.edit !== null) saved(message || result.summary);
  else if (message !== "") toast(result.summary, "info");
  showBoundary();
}

async function edit(method, path, body, message) {
  try {
    const result = await api(method, path, body);
    apply(result, message);
    return result;
  } catch (error) {
    toast(error.message);
    return null;
  }
}

const jobPath = (suffix = "") => `/api/jobs/${state.job.id}${suffix}`;

async function commitText(id, area) {
  if (area.value === area.dataset.original || area.readOnly) return;
  const lang = area.dataset.lang;
  area.dataset.original = area.value;
  const body = lang ? { translations: { [lang]: area.value } } : { text: area.value };
  const result = await edit("PATCH", jobPath(`/cues/${id}`), body, "Saved");
  if (!result) area.dataset.original = "";
}

function textKeys(e, id, area) {
  e.stopPropagation();
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    const caret = area.selectionStart;
    const typed = area.value;
    area.dataset.original = typed; // the split carries the text as it is now (saved just below)
    area.blur();
    const body = area.dataset.lang ? {} : { caret };
    api("PATCH", jobPath(`/cues/${id}`), area.dataset.lang ? { translations: { [area.dataset.lang]: typed } } : { text: typed })
      .then(() => edit("POST", jobPath(`/cues/${id}/split`), body, "Split"), (error) => toast(error.message));
  } else if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    area.blur(); // blur commits
    cardOf(id)?.focus();
  } else if (e.key === "Escape") {
    e.preventDefault();
    area.value = area.dataset.original;
    area.blur();
  } else if (e.key === "Tab" && !e.shiftKey) {
    e.preventDefault();
    area.blur();
    move(1);
    setTimeout(() => editText(), 0);
  }
}

function editText() {
  const area = cardOf(state.selected)?.querySelector("textarea");
  if (!area) return;
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

async function nudge(id, edge, frames) {
  state.edge = edge;
  const result = await edit("POST", jobPath(`/cues/${id}/nudge`), { edge, frames }, `Moved the ${edge} ${frames > 0 ? "later" : "earlier"} by a frame`);
  if (result?.changed[0]) seekTo(result.changed[0][edge]); // the video shows the new boundary's frame too
}
const split = (id) => edit("POST", jobPath(`/cues/${id}/split`), {}, "Split");
const merge = (id) => edit("POST", jobPath(`/cues/${id}/merge`), {}, "Merged");
const remove = (id) => {
  const cues = visibleCues();
  const i = cues.findIndex((cue) => cue.id === id);
  const next = cues[i + 1] || cues[i - 1];
  return edit("DELETE", jobPath(`/cues/${id}`), undefined, "Deleted").then((r) => r && next && select(next.id));
};

async function addAfter(id) {
  const cue = cueById(id);
  const video = $("#video");
  let start = cue ? cue.end : video.currentTime;
  const next = cue ? state.cues.find((c) => c.start >= cue.end && c.id !== id) : null;
  let end = next ? Math.min(next.start, start + 2) : start + 2;
  if (end - start < 0.04) { start = video.currentTime; end = start + 2; }
  // No pop-up: the new cue comes with "…" selected in its text box, ready to be typed over.
  const result = await edit("POST", jobPath("/cues"), { start, end, text: "…" }, "Added");
  if (result?.changed[0]) {
    select(result.changed[0].id);
    const area = cardOf(result.changed[0].id)?.querySelector("textarea");
    area?.focus();
    area?.select();
  }
}

async function reread(id) {
  const cue = cueById(id);
  if (!cue) return;
  const t = $("#video").currentTime;
  const time = t >= cue.start && t < cue.end ? t : undefined;
  const engine = $("#reread-engine").value || undefined;
  toast(`Reading cue again with ${engine || state.job.engine}…`, "info");
  await edit("POST", jobPath(`/cues/${id}/reread`), { engine, time }, "Re-read");
}

const undo = () => edit("POST", jobPath("/undo"), undefined, "Undone");
const redo = () => edit("POST", jobPath("/redo"), undefined, "Redone");

async function replaceAll() {
  const find = $("#find").value;
  if (!find) return toast("type what to find first", "info");
  await edit("POST", jobPath("/replace"), { find, replace: $("#replace").value, regex: $("#find-regex").checked, case: $("#find-case").checked }, "Replaced");
}

function findNext() {
  const needle = $("#find").value;
  if (!needle) return;
  const cues = state.cues;
  const start = cues.findIndex((cue) => cue.id === state.selected);
  const match = (text) => ($("#find-case").checked ? text.includes(needle) : text.toLowerCase().includes(needle.toLowerCase()));
  for (let k = 1; k <= cues.length; k++) {
    const cue = cues[(start + k) % cues.length];
    if (match(cue.text) || Object.values(cue.translations).some(match)) {
      state.filter = "all";
      $("#filter").value = "all";
      if (!cardOf(cue.id)) render();
      return select(cue.id, { seek: true });
    }
  }
  toast(`"${needle}" not found`, "info");
}

// -- video, frames, zoom -------------------------------------------------------------

function seekTo(t) {
  const video = $("#video");
  const i = frameIndex(t);
  // Half a frame in, so the browser shows the frame that starts at t.
  const next = state.times[i + 1];
  video.currentTime = next !== undefined ? (state.times[i] + next) / 2 : t;
}

function playCue(id) {
  const cue = cueById(id);
  if (!cue) return;
  select(id, { scroll: false });
  seekTo(cue.start);
  state.playUntil = cue.end;
  $("#video").play();
}

function togglePlay() {
  const video = $("#video");
  if (!video.paused) return video.pause();
  const cue = cueById(state.selected);
  state.playUntil = null;
  if (cue && (video.currentTime < cue.start || video.currentTime >= cue.end)) seekTo(cue.start);
  video.play();
}

function onTime() {
  const video = $("#video");
  const t = video.currentTime;
  $("#now").textContent = clock(t);
  const i = frameIndex(t);
  $("#now-frame").textContent = i >= 0 ? `frame ${i}` : "";
  if (state.playUntil !== null && t >= state.playUntil) {
    video.pause();
    state.playUntil = null;
  }
  const current = state.cues.find((cue) => cue.start <= t && t < cue.end);
  document.querySelectorAll(".cue.playing").forEach((node) => node.classList.remove("playing"));
  if (current) cardOf(current.id)?.classList.add("playing");
}

function bandBox(cue) {
  const w = state.job.width, h = state.job.height;
  if (!w || !h) return "";
  if (cue.box) {
    const [, y0, , y1] = cue.box;
    const pad = Math.max(24, Math.round((y1 - y0) * 0.8));
    return `&box=0,${Math.max(0, y0 - pad)},${w},${Math.min(h, y1 + pad)}`;
  }
  return cue.region === "top" ? `&box=0,0,${w},${Math.round(h / 4)}` : `&box=0,${Math.round((h * 3) / 4)},${w},${h}`;
}

function showBoundary() {
  const cue = cueById(state.selected);
  const a = $("#frame-a"), b = $("#frame-b");
  $("#edge-start").classList.toggle("active", state.edge === "start");
  $("#edge-end").classList.toggle("active", state.edge === "end");
  if (!cue || !state.times.length) {
    a.removeAttribute("src"); b.removeAttribute("src");
    return;
  }
  const t = cue[state.edge];
  const i = frameIndex(t);
  const before = state.times[Math.max(0, i - 1)];
  const at = state.times[Math.min(i, state.times.length - 2)];
  const box = bandBox(cue);
  a.hidden = i === 0; // nothing comes before the first frame
  if (i > 0) a.src = jobPath(`/frame?t=${before}${box}`);
  b.src = jobPath(`/frame?t=${at}${box}`);
  if (i === 0) {
    $("#frame-a-cap").textContent = "the video starts here: no frame before";
    $("#frame-b-cap").textContent = `frame 0: first frame of the ${state.edge === "start" ? "cue" : "video"}`;
  } else if (state.edge === "start") {
    $("#frame-a-cap").textContent = `frame ${i - 1}: before the cue`;
    $("#frame-b-cap").textContent = `frame ${i}: first frame of the cue`;
  } else {
    $("#frame-a-cap").textContent = `frame ${i - 1}: last frame of the cue`;
    $("#frame-b-cap").textContent = i >= state.times.length - 1 ? "end of the video" : `frame ${i}: first frame after it`;
  }
  $("#edge-time").textContent = `${state.edge} ${clock(t)} (frame ${i})`;
  document.body.dataset.boundary = `${state.edge}:${t}`;
}

function zoom(cue) {
  if (!cue?.crop) return;
  const dialog = $("#zoom");
  $("#zoom-img").src = cue.crop;
  $("#zoom-img").onload = () => setZoom(Number($("#zoom-scale").value));
  dialog.showModal();
}

function setZoom(scale) {
  scale = Math.max(1, Math.min(6, scale));
  $("#zoom-scale").value = String(scale);
  $("#zoom-label").textContent = `${Math.round(scale * 100)} %`;
  const img = $("#zoom-img");
  if (img.naturalWidth) img.style.width = `${img.naturalWidth * scale}px`;
}

// -- loading a job ---------------------------------------------------------------------

async function openJob(id) {
  let job;
  try {
    job = await api("GET", `/api/jobs/${id}`);
  } catch (error) {
    toast(error.message);
    location.hash = "#/";
    return;
  }
  const fresh = state.job?.id !== id;
  state.job = job;
  $("#job-title").textContent = job.name;
  showJobState();
  if (fresh) {
    state.selected = null;
    state.times = [];
    $("#video").src = jobPath("/video");
  }
  fillExport();
  await loadCues();
  if (!state.times.length && job.state !== "queued") {
    api("GET", jobPath("/frames")).then((times) => { state.times = times; showBoundary(); }, () => {});
  }
  if (job.state === "queued" || job.state === "running") pollJob(id);
}

function showJobState() {
  const job = state.job;
  const share = job.duration ? Math.min(1, (job.progress?.position ?? job.position) / job.duration) : 0;
  $("#job-state").textContent = job.state + (job.error ? `: ${job.error}` : "");
  $("#job-state").className = `job-state state-${job.state}`;
  document.body.dataset.jobState = job.state;
  const bar = $("#progress");
  bar.hidden = !(job.state === "queued" || job.state === "running");
  bar.querySelector(".fill").style.width = `${Math.round(share * 100)}%`;
  const p = job.progress;
  bar.querySelector(".label").textContent = job.state === "queued" ? "queued" : p ? `${Math.round(share * 100)} %: ${p.cues} cues, ${p.realtime_factor}x real time` : "starting…";
}

async function loadCues() {
  try {
    state.cues = await api("GET", jobPath("/cues"));
  } catch (error) {
    toast(error.message);
    return;
  }
  if (state.selected === null && state.cues.length) state.selected = state.cues[0].id;
  render();
  showBoundary();
}

function pollJob(id) {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(async () => {
    if (location.hash !== `#/job/${id}`) return;
    const before = state.job.state;
    try {
      state.job = await api("GET", `/api/jobs/${id}`);
    } catch (error) {
      return toast(error.message);
    }
    showJobState();
    if (state.job.cues !== state.cues.length || state.job.state !== before) await loadCues();
    if (state.job.state === "queued" || state.job.state === "running") pollJob(id);
    else {
      fillExport();
      api("GET", jobPath("/frames")).then((times) => { state.times = times; showBoundary(); }, () => {});
      render();
    }
  }, 1000);
}

function fillExport() {
  const formats = $("#export-format"), langs = $("#export-lang");
  const chosen = [formats.value, langs.value];
  formats.replaceChildren(...state.settings.formats.map((f) => el("option", { value: f }, f.toUpperCase())));
  const choices = [["original", "Original"], ...state.job.languages.map((l) => [l, l])];
  if (state.job.languages.length) choices.push(["bilingual", "Bilingual"]);
  langs.replaceChildren(...choices.map(([value, label]) => el("option", { value }, label)));
  langs.hidden = choices.length === 1;
  if (chosen[0]) formats.value = chosen[0];
  if (choices.some(([value]) => value === chosen[1])) langs.value = chosen[1];
  updateExportLink();
}

function updateExportLink() {
  if (!state.job) return;
  $("#export").href = jobPath(`/export?format=${$("#export-format").value}&lang=${encodeURIComponent($("#export-lang").value || "original")}`);
}

// -- routing and keys ------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/job\/([\w-]+)/);
  clearTimeout(state.pollTimer);
  $("#home").hidden = !!match;
  $("#review").hidden = !match;
  if (match) openJob(match[1]);
  else {
    state.job = null;
    $("#job-title").textContent = "";
    $("#job-state").textContent = "";
    $("#video").removeAttribute("src");
    showJobs();
  }
}

function reviewKeys(e) {
  if (!state.job || $("#review").hidden || document.querySelector("dialog[open]")) return;
  const target = e.target;
  if (target.matches("input, select") && !(target.id === "find" && (e.key === "Enter" || e.key === "Escape"))) return;
  if (target.id === "find") {
    e.preventDefault();
    if (e.key === "Enter") findNext(); else target.blur();
    return;
  }
  const id = state.selected;
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key;
  const actions = {
    ArrowDown: () => move(1), j: () => move(1), ArrowUp: () => move(-1), k: () => move(-1),
    Home: () => move(-1e9), End: () => move(1e9),
    n: () => moveToReview(1), N: () => moveToReview(-1),
    Enter: editText, e: editText,
    " ": togglePlay, p: () => playCue(id),
    "[": () => nudge(id, "start", -1), "]": () => nudge(id, "start", 1),
    "{": () => nudge(id, "end", -1), "}": () => nudge(id, "end", 1),
    s: () => split(id), m: () => merge(id), Delete: () => remove(id), x: () => remove(id),
    a: () => addAfter(id), r: () => reread(id), z: () => zoom(cueById(id)),
    u: undo, U: redo, "/": () => $("#find").focus(), f: () => $("#find").focus(),
    l: () => { $("#filter").value = state.filter = state.filter === "all" ? "review" : "all"; render(); },
    "?": () => $("#keys").showModal(),
  };
  let action = null;
  if (ctrl && (key === "z" || key === "Z")) action = e.shiftKey ? redo : undo;
  else if (ctrl && key === "y") action = redo;
  else if (!ctrl && !e.altKey) action = actions[key];
  if (!action) return;
  e.preventDefault();
  action();
}

document.addEventListener("keydown", (e) => {
  if (e.key === "?" && !e.target.matches("input, textarea, select") && !document.querySelector("dialog[open]")) {
    e.preventDefault();
    return $("#keys").showModal();
  }
  if ($("#zoom").open && (e.key === "+" || e.key === "=" || e.key === "-")) {
    e.preventDefault();
    return setZoom(Number($("#zoom-scale").value) + (e.key === "-" ? -0.5 : 0.5));
  }
  reviewKeys(e);
});

async function main() {
  try {
    state.settings = await api("GET", "/api/settings");
  } catch (error) {
    toast(error.message);
    return;
  }
  const engines = state.settings.engines.map((name) => el("option", { value: name }, name));
  $("#opt-engine").replaceChildren(el("option", { value: "" }, `default (${state.settings.default_engine})`), ...engines.map((o) => o.cloneNode(true)));
  $("#reread-engine").replaceChildren(el("option", { value: "" }, "the job's engine"), ...engines);
  if (state.settings.media_roots.length) {
    $("#media").hidden = false;
    browse("");
  }
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  $("#file").addEventListener("change", (e) => e.target.files.length && upload(e.target.files[0]));
  $("#keys-button").onclick = () => $("#keys").showModal();
  $("#filter").onchange = (e) => { state.filter = e.target.value; render(); };
  $("#undo").onclick = undo;
  $("#redo").onclick = redo;
  $("#replace-all").onclick = replaceAll;
  $("#export-format").onchange = updateExportLink;
  $("#export-lang").onchange = updateExportLink;
  $("#edge-start").onclick = () => { state.edge = "start"; showBoundary(); };
  $("#edge-end").onclick = () => { state.edge = "end"; showBoundary(); };
  $("#reread").onclick = () => reread(state.selected);
  $("#cancel").onclick = () => api("POST", jobPath("/cancel")).then((job) => { state.job = job; showJobState(); }, (e) => toast(e.message));
  $("#video").addEventListener("timeupdate", onTime);
  $("#video").addEventListener("seeked", onTime);
  $("#zoom-scale").oninput = (e) => setZoom(Number(e.target.value));
  $(".zoom-view").addEventListener("wheel", (e) => {
    e.preventDefault();
    setZoom(Number($("#zoom-scale").value) * (e.deltaY < 0 ? 1.15 : 1 / 1.15));
  }, { passive: false });
  $("#zoom").addEventListener("click", (e) => e.target === $("#zoom") && $("#zoom").close());
  window.addEventListener("hashchange", route);
  route();
}

main();
