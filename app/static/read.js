// convlens page, "read a photo": every number on a page with its digits' boxes (POST /v1/read).
// Clicking a digit sends its crop of the photo through the single-digit view (analyse, app.js).
"use strict";

(() => {
  const canvas = $("read-canvas");
  const g = canvas.getContext("2d");
  let photo = null, reading = null, scale = 1, file = null;

  function draw(selected) {
    canvas.width = Math.round(photo.width * scale);
    canvas.height = Math.round(photo.height * scale);
    g.drawImage(photo, 0, 0, canvas.width, canvas.height);
    g.lineWidth = 2;
    g.font = "bold 14px system-ui, sans-serif";
    reading.numbers.forEach((n, i) => n.digits.forEach((d, j) => {
      const [x0, y0, x1, y1] = d.box.map((v) => v * scale);
      g.strokeStyle = selected && selected[0] === i && selected[1] === j ? "#f59e0b" : "#dc2626";
      g.strokeRect(x0, y0, x1 - x0, y1 - y0);
      g.fillStyle = "#dc2626";
      g.fillText(String(d.digit), x0, Math.max(12, y0 - 3));
    }));
  }

  async function read(f) {
    file = f;
    $("read-status").textContent = "Reading…";
    document.body.dataset.reading = "1";
    const form = new FormData();
    form.append("file", f, f.name || "photo");
    try {
      const r = await fetch(q("/v1/read"), { method: "POST", body: form });
      const body = await r.json().catch(() => null);
      if (!r.ok) {
        $("read-status").textContent = `Could not read the photo: ${body && body.error ? body.error.message : r.status}`;
        return;
      }
      reading = body;
      // the photo as the server saw it: the browser applies EXIF orientation as the server does
      photo = await createImageBitmap(f, { imageOrientation: "from-image" });
      scale = Math.min(1, 960 / photo.width);
      $("read-empty").hidden = true;
      canvas.hidden = false;
      draw(null);
      const count = body.numbers.length;
      $("read-status").textContent = count ?
        `${count} number${count > 1 ? "s" : ""} read in ${Math.round(body.timing.total_ms)} ms` +
        (body.truncated ? " (the page had more ink than one request reads; this is part of it)" : "") :
        "No numbers found in this photo.";
      $("read-numbers").replaceChildren(...body.numbers.map((n, i) => {
        const li = document.createElement("li");
        const text = document.createElement("span");
        text.className = "number";
        text.textContent = n.text;
        li.append(text, ` (${(100 * n.confidence).toFixed(0)}%) `);
        n.digits.forEach((d, j) => {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = String(d.digit);
          b.title = `digit ${j + 1} of ${n.text}: ${d.digit} (${(100 * d.confidence).toFixed(0)}%); show it inside the network`;
          b.addEventListener("click", () => inspect(i, j));
          li.append(b);
        });
        return li;
      }));
    } catch (e) {
      $("read-status").textContent = `Could not reach the server: ${e.message}`;
    } finally {
      document.body.dataset.reading = "0";
    }
  }

  // a digit's crop (with a margin, on the photo's own pixels) through the single-digit view
  function inspect(i, j) {
    const [x0, y0, x1, y1] = reading.numbers[i].digits[j].box;
    const m = Math.round(0.2 * Math.max(x1 - x0, y1 - y0));
    const left = Math.max(0, x0 - m), top = Math.max(0, y0 - m);
    const w = Math.min(photo.width, x1 + m) - left, h = Math.min(photo.height, y1 + m) - top;
    const crop = document.createElement("canvas");
    crop.width = w;
    crop.height = h;
    crop.getContext("2d").drawImage(photo, left, top, w, h, 0, 0, w, h);
    draw([i, j]);
    crop.toBlob((blob) => {
      resetPad();
      const s = Math.min(pad.width / w, pad.height / h);
      ctx.drawImage(crop, (pad.width - w * s) / 2, (pad.height - h * s) / 2, w * s, h * s);
      dirty = false;
      analyse(blob, "image/png");
    }, "image/png");
  }

  canvas.addEventListener("click", (ev) => {
    if (!reading) return;
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (canvas.width / r.width) / scale;
    const y = (ev.clientY - r.top) * (canvas.height / r.height) / scale;
    reading.numbers.forEach((n, i) => n.digits.forEach((d, j) => {
      if (x >= d.box[0] && x < d.box[2] && y >= d.box[1] && y < d.box[3]) inspect(i, j);
    }));
  });
  $("read-file").addEventListener("change", (ev) => {
    if (ev.target.files[0]) read(ev.target.files[0]);
    ev.target.value = "";
  });
  const drop = $("read-drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("dragover"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragover"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("dragover");
    if (ev.dataTransfer.files[0]) read(ev.dataTransfer.files[0]);
  });
  $("model").addEventListener("change", () => { if (file) read(file); });
  document.body.dataset.reading = "0";
})();
