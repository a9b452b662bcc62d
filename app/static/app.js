// convlens page: draw or upload a digit, show what the CNN sees. Uses only the public API.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const PEN = 18; // px on the 280 px canvas: about MNIST's stroke width after scaling to 20 px
let drawing = false, dirty = false, last = null, timer = null, seq = 0, inflight = null;

function resetPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * (pad.width / r.width), (ev.clientY - r.top) * (pad.height / r.height)];
}

function stroke(from, to) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = PEN;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...from);
  ctx.lineTo(...to);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (ev) => {
  drawing = true;
  pad.setPointerCapture(ev.pointerId);
  last = point(ev);
  stroke(last, last);
  dirty = true;
  schedule();
});
pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  const p = point(ev);
  stroke(last, p);
  last = p;
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; schedule(0); } });
}

$("clear").addEventListener("click", () => {
  resetPad();
  showError(null);
  $("digit").textContent = "?";
  $("confidence").textContent = "draw something";
  renderBars(null);
  $("maps").replaceChildren();
  $("seen-img").removeAttribute("src");
  $("why").hidden = true;
  $("shifts").replaceChildren();
  lastBlob = null;
});

// debounced: predict while drawing, at most every 200 ms
// busy stays "1" from the first stroke until the answer for the last one is shown: an older
// answer landing while the newest drawing is still being encoded must not clear it
let encoding = false;
function schedule(delay = 200) {
  document.body.dataset.busy = "1"; // lets tests (and styles) know an answer is on its way
  clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    if (!dirty) { settle(seq); return; }
    encoding = true;
    pad.toBlob((b) => { encoding = false; analyse(b, "image/png"); }, "image/png");
  }, delay);
}

function settle(mine) {
  if (mine === seq && timer === null && !encoding) document.body.dataset.busy = "0";
}

