// The X-ray viewer of the case page: the image at full resolution on a canvas, zoom and pan by
// mouse (wheel, drag), touch (pinch, drag) and keyboard (+ - 0 and the arrow keys), the model's
// outline as a layer that can be hidden, made more or less opaque and drawn filled or as an
// outline, the original beside the overlay, and window/level (brightness/contrast).
//
// Window/level works on the 8-bit display image the server renders (the DICOM's own VOI window
// already applied), not on the stored 12/16-bit values: it widens or narrows what is shown, it
// cannot bring back grey levels the display image does not hold. The page says so.
//
// No framework, no CDN. Each viewer is a <div data-viewer> with data-image-url; case.js calls
// TriageViewer.showMask(element, maskUrl) when the result arrives.
(function () {
  "use strict";

  var TINT = [255, 40, 40];      // the filled layer: red
  var EDGE = [255, 220, 0];      // the outline: yellow, as in the downloadable overlay PNG
  var MIN_SCALE = 0.1, MAX_SCALE = 16;

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

  function Viewer(root) {
    this.root = root;
    this.part = function (role) { return root.querySelector('[data-viewer-role="' + role + '"]'); };
    this.canvases = [this.part("overlay-canvas"), this.part("original-canvas")];
    this.view = { scale: 1, x: 0, y: 0 };
    this.layers = null;
    this.pointers = {};
    var self = this;
    loadImage(root.dataset.imageUrl).then(function (image) {
      self.image = image;
      self.fit();
      root.dataset.viewerReady = "1";
    }).catch(function () { self.part("message").textContent = "The image could not be loaded."; });
    this.bindControls();
    this.bindPointer();
    window.addEventListener("resize", function () { self.fit(); });
  }

  Viewer.prototype.settings = function () {
    return {
      overlay: this.part("overlay-toggle").checked,
      opacity: Number(this.part("opacity").value) / 100,
      style: this.part("style").value,
      window: Number(this.part("window").value),
      level: Number(this.part("level").value),
      sideBySide: this.part("side-by-side").checked,
    };
  };

  Viewer.prototype.fit = function () {
    if (!this.image) { return; }
    var sideBySide = this.settings().sideBySide;
    this.canvases[1].hidden = !sideBySide;
    var box = this.part("stage").clientWidth || 600;
    var width = sideBySide ? Math.floor((box - 8) / 2) : box;
    var height = Math.round(width * this.image.naturalHeight / this.image.naturalWidth);
    this.canvases.forEach(function (canvas) { canvas.width = width; canvas.height = height; });
    this.view = { scale: width / this.image.naturalWidth, x: 0, y: 0 };
    this.draw();
  };

  Viewer.prototype.zoomAt = function (factor, cx, cy) {
    var v = this.view;
    var scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
    factor = scale / v.scale;
    // Keep the image point under (cx, cy) where it is.
    v.x = cx - (cx - v.x) * factor;
    v.y = cy - (cy - v.y) * factor;
    v.scale = scale;
    this.draw();
  };

  Viewer.prototype.panBy = function (dx, dy) {
    this.view.x += dx; this.view.y += dy;
    this.draw();
  };

  Viewer.prototype.draw = function () {
    if (!this.image) { return; }
    var s = this.settings(), v = this.view, self = this;
    // Window/level on the display image: level is the grey at mid-screen, window the range shown.
    var contrast = 255 / Math.max(1, s.window), brightness = (128 - s.level) / 255;
    var filter = "brightness(" + (1 + brightness) + ") contrast(" + contrast + ")";
    this.canvases.forEach(function (canvas, index) {
      if (canvas.hidden) { return; }
      var context = canvas.getContext("2d");
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.fillStyle = "#000";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.setTransform(v.scale, 0, 0, v.scale, v.x, v.y);
      context.imageSmoothingEnabled = v.scale < 2;  // see the pixels when zoomed right in
      context.filter = filter;
      context.drawImage(self.image, 0, 0);
      context.filter = "none";
      if (index === 0 && self.layers && s.overlay) {
        context.globalAlpha = s.style === "outline" ? 1 : s.opacity;
        if (s.style !== "outline") { context.drawImage(self.layers.filled, 0, 0); }
        context.globalAlpha = s.style === "filled" ? s.opacity : 1;
        if (s.style !== "filled") { context.drawImage(self.layers.outline, 0, 0); }
        context.globalAlpha = 1;
      }
    });
    this.root.dataset.zoom = v.scale.toFixed(3);
    this.part("zoom-level").textContent = Math.round(v.scale * 100) + "%";
  };

  Viewer.prototype.showMask = function (maskUrl) {
    var self = this;
    return loadImage(maskUrl).then(function (mask) {
      self.layers = maskLayers(mask);
      self.root.dataset.maskLoaded = "1";
      self.part("layer-controls").hidden = false;
      self.draw();
    });
  };

  Viewer.prototype.bindControls = function () {
    var self = this, stage = this.part("stage");
    var centre = function () { return [self.canvases[0].width / 2, self.canvases[0].height / 2]; };
    this.root.querySelectorAll("[data-viewer-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var c = centre(), action = button.dataset.viewerAction;
        if (action === "zoom-in") { self.zoomAt(1.25, c[0], c[1]); }
        if (action === "zoom-out") { self.zoomAt(0.8, c[0], c[1]); }
        if (action === "reset") { self.fit(); }
      });
    });
    ["overlay-toggle", "opacity", "style", "window", "level"].forEach(function (role) {
      self.part(role).addEventListener("input", function () { self.draw(); });
    });
    this.part("side-by-side").addEventListener("change", function () { self.fit(); });
    stage.addEventListener("keydown", function (event) {
      var c = centre(), step = 40, handled = true;
      switch (event.key) {
        case "+": case "=": self.zoomAt(1.25, c[0], c[1]); break;
        case "-": case "_": self.zoomAt(0.8, c[0], c[1]); break;
        case "0": self.fit(); break;
        case "ArrowLeft": self.panBy(step, 0); break;
        case "ArrowRight": self.panBy(-step, 0); break;
        case "ArrowUp": self.panBy(0, step); break;
        case "ArrowDown": self.panBy(0, -step); break;
        case "o": self.part("overlay-toggle").click(); break;
        case "n": case "PageDown": self.focusNeighbour(1); break;
        case "p": case "PageUp": self.focusNeighbour(-1); break;
        default: handled = false;
      }
      if (handled) { event.preventDefault(); }
    });
    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      var box = event.target.getBoundingClientRect();
      self.zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
  };

  // Several images of a case, one after another: n / p (or Page Down / Up) move to the next or
  // previous image's viewer.
  Viewer.prototype.focusNeighbour = function (step) {
    var stages = Array.prototype.slice.call(document.querySelectorAll('[data-viewer-role="stage"]'));
    var next = stages[stages.indexOf(this.part("stage")) + step];
    if (next) {
      next.closest("section").scrollIntoView({ block: "start" });
      next.focus({ preventScroll: true });
    }
  };

  // Pointer events cover mouse, pen and touch alike: one pointer pans, two pinch.
  Viewer.prototype.bindPointer = function () {
    var self = this, stage = this.part("stage"), pinch = null;
    stage.addEventListener("pointerdown", function (event) {
      stage.setPointerCapture(event.pointerId);
      self.pointers[event.pointerId] = [event.clientX, event.clientY];
    });
    stage.addEventListener("pointermove", function (event) {
      var last = self.pointers[event.pointerId];
      if (!last) { return; }
      var ids = Object.keys(self.pointers);
      if (ids.length === 1) {
        self.panBy(event.clientX - last[0], event.clientY - last[1]);
      } else if (ids.length === 2) {
        var other = self.pointers[ids[0] == event.pointerId ? ids[1] : ids[0]];
        var distance = Math.hypot(event.clientX - other[0], event.clientY - other[1]);
        if (pinch) {
          var box = self.canvases[0].getBoundingClientRect();
          self.zoomAt(distance / pinch, (event.clientX + other[0]) / 2 - box.left,
                      (event.clientY + other[1]) / 2 - box.top);
        }
        pinch = distance;
      }
      self.pointers[event.pointerId] = [event.clientX, event.clientY];
    });
    var release = function (event) { delete self.pointers[event.pointerId]; pinch = null; };
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
  };

  var viewers = new Map();
  document.querySelectorAll("[data-viewer]").forEach(function (element) {
    viewers.set(element, new Viewer(element));
  });

  window.TriageViewer = {
    showMask: function (element, maskUrl) {
      var viewer = viewers.get(element);
      return viewer ? viewer.showMask(maskUrl) : Promise.resolve();
    },
  };
}());
