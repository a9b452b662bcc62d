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
});

// debounced: predict while drawing, at most every 200 ms
function schedule(delay = 200) {
  document.body.dataset.busy = "1"; // lets tests (and styles) know an answer is on its way
  clearTimeout(timer);
  timer = setTimeout(() => { if (dirty) pad.toBlob((b) => analyse(b, "image/png"), "image/png"); }, delay);
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

async function analyse(blob, type) {
  const mine = ++seq;
  document.body.dataset.busy = "1";
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const form = new FormData();
  form.append("file", blob, "digit");
  try {
    const r = await fetch("/v1/feature-maps?png=true&values=false", { method: "POST", body: form, signal: inflight.signal });
    const body = await r.json().catch(() => null);
    if (mine !== seq) return; // a newer drawing is on its way
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : `the server answered ${r.status}`;
      showError(`Could not analyse the image: ${msg}`);
      return;
    }
    showError(null);
    render(body);
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(`Could not reach the server: ${e.message}`);
  } finally {
    if (mine === seq) document.body.dataset.busy = "0";
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

function render(body) {
  const p = body.prediction;
  $("digit").textContent = p.digit;
  $("confidence").textContent = `${(100 * p.confidence).toFixed(1)}% sure`;
  renderBars(p.probabilities);
  $("seen-img").src = body.input_image.png;
  $("walk").textContent = "input 1×28×28 → " + body.layers.map((l) => `${l.name} ${shapeText(l.shape)}`).join(" → ");
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

async function loadCard() {
  try {
    const r = await fetch("/v1/model");
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const card = await r.json();
    const acc = card.test_accuracy == null ? "not measured" : `${(100 * card.test_accuracy).toFixed(2)}%`;
    $("card-summary").textContent =
      `Version ${card.version} · ${card.parameters.toLocaleString("en")} parameters · ` +
      `MNIST test accuracy ${acc} on 10,000 images · predicts in ${card.serving_precision}`;
    const first = card.layers.find((l) => l.type === "Conv2d");
    if (first) {
      $("filters-img").src = `/v1/model/filters/${first.name}.png`;
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
loadCard();
document.body.dataset.busy = "0";
