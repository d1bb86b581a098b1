// Training page: poll the run's state; redraw progress, curves, the metrics table and the log.
(function () {
  const box = document.getElementById("training");
  if (!box) return;
  const fmt = (v) => (typeof v === "number" ? v.toFixed(4) : "");
  const chart = (id, datasets, yMax) =>
    new Chart(document.getElementById(id), {
      type: "line",
      data: { labels: [], datasets: datasets.map(([label, color]) => ({ label, borderColor: color, data: [], tension: 0.2 })) },
      options: { animation: false, scales: { x: { title: { display: true, text: "epoch" } }, y: { min: 0, max: yMax } } },
    });
  const lossChart = chart("loss-chart", [["train loss", "#0b5fff"], ["val loss", "#e8590c"]]);
  const metricChart = chart("metric-chart", [["val IoU", "#2b8a3e"], ["val F1", "#7048e8"]], 1);
  window.trainingCharts = { lossChart, metricChart };

  function draw(history) {
    const labels = history.map((r) => r.epoch);
    lossChart.data.labels = metricChart.data.labels = labels;
    lossChart.data.datasets[0].data = history.map((r) => r.train_loss);
    lossChart.data.datasets[1].data = history.map((r) => r.val_loss);
    metricChart.data.datasets[0].data = history.map((r) => r.val_iou);
    metricChart.data.datasets[1].data = history.map((r) => r.val_f1);
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
    document.getElementById("result").textContent = s.result || "—";
    document.getElementById("error").textContent = s.error;
    document.getElementById("log").textContent = s.log_tail;
    const badge = document.getElementById("training-status");
    badge.textContent = s.status;
    badge.className = "badge badge-" + s.status;
    document.querySelector("#history tbody").innerHTML = s.history
      .map((r) => `<tr><td class="num">${r.epoch}</td><td class="num">${fmt(r.train_loss)}</td><td class="num">${fmt(r.val_loss)}</td><td class="num">${fmt(r.val_iou)}</td><td class="num">${fmt(r.val_f1)}</td></tr>`)
      .join("");
    draw(s.history);
    if (s.status === "pending" || s.status === "running") setTimeout(poll, 2000);
  }
  poll();
})();