$("file").addEventListener("change", (ev) => {
  const f = ev.target.files[0];
  if (f) useFile(f);
  ev.target.value = "";
});
pad.addEventListener("dragover", (ev) => { ev.preventDefault(); pad.classList.add("dragover"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragover"));
pad.addEventListener("drop", (ev) => {
  ev.preventDefault();
  pad.classList.remove("dragover");
  const f = ev.dataTransfer.files[0];
  if (f) useFile(f);
});

function useFile(file) {
  // show the picture on the pad, but send the original bytes: the server does the preprocessing
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    resetPad();
    const s = Math.min(pad.width / img.width, pad.height / img.height);
    ctx.drawImage(img, (pad.width - img.width * s) / 2, (pad.height - img.height * s) / 2, img.width * s, img.height * s);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
  dirty = false;
  analyse(file, file.type || "application/octet-stream");
}

// the network chosen in the switch; every request names it
let models = [];
const current = () => $("model").value || "shipped";
const q = (path, extra = "") => `${path}?model=${encodeURIComponent(current())}${extra}`;
let lastBlob = null;

async function analyse(blob, type) {
  lastBlob = blob;
  const mine = ++seq;
  document.body.dataset.busy = "1";
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const form = new FormData();
  form.append("file", blob, "digit");
  try {
    const r = await fetch(q("/v1/feature-maps", "&png=true&values=false"), { method: "POST", body: form, signal: inflight.signal });
    const body = await r.json().catch(() => null);
    if (mine !== seq) return; // a newer drawing is on its way
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : `the server answered ${r.status}`;
      showError(`Could not analyse the image: ${msg}`);
      return;
    }
    showError(null);
    render(body);
    await Promise.all([explainDigit(blob, body.prediction, mine), shiftPanel(blob, mine)]);
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(`Could not reach the server: ${e.message}`);
  } finally {
    settle(mine);
  }
}

function showError(text) {
  const el = $("error");
  el.hidden = !text;
  el.textContent = text || "";
}

function renderBars(probs) {
  const bars = $("bars");
  if (!bars.children.length) {
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct">–</span>`;
      bars.append(li);
    }
  }
  const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
  [...bars.children].forEach((li, d) => {
    const p = probs ? probs[d] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = probs ? `${(100 * p).toFixed(1)}%` : "–";
    li.classList.toggle("top", d === top);
    li.setAttribute("aria-label", `digit ${d}: ${probs ? (100 * p).toFixed(1) : 0} percent`);
  });
}

const shapeText = (s) => s.join("×");

// what the verdict network says, in words; "digit" needs none
const VERDICT_NOTES = {
  not_a_digit: () => "That does not look like a digit. The guess above is what the network would say if it had to.",
  several_digits: (p) =>
    (p.reading ? `I see several digits: ${p.reading}.` : "I see several digits.") +
    " This panel reads one digit at a time; \"Read a photo\" below reads them all, with their boxes.",
};

function showVerdict(p) {
  const note = $("verdict-note");
  const text = VERDICT_NOTES[p.verdict] ? VERDICT_NOTES[p.verdict](p) : "";
  note.hidden = !text;
  note.textContent = text;
  note.dataset.verdict = p.verdict || "";
  $("verdict").classList.toggle("doubtful", Boolean(text));
}

function render(body) {
  const p = body.prediction;
  $("digit").textContent = p.digit;
  $("confidence").textContent = `${(100 * p.confidence).toFixed(1)}% sure`;
  showVerdict(p);
  renderBars(p.probabilities);
  $("seen-img").src = body.input_image.png;
  $("walk").textContent = body.layers.length
    ? "input 1×28×28 → " + body.layers.map((l) => `${l.name} ${shapeText(l.shape)}`).join(" → ")
    : "input 1×28×28 → flatten 784 → dense layers: this network has no conv or pool layers, so no feature maps to show.";
  const maps = $("maps");
  maps.replaceChildren(...body.layers.map(layerFigure));
}

function layerFigure(layer) {
  const fig = document.createElement("figure");
  fig.className = "layer";
  fig.dataset.layer = layer.name;
  const cap = document.createElement("figcaption");
  cap.innerHTML = `${layer.name} <span class="shape">${layer.type} · ${shapeText(layer.shape)}</span>`;
  const img = document.createElement("img");
  img.src = layer.png;
  img.alt = `${layer.shape[0]} feature maps of ${layer.name}, each ${layer.shape[1]}×${layer.shape[2]}`;
  img.tabIndex = 0;
  img.addEventListener("click", (ev) => zoom(layer, img, ev));
  img.addEventListener("keydown", (ev) => { if (ev.key === "Enter") zoom(layer, img, null); });
  fig.append(cap, img);
  return fig;
}

// The PNG grid layout is documented by the API: tiles upscaled by floor(112 / side), 2 px gaps,
// ceil(sqrt(C)) columns. Clicking maps back to the channel; the tile is cut out and enlarged.
function zoom(layer, img, ev) {
  const [c, h, w] = layer.shape;
  const k = Math.max(1, Math.floor(112 / Math.max(h, w)));
  const cols = Math.ceil(Math.sqrt(c));
  const tw = w * k + 2, th = h * k + 2;
  let ch = 0;
  if (ev) {
    const r = img.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (img.naturalWidth / r.width);
    const y = (ev.clientY - r.top) * (img.naturalHeight / r.height);
    ch = Math.min(c - 1, Math.floor(y / th) * cols + Math.min(cols - 1, Math.floor(x / tw)));
  }
  const canvas = $("zoom-canvas");
  const z = canvas.getContext("2d");
  z.imageSmoothingEnabled = false;
  z.clearRect(0, 0, canvas.width, canvas.height);
  z.drawImage(img, (ch % cols) * tw, Math.floor(ch / cols) * th, w * k, h * k, 0, 0, canvas.width, canvas.height);
  $("zoom-title").textContent = `${layer.name}, channel ${ch + 1} of ${c} (${h}×${w})`;
  $("zoom").showModal();
}

function post(path, blob) {
  const form = new FormData();
  form.append("file", blob, "digit");
  return fetch(path, { method: "POST", body: form, signal: inflight.signal });
}

// "why": the pixels that counted, over the input; Grad-CAM for CNNs, occlusion for the MLP
async function explainDigit(blob, prediction, mine) {
  const card = models.find((m) => m.name === current());
  const method = card && card.filter_layers.length ? "gradcam" : "occlusion";
  const r = await post(q("/v1/explain.png", `&method=${method}`), blob);
  if (mine !== seq || !r.ok) return;
  const url = URL.createObjectURL(await r.blob());
  const img = $("why-img");
  img.onload = () => URL.revokeObjectURL(url);
  img.src = url;
  $("why-caption").textContent =
    `Why ${prediction.digit}? Bright pixels counted most for it (${method === "gradcam" ?
      "Grad-CAM on the last conv block" : "occlusion: the probability falls most when they are hidden"}).`;
  $("why").hidden = false;
}

async function shiftPanel(blob, mine) {
  const r = await post("/v1/experiments/shift?max_shift=3", blob);
  if (mine !== seq || !r.ok) return;
  const body = await r.json();
  $("shifts").replaceChildren(...body.models.map((m) => {
    const fig = document.createElement("figure");
    fig.className = "shift-model";
    fig.dataset.model = m.model;
    const cap = document.createElement("figcaption");
    cap.textContent = `${m.model} · ${m.parameters.toLocaleString("en")} parameters`;
    const grid = document.createElement("div");
    grid.className = "shift-grid";
    const side = 2 * body.max_shift + 1;
    grid.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
    for (const s of m.shifts) {
      const cell = document.createElement("span");
      cell.textContent = s.digit;
      cell.title = `moved ${s.dx} px right, ${s.dy} px down: ${s.digit} (${(100 * s.confidence).toFixed(0)}%)`;
      if (s.digit !== m.digit) cell.classList.add("changed");
      if (s.dx === 0 && s.dy === 0) cell.classList.add("centre");
      grid.append(cell);
    }
    const note = document.createElement("p");
    note.textContent = `${(100 * m.stable).toFixed(0)}% of shifts keep ${m.digit}.` + (m.mean_pool_cosine == null ? "" :
      ` Likeness to the unmoved maps: first conv ${m.mean_conv_cosine.toFixed(2)}, last pool ${m.mean_pool_cosine.toFixed(2)}.`);
    fig.append(cap, grid, note);
    return fig;
  }));
}

async function loadModels() {
  const r = await fetch("/v1/models");
  if (!r.ok) throw new Error(`the server answered ${r.status}`);
  const body = await r.json();
  models = body.models;
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name} (${m.parameters.toLocaleString("en")} parameters)`, m.name, m.name === body.default, m.name === body.default)));
  $("compare").querySelector("tbody").replaceChildren(...models.map((m) => {
    const tr = document.createElement("tr");
    const walk = m.layers.filter((l) => l.type !== "Dropout").map((l) => l.name).join(" → ");
    const acc = m.test_accuracy == null ? "–" : `${(100 * m.test_accuracy).toFixed(2)}%`;
    for (const v of [m.name, walk, acc, m.parameters.toLocaleString("en")]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
}

$("model").addEventListener("change", () => {
  loadCard();
  if (lastBlob) analyse(lastBlob, lastBlob.type);
});

async function loadCard() {
  try {
    const r = await fetch(q("/v1/model"));
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const card = await r.json();
    const acc = card.test_accuracy == null ? "not measured" : `${(100 * card.test_accuracy).toFixed(2)}%`;
    $("model-note").textContent = card.description || "";
    $("card-summary").textContent =
      `${card.name}: version ${card.version} · ${card.parameters.toLocaleString("en")} parameters · ` +
      `MNIST test accuracy ${acc} on 10,000 images · predicts in ${card.serving_precision}`;
    const first = card.layers.find((l) => card.filter_layers.includes(l.name));
    $("filters").hidden = !first;
    if (first) {
      $("filters-img").src = q(`/v1/model/filters/${first.name}.png`);
      $("filters-caption").textContent =
        `The ${first.output_shape[0]} learned 3×3 filters of ${first.name}: each slides over the image ` +
        "and answers how much a patch looks like it (red: positive weights, blue: negative). " +
        "Edge detectors show up as a red side next to a blue side.";
      $("filters").hidden = false;
    }
    $("layers").querySelector("tbody").replaceChildren(...card.layers.map((l) => {
      const tr = document.createElement("tr");
      for (const v of [l.name, l.type, shapeText(l.output_shape), l.parameters.toLocaleString("en")]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }));
  } catch (e) {
    $("card-summary").textContent = `Could not load the model card: ${e.message}`;
  }
}

resetPad();
renderBars(null);
loadModels().catch((e) => showError(`Could not list the models: ${e.message}`)).finally(loadCard);
document.body.dataset.busy = "0";
