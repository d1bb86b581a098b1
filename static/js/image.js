// Image page: overlay on/off and opacity; arrow keys move to the previous/next image.
(function () {
  const overlay = document.getElementById("overlay");
  const toggle = document.getElementById("overlay-toggle");
  const opacity = document.getElementById("overlay-opacity");
  function apply() {
    if (!overlay) return;
    overlay.hidden = !toggle.checked;
    overlay.style.opacity = opacity.value / 100;
  }
  if (toggle) toggle.addEventListener("change", apply);
  if (opacity) opacity.addEventListener("input", apply);
  apply();
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea, select")) return;
    const link = document.getElementById(event.key === "ArrowLeft" ? "prev-image" : event.key === "ArrowRight" ? "next-image" : "");
    if (link) window.location = link.href;
  });
})();
