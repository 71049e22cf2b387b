// The X-ray viewer's outline layers (viewer.js): the mask PNG (0 or 255) becomes two RGBA layers
// the size of the image, filled and outline, drawn over the film at any zoom. No framework.
(function () {
  "use strict";

  var TINT = [255, 40, 40];      // the filled layer: red
  var EDGE = [255, 220, 0];      // the outline: yellow, as in the downloadable overlay PNG

  function loadImage(url) {
    return new Promise(function (resolve, reject) {
      var image = new Image();
      image.onload = function () { resolve(image); };
      image.onerror = function () { reject(new Error("cannot load " + url)); };
      image.src = url;
    });
  }

  // The mask PNG (0 or 255) becomes two RGBA layers the size of the image: filled and outline.
  function maskLayers(maskImage) {
    var w = maskImage.naturalWidth, h = maskImage.naturalHeight;
    var scratch = document.createElement("canvas");
    scratch.width = w; scratch.height = h;
    var context = scratch.getContext("2d");
    context.drawImage(maskImage, 0, 0);
    var source = context.getImageData(0, 0, w, h).data;
    var inside = new Uint8Array(w * h);
    for (var i = 0; i < w * h; i++) { inside[i] = source[i * 4] > 127 ? 1 : 0; }
    // About 3 px at 1024 px, like the server's overlay, so it survives being shown smaller.
    var thickness = Math.max(1, Math.round(Math.min(w, h) / 340));
    var filled = context.createImageData(w, h), edge = context.createImageData(w, h);
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < w; x++) {
        var at = y * w + x;
        if (!inside[at]) { continue; }
        filled.data.set([TINT[0], TINT[1], TINT[2], 255], at * 4);
        if (nearOutside(inside, w, h, x, y, thickness)) {
          edge.data.set([EDGE[0], EDGE[1], EDGE[2], 255], at * 4);
        }
      }
    }
    return { filled: toCanvas(filled), outline: toCanvas(edge), any: inside.indexOf(1) >= 0 };
  }

  function nearOutside(inside, w, h, x, y, thickness) {
    for (var dy = -thickness; dy <= thickness; dy++) {
      for (var dx = -thickness; dx <= thickness; dx++) {
        var nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h || !inside[ny * w + nx]) { return true; }
      }
    }
    return false;
  }

  function toCanvas(imageData) {
    var canvas = document.createElement("canvas");
    canvas.width = imageData.width; canvas.height = imageData.height;
    canvas.getContext("2d").putImageData(imageData, 0, 0);
    return canvas;
  }

  window.TriageLayers = { loadImage: loadImage, maskLayers: maskLayers };
}());
