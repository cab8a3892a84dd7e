/* Draws a low-resolution heatmap (rows of floats in [0,1]) over the X-ray preview:
   bilinear upscaling to the canvas size, a blue-to-red colour map, alpha rising with the
   value so cold regions leave the radiograph visible. Exposed as window.RadioHeatmap. */
(function () {
  "use strict";

  // Colour stops (value, r, g, b): blue, cyan, green, yellow, red.
  var STOPS = [
    [0.0, 0, 0, 255], [0.25, 0, 255, 255], [0.5, 0, 255, 0],
    [0.75, 255, 255, 0], [1.0, 255, 0, 0]
  ];

  function colour(v) {
    for (var i = 1; i < STOPS.length; i++) {
      if (v <= STOPS[i][0]) {
        var a = STOPS[i - 1], b = STOPS[i];
        var t = (v - a[0]) / (b[0] - a[0]);
        return [a[1] + t * (b[1] - a[1]), a[2] + t * (b[2] - a[2]), a[3] + t * (b[3] - a[3])];
      }
    }
    return STOPS[STOPS.length - 1].slice(1);
  }

  // Value of the grid at fractional coordinates, clamped at the borders.
  function sample(grid, gx, gy) {
    var h = grid.length, w = grid[0].length;
    gx = Math.min(Math.max(gx, 0), w - 1);
    gy = Math.min(Math.max(gy, 0), h - 1);
    var x0 = Math.floor(gx), y0 = Math.floor(gy);
    var x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
    var fx = gx - x0, fy = gy - y0;
    var top = grid[y0][x0] * (1 - fx) + grid[y0][x1] * fx;
    var bottom = grid[y1][x0] * (1 - fx) + grid[y1][x1] * fx;
    return top * (1 - fy) + bottom * fy;
  }

  /* Paint grid onto canvas at width x height pixels (the caller scales it with CSS). */
  function draw(canvas, grid, width, height) {
    canvas.width = width;
    canvas.height = height;
    var ctx = canvas.getContext("2d");
    var img = ctx.createImageData(width, height);
    var h = grid.length, w = grid[0].length;
    for (var y = 0; y < height; y++) {
      // Pixel centres map to grid centres, so the map is not shifted by half a cell.
      var gy = (y + 0.5) * h / height - 0.5;
      for (var x = 0; x < width; x++) {
        var v = sample(grid, (x + 0.5) * w / width - 0.5, gy);
        v = Math.min(Math.max(v, 0), 1);
        var c = colour(v), o = (y * width + x) * 4;
        img.data[o] = c[0];
        img.data[o + 1] = c[1];
        img.data[o + 2] = c[2];
        img.data[o + 3] = Math.round(255 * (0.15 + 0.85 * v));
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function clear(canvas) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    canvas.width = 0;
    canvas.height = 0;
  }

  window.RadioHeatmap = { draw: draw, clear: clear, colour: colour, sample: sample };
})();
