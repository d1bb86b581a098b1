// Training page: poll the run's state; redraw progress, curves, the metrics table and the log.
(function () {
  const box = document.getElementById("training");
  if (!box) return;
  const fmt = (v) => (typeof v === "number" ? v.toFixed(4) : "");
  const chart = (id, datasets, yMax) =>
    new Chart(document.getElementById(id), {
      type: "line",
      data: {
        datasets: datasets.map(([label, color, dash]) => ({
          label, borderColor: color, data: [], tension: 0.2, borderDash: dash || [], pointRadius: dash ? 0 : 3,
        })),
      },
      options: {
        animation: false,
        scales: { x: { type: "linear", min: 0, title: { display: true, text: "epoch" } }, y: { min: 0, max: yMax } },
      },
    });
  // the running loss inside the epoch under way is drawn dashed, every few seconds
  const lossChart = chart("loss-chart", [["train loss", "#0b5fff"], ["val loss", "#e8590c"], ["train loss, running", "#0b5fff", [4, 3]]]);
  const metricChart = chart("metric-chart", [["val IoU", "#2b8a3e"], ["val F1", "#7048e8"]], 1);
  window.trainingCharts = { lossChart, metricChart };

  function draw(history, live) {
    const xy = (key) => history.map((r) => ({ x: r.epoch, y: r[key] }));
    lossChart.data.datasets[0].data = xy("train_loss");
    lossChart.data.datasets[1].data = xy("val_loss");
    lossChart.data.datasets[2].data = ((live && live.points) || []).map(([x, y]) => ({ x, y }));
    metricChart.data.datasets[0].data = xy("val_iou");
    metricChart.data.datasets[1].data = xy("val_f1");
    lossChart.update();
    metricChart.update();
  }

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
    const live = s.live || {};
    document.getElementById("step").textContent =
      s.status === "running" && live.steps && live.epoch === s.epoch + 1
        ? ` · epoch ${live.epoch}: step ${live.step} of ${live.steps}` +
          (live.train_loss != null ? `, running loss ${live.train_loss.toFixed(4)}` : "")
        : "";
    document.getElementById("result").textContent = s.result || "—";
    document.getElementById("error").textContent = s.error;
    document.getElementById("log").textContent = s.log_tail;
    const badge = document.getElementById("training-status");
    badge.textContent = s.status;
    badge.className = "badge badge-" + s.status;
    document.querySelector("#history tbody").innerHTML = s.history
      .map((r) => `<tr><td class="num">${r.epoch}</td><td class="num">${fmt(r.train_loss)}</td><td class="num">${fmt(r.val_loss)}</td><td class="num">${fmt(r.val_iou)}</td><td class="num">${fmt(r.val_f1)}</td></tr>`)
      .join("");
    draw(s.history, s.live);
    if (s.status === "pending" || s.status === "running") setTimeout(poll, 2000);
  }
  poll();
})();
