// Upload forms: send with XMLHttpRequest so a large survey shows its upload progress.
(function () {
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.FormData || !window.XMLHttpRequest) return;  // plain submit still works
      event.preventDefault();
      const box = form.querySelector(".upload-progress");
      const bar = box.querySelector(".bar");
      const status = box.querySelector("[data-upload-status]");
      const button = form.querySelector("button[type=submit]");
      box.hidden = false;
      button.disabled = true;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        const percent = Math.round((100 * e.loaded) / e.total);
        bar.style.width = percent + "%";
        box.querySelector(".progress").setAttribute("aria-valuenow", percent);
        status.textContent = `Uploading… ${(e.loaded / 1e6).toFixed(1)} of ${(e.total / 1e6).toFixed(1)} MB`;
      });
      xhr.upload.addEventListener("load", function () { status.textContent = "Uploaded; checking and storing the files…"; });
      xhr.addEventListener("load", function () {
        // show the page the server answered with (the run page after a redirect, or the form
        // with its errors): loading its URL again would lose the upload's messages
        if (xhr.responseURL && xhr.responseURL !== window.location.href) {
          window.history.replaceState(null, "", xhr.responseURL);
        }
        document.open(); document.write(xhr.responseText); document.close();
      });
      xhr.addEventListener("error", function () {
        status.textContent = "The upload failed (connection lost). Nothing was half-stored; try again.";
        button.disabled = false;
      });
      xhr.send(new FormData(form));
    });
  });
})();
