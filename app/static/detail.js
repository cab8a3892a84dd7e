/* The prediction page: draw the stored heatmap over the stored image once it has loaded. */
(function () {
  "use strict";
  var img = document.getElementById("preview");
  var canvas = document.getElementById("heatmap");
  if (!img || !canvas) { return; }
  var grid = JSON.parse(canvas.dataset.heatmap || "[]");
  function paint() {
    if (!grid.length || !img.naturalWidth) { return; }
    // No more canvas pixels than the screen shows; CSS stretches it over the image.
    var scale = Math.min(1, 512 / Math.max(img.naturalWidth, img.naturalHeight));
    window.RadioHeatmap.draw(canvas, grid, Math.max(1, Math.round(img.naturalWidth * scale)),
                             Math.max(1, Math.round(img.naturalHeight * scale)));
    canvas.style.opacity = "0.45";
  }
  if (img.complete) { paint(); } else { img.addEventListener("load", paint); }
})();
