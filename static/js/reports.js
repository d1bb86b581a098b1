// Run page, reports: poll queued and running reports until they are done or failed.
(function () {
  const rows = document.querySelectorAll("tr[data-report]");
  rows.forEach((row) => {
    const field = (name) => row.querySelector(`[data-field="${name}"]`);
    async function poll() {
      let data;
      try {
        const response = await fetch(row.dataset.url, { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(response.status);
        data = await response.json();
      } catch (err) {
        setTimeout(poll, 4000);
        return;
      }
      field("status").textContent = data.status;
      field("status").className = "badge badge-" + data.status;
      field("message").textContent = data.message;
      field("error").textContent = data.error;
      row.querySelector("progress").value = data.progress;
      if (data.download) {
        field("download").innerHTML = "";
        const link = document.createElement("a");
        link.href = data.download;
        link.textContent = "Download";
        field("download").appendChild(link);
      }
      if (data.status === "queued" || data.status === "running") setTimeout(poll, 1500);
    }
    const status = field("status").textContent.trim();
    if (status === "queued" || status === "running") poll();
  });
})();
