// Training form: follow the chosen configuration's epochs and estimate the run's time from
// the images it would use (base dataset + verified annotations) on this host.
(function () {
  const facts = JSON.parse(document.getElementById("training-facts").textContent);
  const out = document.getElementById("training-estimate");
  const field = (name) => document.querySelector(`[name="${name}"]`);
  const config = field("config_name"), epochs = field("epochs"), dataset = field("dataset"),
    annotations = field("include_annotations");
  if (!config || !out) return;

  function estimate() {
    const c = facts.configs[config.value] || {};
    const images = (facts.datasets[dataset.value] || 0) + (annotations.checked ? facts.annotations : 0);
    const n = parseInt(epochs.value, 10) || c.epochs || 0;
    const crops = c.crops_per_epoch || Math.max(100, images);
    const val = images ? Math.max(1, Math.round(images * (c.val_fraction || 0.15))) : 0;
    const minutes = (n * (crops * facts.seconds_per_crop + val * facts.seconds_per_val_image)) / 60;
    out.textContent = images
      ? `Uses ${images} images (${annotations.checked ? facts.annotations : 0} verified annotations). ` +
        `About ${minutes < 1 ? "<1" : Math.round(minutes)} min on this host: ${n} epochs × ${crops} crops.`
      : "No images chosen: pick a base dataset or include verified annotations.";
  }
  // "start from the active model" only for a configuration of the active model's network
  const initFromActive = field("init_from_active");
  function fitNetwork() {
    const c = facts.configs[config.value];
    if (!initFromActive || !c) return;
    initFromActive.disabled = !c.fits_active;
    if (!c.fits_active) initFromActive.checked = false;
  }
  config.addEventListener("change", () => {
    const c = facts.configs[config.value];
    if (c) epochs.value = c.epochs;
    fitNetwork();
    estimate();
  });
  fitNetwork();
  [epochs, dataset, annotations].forEach((el) => el.addEventListener("input", estimate));
  [dataset, annotations].forEach((el) => el.addEventListener("change", estimate));
  estimate();
})();
