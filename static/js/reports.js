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
      // a finished draft PDF can be approved from here; an approved one says so
      const approval = field("approval");
      if (approval && data.status === "done") {
        if (data.locked) {
          approval.textContent = `approved by ${data.approved_by} · locked`;
        } else {
          const form = approval.querySelector("form");
          if (form) form.hidden = false;
          const draft = field("draft");
          if (draft) draft.remove();
        }
      }
      if (data.status === "queued" || data.status === "running") setTimeout(poll, 1500);
    }
    const status = field("status").textContent.trim();
    if (status === "queued" || status === "running") poll();
  });
})();
