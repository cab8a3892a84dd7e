/* The case page: draw the stored heatmap over the stored image once it has loaded, with a
   switch and an opacity slider; size the probability bars (no inline styles: the CSP). */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll(".bar-fill[data-p]"), function (el) {
    el.style.width = Math.max(0, Math.min(100, parseFloat(el.dataset.p) * 100)) + "%";
  });
  var img = document.getElementById("preview");
  var canvas = document.getElementById("heatmap");
  if (!img || !canvas) { return; }
  var grid = JSON.parse(canvas.dataset.heatmap || "[]");
  var toggle = document.getElementById("heatmap-on");
  var opacity = document.getElementById("opacity");
  function applyOpacity() {
    canvas.style.opacity = opacity ? String(opacity.value / 100) : "0.45";
    canvas.hidden = toggle ? !toggle.checked : false;
  }
  function paint() {
    if (!grid.length || !img.naturalWidth) { return; }
    // No more canvas pixels than the screen shows; CSS stretches it over the image.
    var scale = Math.min(1, 512 / Math.max(img.naturalWidth, img.naturalHeight));
    window.RadioHeatmap.draw(canvas, grid, Math.max(1, Math.round(img.naturalWidth * scale)),
                             Math.max(1, Math.round(img.naturalHeight * scale)));
    applyOpacity();
  }
  // Window/level and zoom for reading the film: CSS filters on the image only (the heatmap
  // keeps its colours), and a wider box scrolled inside the stage.
  var level = document.getElementById("level");
  var windowWidth = document.getElementById("window");
  var zoomLevel = document.getElementById("zoom-level");
  var zoomBox = document.getElementById("zoom");
  function applyView() {
    if (!level) { return; }
    img.style.filter = "brightness(" + level.value / 100 + ") contrast(" +
      windowWidth.value / 100 + ")";
    zoomBox.style.width = zoomLevel.value + "%";
  }
  [level, windowWidth, zoomLevel].forEach(function (el) {
    if (el) { el.addEventListener("input", applyView); }
  });
  var reset = document.getElementById("view-reset");
  if (reset) {
    reset.addEventListener("click", function () {
      level.value = 100; windowWidth.value = 100; zoomLevel.value = 100; applyView();
    });
  }
  if (toggle) { toggle.addEventListener("change", applyOpacity); }
  if (opacity) { opacity.addEventListener("input", applyOpacity); }
  if (img.complete) { paint(); } else { img.addEventListener("load", paint); }
})();
