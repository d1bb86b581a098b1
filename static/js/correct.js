// Mask editor: the photo in OpenSeadragon, the mask as a full-resolution canvas overlay.
// Tools: brush, eraser, polyline of a chosen width (image pixels); every edit is an
// operation replayed over the starting mask, so undo and redo cost no image copies.
// Saving sends the mask as a PNG (white crack on black) and the server keeps a new version.
(function () {
  const el = document.getElementById("editor");
  if (!el || typeof OpenSeadragon === "undefined") return;
  const W = +el.dataset.width, H = +el.dataset.height;
  const status = document.getElementById("editor-status");
  const say = (text) => (status.textContent = text);
  const source = el.dataset.kind === "dzi" ? el.dataset.photo : { type: "image", url: el.dataset.photo, buildPyramid: false };
  const viewer = OpenSeadragon({
    element: el, prefixUrl: el.dataset.prefix, showNavigator: true, maxZoomPixelRatio: 8,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false }, tileSources: [source],
  });

  const canvas = document.createElement("canvas");
  canvas.width = W; canvas.height = H;
  canvas.className = "mask-canvas";
  canvas.style.width = "100%"; canvas.style.height = "100%";
  const ctx = canvas.getContext("2d");
  const base = document.createElement("canvas"); // the starting mask, red on transparent
  base.width = W; base.height = H;
  const ops = [], undone = [];
  let tool = "pan", current = null;

  function toRed(img) {
    const c = base.getContext("2d");
    c.drawImage(img, 0, 0, W, H);
    const data = c.getImageData(0, 0, W, H), px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const on = px[i] > 127;
      px[i] = 255; px[i + 1] = 0; px[i + 2] = 0; px[i + 3] = on ? 255 : 0;
    }
    c.putImageData(data, 0, 0);
  }

  function stroke(op) {
    ctx.save();
    ctx.globalCompositeOperation = op.tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "rgb(255,0,0)";
    ctx.lineWidth = op.width; ctx.lineCap = ctx.lineJoin = "round";
    const [first, ...rest] = op.points;
    ctx.beginPath();
    ctx.moveTo(first.x, first.y);
    if (!rest.length) ctx.lineTo(first.x + 0.01, first.y);
    for (const p of rest) ctx.lineTo(p.x, p.y);
    ctx.stroke();
    ctx.restore();
  }

  function redraw() {
    ctx.clearRect(0, 0, W, H);
    ctx.drawImage(base, 0, 0);
    ops.forEach(stroke);
    if (current) stroke(current);
    document.getElementById("undo").disabled = !ops.length;
    document.getElementById("redo").disabled = !undone.length;
    document.getElementById("finish-line").disabled = !(current && current.tool === "line");
  }

  viewer.addOnceHandler("open", () => {
    viewer.addOverlay({ element: canvas, location: new OpenSeadragon.Rect(0, 0, 1, H / W) });
    canvas.style.opacity = document.getElementById("mask-opacity").value / 100;
    if (el.dataset.mask) {
      const img = new Image();
      img.onload = () => { toRed(img); redraw(); el.dataset.ready = "1"; say("Ready."); };
      img.onerror = () => { el.dataset.ready = "1"; say("Could not load the starting mask: starting empty."); };
      img.src = el.dataset.mask;
    } else {
      el.dataset.ready = "1"; say("Ready (empty mask).");
    }
  });

  function imagePoint(event) {
    const offset = OpenSeadragon.getElementPosition(viewer.element);
    const pixel = OpenSeadragon.getMousePosition(event).minus(offset);
    const p = viewer.viewport.viewerElementToImageCoordinates(pixel);
    return { x: p.x, y: p.y };
  }
  const width = () => Math.max(1, +document.getElementById("tool-width").value || 1);

  function choose(name) {
    finishLine();
    tool = name;
    document.querySelectorAll(".tool").forEach((b) => b.setAttribute("aria-pressed", String(b.id === "tool-" + name)));
    viewer.setMouseNavEnabled(name === "pan");
    el.classList.toggle("drawing", name !== "pan");
  }
  ["pan", "brush", "eraser", "line"].forEach((name) => document.getElementById("tool-" + name).addEventListener("click", () => choose(name)));

  function commit(op) { ops.push(op); undone.length = 0; }
  function finishLine() {
    if (current && current.tool === "line" && current.points.length > 1) commit(current);
    current = null;
    redraw();
  }

  viewer.element.addEventListener("pointerdown", (event) => {
    if (tool === "pan" || event.button !== 0) return;
    event.preventDefault();  // which also keeps the focus where it was: take it from a field,
    // so the keys (Ctrl+Z, Enter, b e l) act on the drawing, not on the width just typed
    if (document.activeElement && document.activeElement.matches("input, textarea, select")) document.activeElement.blur();
    const p = imagePoint(event);
    if (tool === "line") {
      // a polyline collects its points click by click and is drawn like the brush
      if (!current || current.tool !== "line") current = { tool: "line", width: width(), points: [] };
      current.points.push(p);
      redraw();
      return;
    }
    current = { tool, width: width(), points: [p] };
    viewer.element.setPointerCapture(event.pointerId);
    redraw();
  });
  viewer.element.addEventListener("pointermove", (event) => {
    if (!current || current.tool === "line") return;
    current.points.push(imagePoint(event));
    redraw();
  });
  viewer.element.addEventListener("pointerup", () => {
    if (!current || current.tool === "line") return;
    commit(current);
    current = null;
    redraw();
  });
  viewer.element.addEventListener("dblclick", (event) => { if (tool === "line") { event.preventDefault(); finishLine(); } });
  document.getElementById("finish-line").addEventListener("click", finishLine);

  function undo() { finishLine(); if (ops.length) { undone.push(ops.pop()); redraw(); } }
  function redo() { if (undone.length) { ops.push(undone.pop()); redraw(); } }
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("redo").addEventListener("click", redo);
  document.getElementById("mask-opacity").addEventListener("input", (e) => (canvas.style.opacity = e.target.value / 100));
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, textarea, select")) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); event.shiftKey ? redo() : undo(); }
    else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "y") { event.preventDefault(); redo(); }
    else if (event.key === "Enter") finishLine();
    else if (event.key === "b") choose("brush");
    else if (event.key === "e") choose("eraser");
    else if (event.key === "l") choose("line");
    else if (event.key === "Escape") { current = null; redraw(); }
  });

  function maskBlob() {
    const out = document.createElement("canvas");
    out.width = W; out.height = H;
    const c = out.getContext("2d");
    const data = ctx.getImageData(0, 0, W, H), px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const v = px[i + 3] > 127 ? 255 : 0;
      px[i] = px[i + 1] = px[i + 2] = v; px[i + 3] = 255;
    }
    c.putImageData(data, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  document.getElementById("save").addEventListener("click", async () => {
    finishLine();
    say("Saving…");
    const body = new FormData();
    body.append("mask", await maskBlob(), "mask.png");
    const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    try {
      const response = await fetch(el.dataset.save, { method: "POST", body, headers: { "X-CSRFToken": token } });
      const result = await response.json();
      if (!response.ok) throw new Error(result.error || response.statusText);
      el.dataset.saved = String(result.version);
      say(`Saved as verified version ${result.version} (${result.crack_pixels} crack pixels); the cracks are being measured from it.`);
    } catch (err) {
      say("Not saved: " + err.message);
    }
  });
})();
