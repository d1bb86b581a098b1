// Tunnel crack map: Leaflet with a simple CRS, 1 unit = 1 m; lat = -arc so the arc grows downwards.
(function () {
  const form = document.getElementById("map-filters");
  if (!form) return;
  const COLORS = JSON.parse(document.getElementById("severity-colours").textContent);
  const map = L.map("map", { crs: L.CRS.Simple, minZoom: -6, maxZoom: 12, zoomSnap: 0.25, preferCanvas: true });
  const renderer = L.canvas({ padding: 0.5, tolerance: 4 });
  const footprintLayer = L.layerGroup().addTo(map);
  const crackLayer = L.layerGroup().addTo(map);
  const lines = [];
  let fitted = false;

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
      line.bindTooltip(`${crack.length_mm.toFixed(0)} mm long · ${crack.width_mm.toFixed(2)} mm wide · ${crack.orientation}${growth}`, { sticky: true });
      line.on("click", () => { window.location = `/cracks/${crack.id}/`; });
      line.addTo(crackLayer);
      lines.push(line);
    }
    document.getElementById("map-count").textContent = data.cracks.length;
    status.textContent = `inspection of ${data.date}`;
    if (!fitted && bounds.length) { map.fitBounds(bounds, { padding: [20, 20] }); fitted = true; }
    if (!bounds.length) map.setView([0, 0], 0);
  }

  map.on("zoomend", () => { for (const line of lines) line.setStyle({ weight: weightFor(line.crackWidth) }); });
  form.addEventListener("change", (event) => { if (event.target.id === "f-run") fitted = false; load(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  window.crackMap = map;  // for tests and debugging
  load();
})();
