// Image page: deep-zoom viewer (OpenSeadragon) with the crack overlay as a second layer,
// opacity and on/off, selectable crack outlines, and arrow keys for the previous/next image.
(function () {
  const el = document.getElementById("viewer");
  if (el && typeof OpenSeadragon !== "undefined") {
    const source = (url) => (el.dataset.kind === "dzi" ? url : { type: "image", url, buildPyramid: false });
    const viewer = OpenSeadragon({
      element: el, prefixUrl: el.dataset.prefix, showNavigator: true, maxZoomPixelRatio: 4,
      gestureSettingsMouse: { clickToZoom: false }, crossOriginPolicy: false,
      tileSources: [source(el.dataset.photo)],
    });
    window.surveyViewer = viewer;
    const toggle = document.getElementById("overlay-toggle");
    const opacity = document.getElementById("overlay-opacity");
    let overlayItem = null;
    const apply = () => { if (overlayItem) overlayItem.setOpacity(toggle.checked ? opacity.value / 100 : 0); };
    viewer.addOnceHandler("open", () => {
      if (el.dataset.overlay) {
        viewer.addTiledImage({ tileSource: source(el.dataset.overlay), success: (e) => { overlayItem = e.item; apply(); el.dataset.overlayReady = "1"; } });
      }
      addOutlines(viewer);
    });
    toggle.addEventListener("change", apply);
    opacity.addEventListener("input", apply);
    window.overlayOpacity = () => (overlayItem ? overlayItem.getOpacity() : null);
  }

  function addOutlines(viewer) {
    const boxes = JSON.parse(document.getElementById("crack-boxes").textContent);
    const outlineToggle = document.getElementById("outline-toggle");
    const width = +el.dataset.width, height = +el.dataset.height;
    for (const { id, bbox, label, severity, rejected } of boxes) {
      const box = document.createElement("button");
      box.className = `crack-box severity-${severity}` + (rejected ? " rejected" : "");
      box.type = "button";
      box.dataset.crack = id;
      box.setAttribute("aria-label", `Select crack ${label}`);
      const tag = document.createElement("span");
      tag.className = "crack-box-label";
      tag.textContent = label;
      box.appendChild(tag);
      // hovering an outline lights its table row, and the other way round
      box.addEventListener("mouseenter", () => hover(id, true));
      box.addEventListener("mouseleave", () => hover(id, false));
      // OpenSeadragon's own tracker takes pointer events inside the viewer: listen through it
      new OpenSeadragon.MouseTracker({ element: box, clickHandler: () => select(id) });
      box.addEventListener("keydown", (event) => { if (event.key === "Enter") select(id); });
      // a little room around the crack, but never past the image's edge
      const pad = 6;
      const x0 = Math.max(0, bbox[0] - pad), y0 = Math.max(0, bbox[1] - pad);
      const x1 = Math.min(width, bbox[2] + pad), y1 = Math.min(height, bbox[3] + pad);
      box.classList.toggle("label-inside", y0 < 20);
      viewer.addOverlay({ element: box, location: new OpenSeadragon.Rect(x0 / width, y0 / width, (x1 - x0) / width, (y1 - y0) / width) });
    }
    document.querySelectorAll("#cracks tbody tr").forEach((row) => {
      row.addEventListener("mouseenter", () => hover(row.dataset.crack, true));
      row.addEventListener("mouseleave", () => hover(row.dataset.crack, false));
    });
    if (selected) select(selected);  // the outlines came after the page chose a crack
    outlineToggle.addEventListener("change", () => document.querySelectorAll(".crack-box").forEach((b) => (b.hidden = !outlineToggle.checked)));
    document.querySelectorAll("#cracks tbody tr").forEach((row) => row.addEventListener("click", () => select(row.dataset.crack)));
  }

  function hover(id, on) {
    document.querySelectorAll(`.crack-box[data-crack="${id}"], #cracks tbody tr[data-crack="${id}"]`).forEach((node) => node.classList.toggle("hover", on));
  }

  // the crack picked by a click, the arrows, or the page (?crack=ID: the next one to review)
  let selected = new URLSearchParams(window.location.search).get("crack");
  function select(id) {
    selected = id;
    document.querySelectorAll(".crack-box, #cracks tbody tr").forEach((node) => node.classList.toggle("selected", node.dataset.crack === String(id)));
  }
  if (selected) {
    select(selected);
    const row = document.querySelector(`#cracks tbody tr[data-crack="${selected}"]`);
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  // review shortcuts on the selected crack: a accept; j joint, f formwork, e edge, s stain,
  // c cable, o other (reject with that reason); ↓ ↑ select the next / previous crack
  const REASONS = { j: "joint", f: "formwork", e: "edge", s: "stain", c: "cable", o: "other" };
  function review(decision, reason) {
    const row = document.querySelector("#cracks tbody tr.selected");
    const form = row && row.querySelector("form.review");
    if (!form) return;
    form.querySelector("[name=decision]").value = decision;
    form.querySelector("[name=reason]").value = reason || "";
    form.submit();
  }
  function step(delta) {
    const rows = [...document.querySelectorAll("#cracks tbody tr")];
    const at = rows.findIndex((r) => r.classList.contains("selected"));
    const next = rows[Math.min(rows.length - 1, Math.max(0, at + delta))];
    if (next) select(next.dataset.crack);
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "a") return review("accepted");
    if (REASONS[event.key]) return review("rejected", REASONS[event.key]);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      return step(event.key === "ArrowDown" ? 1 : -1);
    }
    const link = document.getElementById(event.key === "ArrowLeft" ? "prev-image" : event.key === "ArrowRight" ? "next-image" : "");
    if (link) window.location = link.href;
  });
})();
