// Crack page: length and max width over the inspections of its track.
(function () {
  const rows = [...document.querySelectorAll("#history tbody tr")];
  const canvas = document.getElementById("history-chart");
  if (!canvas || !rows.length || typeof Chart === "undefined") return;
  const labels = rows.map((r) => r.dataset.date);
  new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "Length (mm)", data: rows.map((r) => +r.dataset.length), yAxisID: "y", borderColor: "#0b5fff", tension: 0.2 },
        { label: "Max width (mm)", data: rows.map((r) => +r.dataset.width), yAxisID: "y1", borderColor: "#e8590c", tension: 0.2 },
      ],
    },
    options: {
      animation: false,
      scales: { y: { position: "left", title: { display: true, text: "mm" } }, y1: { position: "right", grid: { drawOnChartArea: false } } },
    },
  });
})();
