// Run page: poll the progress endpoint and update counts and rows until the run settles.
(function () {
  const box = document.getElementById("progress");
  if (!box) return;
  const url = box.dataset.url;
  const finished = new Set(["done", "failed"]);

  function setText(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  async function poll() {
    let data;
    try {
      const ids = [...document.querySelectorAll("tr[data-image]")].map((row) => row.dataset.image).join(",");
      const response = await fetch(`${url}?ids=${ids}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.status);
      data = await response.json();
    } catch (err) {
      setTimeout(poll, 5000);
      return;
    }
    box.querySelector(".bar").style.width = data.percent + "%";
    box.querySelector(".progress").setAttribute("aria-valuenow", data.percent);
    setText("count-total", data.total);
    setText("count-cracks", data.cracks);
    for (const [status, n] of Object.entries(data.counts)) setText("count-" + status, n);
    const badge = document.getElementById("run-status");
    badge.textContent = data.status;
    badge.className = "badge badge-" + data.status;
    for (const image of data.images) {
      const row = document.querySelector(`tr[data-image="${image.id}"]`);
      if (!row) continue;
      const status = row.querySelector('[data-field="status"]');
      status.textContent = image.status;
      status.className = "badge badge-" + image.status;
      row.querySelector('[data-field="cracks"]').textContent = image.cracks;
      row.querySelector('[data-field="error"]').textContent = image.error;
    }
    const active = data.counts.pending + data.counts.queued + data.counts.processing;
    if (active > 0 || !finished.has(data.status)) setTimeout(poll, 1500);
  }
  poll();
})();
