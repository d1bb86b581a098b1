// Training page: poll the run's state and redraw progress, the metrics table and the log.
(function () {
  const box = document.getElementById("training");
  if (!box) return;
  const fmt = (v) => (typeof v === "number" ? v.toFixed(4) : "");
  async function poll() {
    let s;
    try {
      s = await (await fetch(box.dataset.url)).json();
    } catch (err) {
      setTimeout(poll, 4000);
      return;
    }
    box.querySelector(".bar").style.width = s.percent + "%";
    document.getElementById("epoch").textContent = s.epoch;
    document.getElementById("result").textContent = s.result || "—";
    document.getElementById("error").textContent = s.error;
    document.getElementById("log").textContent = s.log_tail;
    const badge = document.getElementById("training-status");
    badge.textContent = s.status;
    badge.className = "badge badge-" + s.status;
    document.querySelector("#history tbody").innerHTML = s.history
      .map((r) => `<tr><td class="num">${r.epoch}</td><td class="num">${fmt(r.train_loss)}</td><td class="num">${fmt(r.val_loss)}</td><td class="num">${fmt(r.val_iou)}</td><td class="num">${fmt(r.val_f1)}</td></tr>`)
      .join("");
    if (s.status === "pending" || s.status === "running") setTimeout(poll, 2000);
  }
  poll();
})();
