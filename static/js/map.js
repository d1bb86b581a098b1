// Tunnel crack map: Leaflet with a simple CRS, 1 unit = 1 m; lat = -arc so the arc grows downwards.
// Drawn like an engineering drawing: a chainage/arc grid labelled in engineering form
// (0+400.030), a scale bar, a cursor read-out, zoom limits around the lining, and the
// filters and the view kept in the address so a reload or a shared link shows the same map.
(function () {
  const form = document.getElementById("map-filters");
  if (!form) return;
  // chainage as tunnel engineers write it: 400.03 m → "0+400.030"
  const chainage = (m, decimals = 3) => {
    const scale = Math.pow(10, decimals), total = Math.round(Math.abs(m) * scale) / scale;
    const km = Math.floor(total / 1000);
    const rest = (total - km * 1000).toFixed(decimals).padStart(4 + decimals, "0");
    return (m < 0 && total > 0 ? "-" : "") + km + "+" + rest;
  };
  window.formatChainage = chainage;
  const niceStep = (metres) => {
    const k = Math.pow(10, Math.floor(Math.log10(metres)));
    return [1, 2, 5, 10].map((f) => f * k).find((v) => v >= metres);
  };
  const params = new URLSearchParams(window.location.search);
  const COLORS = JSON.parse(document.getElementById("severity-colours").textContent);
  const map = L.map("map", { crs: L.CRS.Simple, minZoom: -6, maxZoom: 12, zoomSnap: 0.25, preferCanvas: true });
  const renderer = L.canvas({ padding: 0.5, tolerance: 4 });
  const footprintLayer = L.layerGroup().addTo(map);
  const crackLayer = L.layerGroup().addTo(map);
  // the grid lives in a pane of its own, under the cracks, and never takes the pointer
  map.createPane("grid");
  map.getPane("grid").style.zIndex = 350;
  map.getPane("grid").style.pointerEvents = "none";
  const gridRenderer = L.canvas({ pane: "grid", padding: 0.1 });
  const gridLayer = L.layerGroup().addTo(map);
  const lines = [];
  let fitted = params.has("z");

  // filters from the address (a reload or a shared link shows the same map)
  for (const name of ["severity", "orientation"]) {
    if (!params.has(name)) continue;
    const chosen = params.get(name).split(",");
    form.querySelectorAll(`input[name=${name}]`).forEach((b) => (b.checked = chosen.includes(b.value)));
  }
  for (const [id, name] of [["f-width", "min_width_mm"], ["f-from", "chainage_from_m"], ["f-to", "chainage_to_m"]]) {
    if (params.has(name)) document.getElementById(id).value = params.get(name);
  }
  if (params.get("new") === "1") document.getElementById("f-new").checked = true;
  if (params.has("run") && [...document.getElementById("f-run").options].some((o) => o.value === params.get("run"))) {
    document.getElementById("f-run").value = params.get("run");
  }
  if (params.has("z")) map.setView([-(+params.get("a") || 0), +params.get("c") || 0], +params.get("z"));

  function remember() {
    const kept = query();
    const centre = map.getCenter();
    kept.set("c", centre.lng.toFixed(3));
    kept.set("a", (-centre.lat).toFixed(3));
    kept.set("z", map.getZoom().toFixed(2));
    history.replaceState(null, "", window.location.pathname + "?" + kept.toString());
  }

  // the grid: chainage lines labelled along the top, arc lines along the left
  function drawGrid() {
    gridLayer.clearLayers();
    const view = map.getBounds(), size = map.getSize();
    const perPixel = (view.getEast() - view.getWest()) / size.x;
    const step = niceStep(perPixel * 110);
    const style = { renderer: gridRenderer, pane: "grid", color: "#9aa3b2", weight: 1, opacity: 0.5, interactive: false, dashArray: "3 4", grid: true };
    for (let x = Math.ceil(view.getWest() / step) * step; x <= view.getEast(); x += step) {
      L.polyline([[view.getSouth(), x], [view.getNorth(), x]], style).addTo(gridLayer);
      L.marker([view.getNorth(), x], { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "grid-label grid-label-x", html: chainage(x, step < 1 ? 3 : 0), iconSize: null }) }).addTo(gridLayer);
    }
    for (let y = Math.ceil(view.getSouth() / step) * step; y <= view.getNorth(); y += step) {
      L.polyline([[y, view.getWest()], [y, view.getEast()]], style).addTo(gridLayer);
      L.marker([y, view.getWest()], { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "grid-label grid-label-y", html: `${(-y).toFixed(step < 1 ? 2 : 0)} m`, iconSize: null }) }).addTo(gridLayer);
    }
  }

  // scale bar and cursor read-out, bottom left
  const info = L.control({ position: "bottomleft" });
  info.onAdd = () => {
    const box = L.DomUtil.create("div", "map-info");
    box.innerHTML = '<div class="scale-bar"><span class="bar"></span> <span id="scale-label"></span></div><div id="cursor-readout">move the pointer over the lining</div>';
    return box;
  };
  info.addTo(map);
  function drawScale() {
    const metresPerPixel = 1 / Math.pow(2, map.getZoom());
    const metres = niceStep(metresPerPixel * 100);
    document.querySelector(".scale-bar .bar").style.width = `${metres / metresPerPixel}px`;
    document.getElementById("scale-label").textContent = metres >= 1 ? `${metres} m` : `${Math.round(metres * 1000)} mm`;
  }
  map.on("mousemove", (event) => {
    document.getElementById("cursor-readout").textContent =
      `chainage ${chainage(event.latlng.lng)} · arc ${(-event.latlng.lat).toFixed(3)} m`;
  });
  map.on("moveend zoomend", () => { drawGrid(); drawScale(); remember(); });

  // true scale: a crack's width in metres times pixels per metre, never thinner than visible
  const weightFor = (widthMm) => Math.max(1.5, (widthMm / 1000) * Math.pow(2, map.getZoom()));

  function query() {
    const params = new URLSearchParams();
    params.set("run", document.getElementById("f-run").value);
    for (const name of ["severity", "orientation"]) {
      const boxes = [...form.querySelectorAll(`input[name=${name}]`)];
      if (boxes.some((b) => !b.checked)) params.set(name, boxes.filter((b) => b.checked).map((b) => b.value).join(",") || "none");
    }
    for (const [id, name] of [["f-width", "min_width_mm"], ["f-from", "chainage_from_m"], ["f-to", "chainage_to_m"]]) {
      const value = document.getElementById(id).value;
      if (value !== "") params.set(name, value);
    }
    if (document.getElementById("f-new").checked) params.set("new", "1");
    return params;
  }

  async function load() {
    const status = document.getElementById("map-status");
    status.textContent = "loading…";
    const response = await fetch(form.dataset.url + "?" + query().toString());
    const data = await response.json();
    if (!response.ok) { status.textContent = data.error || "could not load the map"; return; }
    footprintLayer.clearLayers();
    crackLayer.clearLayers();
    lines.length = 0;
    const bounds = [];
    for (const [id, name, c0, c1, a0, a1] of data.footprints) {
      const rect = [[-a0, c0], [-a1, c1]];
      bounds.push(...rect);
      L.rectangle(rect, { renderer, color: "#8a94a6", weight: 1, fillOpacity: 0.06, interactive: false }).addTo(footprintLayer);
    }
    for (const crack of data.cracks) {
      const latlngs = crack.lines.map((branch) => branch.map(([ch, arc]) => [-arc, ch]));
      const line = L.polyline(latlngs, { renderer, color: COLORS[crack.severity] || "#c92a2a", weight: weightFor(crack.width_mm), opacity: 0.9 });
      line.crackWidth = crack.width_mm;
      const growth = crack.width_growth_mm_per_year === null ? "" :
        ` · growing ${crack.length_growth_mm_per_year.toFixed(0)} mm/yr long, ${crack.width_growth_mm_per_year.toFixed(3)} mm/yr wide`;
      const at = crack.lines[0] && crack.lines[0][0] ? ` · at ${chainage(crack.lines[0][0][0])}` : "";
      line.bindTooltip(`${crack.length_mm.toFixed(0)} mm long · ${crack.width_mm.toFixed(2)} mm wide · ${crack.orientation}${at}${growth}`, { sticky: true });
      line.on("click", () => { window.location = `/cracks/${crack.id}/`; });
      line.addTo(crackLayer);
      lines.push(line);
    }
    document.getElementById("map-count").textContent = data.cracks.length;
    status.textContent = `inspection of ${data.date}`;
    if (bounds.length) {
      const lining = L.latLngBounds(bounds);
      // zoom limits: never further out than the whole inspection, never off the lining
      map.setMaxBounds(lining.pad(0.5));
      map.setMinZoom(map.getBoundsZoom(lining.pad(0.5)) - 1);
      if (!fitted) { map.fitBounds(lining, { padding: [20, 20] }); fitted = true; }
    } else {
      map.setView([0, 0], 0);
    }
    drawGrid();
    drawScale();
    remember();
  }

  map.on("zoomend", () => { for (const line of lines) line.setStyle({ weight: weightFor(line.crackWidth) }); });
  form.addEventListener("change", (event) => { if (event.target.id === "f-run") fitted = false; remember(); load(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  window.crackMap = map;  // for tests and debugging
  load();
})();
