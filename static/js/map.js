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
  // names typed by users (lining zones) go into HTML only escaped
  const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
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
  // survey photos under everything at close zoom; the ring band and ring/segment lines above the grid
  map.createPane("photos");
  map.getPane("photos").style.zIndex = 300;
  map.getPane("photos").style.pointerEvents = "none";
  const photoLayer = L.layerGroup().addTo(map);
  const ringLayer = L.layerGroup().addTo(map);
  const ringRenderer = L.canvas({ pane: "grid", padding: 0.1 });
  const bandRenderer = L.canvas({ padding: 0.2 });
  const lines = [];
  let fitted = params.has("z");
  let data = null;
  let ringCache = { run: null, rings: null };  // per inspection: rings ignore the filters
  const extent = { arcMin: 0, arcMax: 1 };  // the surveyed arc (m), from the footprints
  const shownPhotos = new Map();  // image id → overlay of the level shown

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

  // rings (vertical lines labelled R12 along the bottom), segment joints, lining zones on the
  // right, and the condition band: one cell per ring above the lining, coloured by state
  const STATE_COLOURS = {};
  function drawRings() {
    ringLayer.clearLayers();
    const rings = data && data.rings;
    if (!rings || !rings.rings.length) return;
    const view = map.getBounds(), size = map.getSize();
    const pxPerM = size.x / (view.getEast() - view.getWest());
    const ringPx = rings.ring_length_m * pxPerM;
    // ring lines span the surveyed arc; the band sits just above it
    const top = extent.arcMin, bottom = extent.arcMax, span = Math.max(bottom - top, 1e-3);
    const first = rings.rings[0], last = rings.rings[rings.rings.length - 1];
    const bandTop = top - span * 0.12, bandBottom = top - span * 0.03;
    const labelEvery = Math.max(1, Math.ceil(34 / Math.max(ringPx, 1e-6)));
    for (const ring of rings.rings) {
      if (ring.chainage_to_m < view.getWest() || ring.chainage_from_m > view.getEast()) continue;
      const cell = L.rectangle([[-bandTop, ring.chainage_from_m], [-bandBottom, ring.chainage_to_m]], {
        renderer: bandRenderer, color: "#fff", weight: ringPx > 6 ? 1 : 0, fillColor: STATE_COLOURS[ring.state] || "#888", fillOpacity: 0.85,
      });
      cell.bindTooltip(`ring ${ring.ring} · ${ring.state} · ${ring.n_cracks} crack(s)`, { sticky: true });
      cell.on("click", (event) => { L.DomEvent.stop(event); showCell(ring); });
      cell.addTo(ringLayer);
      if (ringPx >= 6) {
        L.polyline([[-bandBottom, ring.chainage_from_m], [-bottom, ring.chainage_from_m]],
          { renderer: ringRenderer, pane: "grid", color: "#5c6b80", weight: 1, opacity: 0.45, interactive: false, grid: true }).addTo(ringLayer);
      }
      if (ring.ring % labelEvery === 0 || labelEvery === 1) {
        L.marker([-bandTop, (ring.chainage_from_m + ring.chainage_to_m) / 2], { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "label-anchor", html: `<span class="grid-label ring-label">R${ring.ring}</span>`, iconSize: null }) }).addTo(ringLayer);
      }
    }
    const west = Math.max(view.getWest(), first.chainage_from_m), east = Math.min(view.getEast(), last.chainage_to_m);
    if (rings.segments_per_ring && ringPx >= 6) {
      for (let s = 1; s < rings.segments_per_ring; s++) {
        const arc = data.circumference_m * s / rings.segments_per_ring;
        if (arc <= top || arc >= bottom) continue;
        L.polyline([[-arc, west], [-arc, east]], { renderer: ringRenderer, pane: "grid", color: "#5c6b80", weight: 1, opacity: 0.45, interactive: false, grid: true }).addTo(ringLayer);
      }
    }
    for (const zone of rings.zones) {
      if (zone.arc_to_m <= top || zone.arc_from_m >= bottom) continue;
      const mid = (Math.max(zone.arc_from_m, top) + Math.min(zone.arc_to_m, bottom)) / 2;
      if (-mid > view.getNorth() || -mid < view.getSouth()) continue;
      L.marker([-mid, view.getEast()], { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "label-anchor", html: `<span class="grid-label zone-label">${escapeHtml(zone.name)}</span>`, iconSize: null }) }).addTo(ringLayer);
      if (zone.arc_from_m > top && zone.arc_from_m < bottom) {
        L.polyline([[-zone.arc_from_m, west], [-zone.arc_from_m, east]], { renderer: ringRenderer, pane: "grid", color: "#7b61ff", weight: 1, opacity: 0.35, dashArray: "8 6", interactive: false, grid: true }).addTo(ringLayer);
      }
    }
  }

  // the ring or segment under a click, and its cracks, in the side panel
  function cellAt(latlng) {
    const rings = data && data.rings;
    if (!rings) return null;
    const ring = rings.rings.find((r) => r.chainage_from_m <= latlng.lng && latlng.lng < r.chainage_to_m);
    if (!ring) return null;
    const arc = -latlng.lat;
    return ring.segments.find((s) => s.arc_from_m <= arc && arc < s.arc_to_m) || ring;
  }
  function showCell(cell) {
    const panel = document.getElementById("ring-panel");
    if (!panel || !cell) return;
    // the cell's cracks among those drawn (the filters apply): a point or a midpoint inside
    const inside = ([c, a]) => cell.chainage_from_m <= c && c < cell.chainage_to_m && cell.arc_from_m <= a && a < cell.arc_to_m;
    const rows = data.cracks.filter((crack) => crack.lines.some((branch) => branch.some((p, i) =>
      inside(p) || (i > 0 && inside([(p[0] + branch[i - 1][0]) / 2, (p[1] + branch[i - 1][1]) / 2])))));
    const hidden = Math.max(0, cell.n_cracks - rows.length);
    const name = cell.segment ? `Ring ${cell.ring}, segment ${cell.segment}` : `Ring ${cell.ring}`;
    panel.hidden = false;
    panel.dataset.ring = cell.ring;
    panel.dataset.segment = cell.segment || "";
    panel.innerHTML = `<h2>${name} <span class="badge state-${cell.state}">${cell.state}</span></h2>
      <p class="muted">chainage ${chainage(cell.chainage_from_m)} – ${chainage(cell.chainage_to_m)} · arc ${cell.arc_from_m.toFixed(2)}–${cell.arc_to_m.toFixed(2)} m</p>
      <p>${cell.length_per_m2.toFixed(3)} m of crack per m² · worst ${cell.worst_width_mm.toFixed(2)} mm · ${cell.n_growing} growing</p>` +
      (rows.length ? `<table class="table compact"><thead><tr><th>Crack</th><th class="num">Length (mm)</th><th class="num">Width (mm)</th><th>Severity</th></tr></thead><tbody>` +
        rows.map((c) => `<tr data-crack="${c.id}"><td><a href="/cracks/${c.id}/">${c.track || "#" + c.id}</a></td><td class="num">${c.length_mm.toFixed(0)}</td><td class="num">${c.width_mm.toFixed(2)}</td><td>${c.severity}</td></tr>`).join("") +
        "</tbody></table>" : '<p class="empty">No crack shown here.</p>') +
      (hidden ? `<p class="muted">${hidden} more hidden by the filters.</p>` : "");
  }

  // survey photos under the cracks once a few images fill the screen: the stored file for a
  // small image, the deep-zoom tiles of the level that suits the zoom for a large one
  const PHOTO_MIN_PX = 160;  // an image footprint this wide on screen shows its photo
  function svgOverlay(photo, footprint, level) {
    const [id, width, height, kind] = photo;
    const [, , c0, c1, a0, a1] = footprint;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const group = document.createElementNS(svg.namespaceURI, "g");
    // pixel x runs from chainage_start to chainage_end and y from arc_start to arc_end: flip
    // the photo where a footprint runs against the map's axes
    const flipX = c1 < c0, flipY = a1 < a0;
    group.setAttribute("transform", `translate(${flipX ? width : 0} ${flipY ? height : 0}) scale(${flipX ? -1 : 1} ${flipY ? -1 : 1})`);
    svg.appendChild(group);
    const add = (href, x, y, w, h) => {
      const image = document.createElementNS(svg.namespaceURI, "image");
      image.setAttribute("href", href);
      for (const [k, v] of Object.entries({ x, y, width: w, height: h })) image.setAttribute(k, v);
      image.setAttribute("preserveAspectRatio", "none");
      group.appendChild(image);
    };
    const urls = data.photo_urls;
    if (kind === "image") {
      add(urls.image.replace("{id}", id), 0, 0, width, height);
    } else {
      const maxLevel = Math.ceil(Math.log2(Math.max(width, height)));
      const factor = Math.pow(2, maxLevel - level), tile = urls.tile_px, overlap = urls.overlap_px;
      const lw = Math.ceil(width / factor), lh = Math.ceil(height / factor);
      for (let col = 0; col * tile < lw; col++) {
        for (let row = 0; row * tile < lh; row++) {
          const x0 = Math.max(0, col * tile - overlap), y0 = Math.max(0, row * tile - overlap);
          const x1 = Math.min(lw, (col + 1) * tile + overlap), y1 = Math.min(lh, (row + 1) * tile + overlap);
          add(urls.tile.replace("{id}", id).replace("{level}", level).replace("{col}", col).replace("{row}", row),
            x0 * factor, y0 * factor, (x1 - x0) * factor, (y1 - y0) * factor);
        }
      }
    }
    const bounds = [[-Math.min(a0, a1), Math.min(c0, c1)], [-Math.max(a0, a1), Math.max(c0, c1)]];
    return L.svgOverlay(svg, bounds, { pane: "photos", interactive: false, className: "survey-photo" });
  }
  function drawPhotos() {
    if (!data || !data.photos) return;
    const view = map.getBounds().pad(0.2), size = map.getSize();
    const pxPerM = size.x / (map.getBounds().getEast() - map.getBounds().getWest());
    const wanted = new Map();
    data.photos.forEach((photo, i) => {
      const footprint = data.footprints[i];
      const [, , c0, c1, a0, a1] = footprint;
      const [id, width, height, kind] = photo;
      if (!kind || Math.abs(c1 - c0) * pxPerM < PHOTO_MIN_PX) return;
      if (!view.intersects(L.latLngBounds([[-a0, c0], [-a1, c1]]))) return;
      // the pyramid level whose pixels are at least as fine as the screen's, at most full size
      const maxLevel = Math.ceil(Math.log2(Math.max(width, height)));
      const screenScale = (Math.abs(c1 - c0) * pxPerM * (window.devicePixelRatio || 1)) / width;
      const level = kind === "dzi" ? Math.min(maxLevel, Math.max(0, maxLevel + Math.ceil(Math.log2(Math.max(screenScale, 1e-6))))) : 0;
      wanted.set(id, { photo, footprint, level });
    });
    for (const [id, shown] of shownPhotos) {
      const want = wanted.get(id);
      if (!want || want.level !== shown.level) { photoLayer.removeLayer(shown.layer); shownPhotos.delete(id); }
    }
    for (const [id, want] of wanted) {
      if (shownPhotos.has(id)) continue;
      const layer = svgOverlay(want.photo, want.footprint, want.level).addTo(photoLayer);
      shownPhotos.set(id, { level: want.level, layer });
    }
    document.getElementById("map").dataset.photos = shownPhotos.size;
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
    const cell = cellAt(event.latlng);
    const zone = data && data.rings ? data.rings.zones.find((z) => z.arc_from_m <= -event.latlng.lat && -event.latlng.lat < z.arc_to_m) : null;
    document.getElementById("cursor-readout").textContent =
      `chainage ${chainage(event.latlng.lng)} · arc ${(-event.latlng.lat).toFixed(3)} m` +
      (cell ? ` · ${cell.label}` : "") + (zone ? ` · ${zone.name}` : "");
  });
  map.on("click", (event) => showCell(cellAt(event.latlng)));
  map.on("moveend zoomend", () => { drawGrid(); drawRings(); drawPhotos(); drawScale(); remember(); });

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
    const body = await response.json();
    if (!response.ok) { status.textContent = body.error || "could not load the map"; return; }
    data = body;
    data.rings = ringCache.run === data.run ? ringCache.rings : null;
    for (const shown of shownPhotos.values()) photoLayer.removeLayer(shown.layer);
    shownPhotos.clear();
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
      line.on("click", (event) => { L.DomEvent.stop(event); window.location = `/cracks/${crack.id}/`; });
      line.addTo(crackLayer);
      lines.push(line);
    }
    document.getElementById("map-count").textContent = data.cracks.length;
    status.textContent = `inspection of ${data.date}`;
    if (bounds.length) {
      extent.arcMin = Math.min(...bounds.map((b) => -b[0]));
      extent.arcMax = Math.max(...bounds.map((b) => -b[0]));
      if (form.dataset.ringsUrl && form.dataset.hasRings) {  // room for the condition band
        const span = extent.arcMax - extent.arcMin;
        bounds.push([-(extent.arcMin - span * 0.14), bounds[0][1]]);
      }
      const lining = L.latLngBounds(bounds);
      // zoom limits: never further out than the whole inspection, never off the lining
      map.setMaxBounds(lining.pad(0.5));
      map.setMinZoom(map.getBoundsZoom(lining.pad(0.5)) - 1);
      if (!fitted) { map.fitBounds(lining, { padding: [20, 20] }); fitted = true; }
    } else {
      map.setView([0, 0], 0);
    }
    drawGrid();
    drawRings();
    drawPhotos();
    drawScale();
    remember();
    if (form.dataset.hasRings && ringCache.run !== data.run) loadRings(data.run);
    else if (data.rings) status.textContent += ` · ${data.rings.rings.length} rings rated`;
  }

  // rings, segments and their condition: a request of their own, after the cracks
  async function loadRings(run) {
    const response = await fetch(`${form.dataset.ringsUrl}?run=${run}`);
    if (!response.ok || !data || data.run !== run) return;
    const body = (await response.json()).rings;
    if (body) {
      const obj = (fields, row) => Object.fromEntries(fields.map((f, i) => [f, row[i]]));
      body.rings = body.rings.map((row) => {
        const ring = obj(body.ring_fields, row);
        ring.label = `R${ring.ring}`;
        ring.arc_from_m = 0;
        ring.arc_to_m = data.circumference_m;
        ring.segments = row[body.ring_fields.length].map((s) => ({ ...obj(body.segment_fields, s),
          ring: ring.ring, label: `R${ring.ring}-S${s[0]}`, chainage_from_m: ring.chainage_from_m, chainage_to_m: ring.chainage_to_m }));
        return ring;
      });
    }
    if (body) for (const state of body.states) STATE_COLOURS[state.state] = state.colour;
    ringCache = { run, rings: body };
    data.rings = body;
    drawRings();
    if (body) document.getElementById("map-status").textContent += ` · ${body.rings.length} rings rated`;
  }

  map.on("zoomend", () => { for (const line of lines) line.setStyle({ weight: weightFor(line.crackWidth) }); });
  form.addEventListener("change", (event) => { if (event.target.id === "f-run") fitted = false; remember(); load(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  window.crackMap = map;  // for tests and debugging
  load();
})();
