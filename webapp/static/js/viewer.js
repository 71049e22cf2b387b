// The X-ray viewer of the case page: the image at full resolution on a canvas, zoom and pan by
// mouse (wheel, drag), touch (pinch, drag) and keyboard (+ - 0 and the arrow keys), the model's
// outline as a layer that can be hidden, made more or less opaque and drawn filled or as an
// outline, the original beside the overlay, and window/level (brightness/contrast).
//
// Window/level works on the 8-bit display image the server renders (the DICOM's own VOI window
// already applied), not on the stored 12/16-bit values: it widens or narrows what is shown, it
// cannot bring back grey levels the display image does not hold. The page says so.
//
// No framework, no CDN; the outline layers come from viewer-layers.js, loaded first. Each viewer
// is a <div data-viewer> with data-image-url; case.js calls TriageViewer.showMask(element,
// maskUrl) when the result arrives. Viewers can be linked (compare.js: the prior film beside
// this one): each says where it looks in a "triage:view" event, in coordinates normalised to
// its film (zoom relative to "fit", and the film point at the canvas centre as fractions of
// the film's width and height), and TriageViewer.setView moves another viewer there, whatever
// the two films' sizes. The outline editor (outline-editor.js) may take the pointer and have its
// layer drawn in place of the model's outline (TriageViewer.setEditor).
(function () {
  "use strict";

  var loadImage = window.TriageLayers.loadImage, maskLayers = window.TriageLayers.maskLayers;
  var MIN_SCALE = 0.1, MAX_SCALE = 16;

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
      self.ready = true;  // from now on its moves are told to linked viewers (moved)
      root.dataset.viewerReady = "1";
      root.dispatchEvent(new CustomEvent("triage:ready"));
    }).catch(function () { self.part("message").textContent = "The image could not be loaded."; });
    this.bindControls();
    this.bindPointer();
    // A phone resizes the window all the time (the address bar comes and goes, the screen
    // turns): keep the reader's zoom and pan, re-fitting only a film that was fitted.
    var pending = false;
    var relayout = function () {
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () { pending = false; self.relayout(); });
    };
    window.addEventListener("resize", relayout);
    if (window.ResizeObserver) { new ResizeObserver(relayout).observe(root); }
  }

  Viewer.prototype.settings = function () {
    return {
      overlay: this.part("overlay-toggle").checked,
      opacity: Number(this.part("opacity").value) / 100,
      style: this.part("style").value,
      window: Number(this.part("window").value),
      level: Number(this.part("level").value),
      sideBySide: Boolean(this.part("side-by-side") && this.part("side-by-side").checked),
    };
  };

  // The canvases' size: the stage's width (half each, side by side), and as tall as the film at
  // that width, but no taller than the window less the controls and the note below the film, so
  // that the whole film fits on the screen with them.
  Viewer.prototype.canvasSize = function () {
    var sideBySide = this.settings().sideBySide;
    var box = this.part("stage").clientWidth || 600;
    var width = Math.max(1, sideBySide ? Math.floor((box - 8) / 2) : box);
    var below = this.part("controls").offsetHeight + this.part("message").offsetHeight;
    var room = Math.max(200, window.innerHeight - below - 24);
    var height = Math.min(room, Math.round(width * this.image.naturalHeight / this.image.naturalWidth));
    return [width, Math.max(1, height)];
  };

  // Sizes the canvases; true when they changed (which clears them). this.size is in CSS pixels,
  // as the view is; each canvas holds that many device pixels (a phone has 2 or 3 to a CSS
  // pixel), so that the film is as sharp as the screen can show it.
  Viewer.prototype.resize = function () {
    var size = this.canvasSize(), ratio = window.devicePixelRatio || 1, changed = false;
    var pixels = [Math.round(size[0] * ratio), Math.round(size[1] * ratio)];
    this.canvases[1].hidden = !this.settings().sideBySide;
    this.canvases.forEach(function (canvas) {
      if (canvas.width !== pixels[0] || canvas.height !== pixels[1]) {
        canvas.width = pixels[0]; canvas.height = pixels[1]; changed = true;
      }
      canvas.style.width = size[0] + "px";  // the CSSOM, which the Content-Security-Policy allows
      canvas.style.height = size[1] + "px";
    });
    this.size = size;
    this.ratio = ratio;
    return changed;
  };

  // The whole film in the canvas, centred: "Fit", the 0 key, and the first view.
  Viewer.prototype.fit = function () {
    if (!this.image) { return; }
    this.resize();
    var w = this.size[0], h = this.size[1];
    var scale = Math.min(w / this.image.naturalWidth, h / this.image.naturalHeight);
    this.view = { scale: scale, x: (w - this.image.naturalWidth * scale) / 2,
                  y: (h - this.image.naturalHeight * scale) / 2 };
    this.fitted = true;
    this.draw();
    this.moved();
  };

  // After the window or the page changed size: a fitted film is fitted again; a zoomed or panned
  // one keeps its zoom, and the point at the centre of the canvas stays at its centre.
  Viewer.prototype.relayout = function () {
    if (!this.image) { return; }
    if (this.fitted) { this.fit(); return; }
    var before = this.size;
    if (!this.resize()) { return; }
    this.view.x += (this.size[0] - before[0]) / 2;
    this.view.y += (this.size[1] - before[1]) / 2;
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
    this.fitted = false;
    this.draw();
    this.moved();
  };

  Viewer.prototype.panBy = function (dx, dy) {
    this.view.x += dx; this.view.y += dy;
    this.fitted = false;
    this.draw();
    this.moved();
  };

  Viewer.prototype.fitScale = function () {
    return Math.min(this.size[0] / this.image.naturalWidth, this.size[1] / this.image.naturalHeight);
  };

  // Where the viewer looks, normalised to its film: zoom relative to "fit", and the film point
  // at the canvas centre (u, v) as fractions of the film's width and height.
  Viewer.prototype.normalisedView = function () {
    var v = this.view, w = this.image.naturalWidth, h = this.image.naturalHeight;
    return { zoom: v.scale / this.fitScale(), fitted: Boolean(this.fitted),
             u: (this.size[0] / 2 - v.x) / (v.scale * w), v: (this.size[1] / 2 - v.y) / (v.scale * h) };
  };

  // Tells linked viewers (compare.js) where this one now looks; not while following another,
  // so that two linked viewers do not echo each other's moves back and forth.
  Viewer.prototype.moved = function () {
    if (this.following || !this.ready) { return; }
    this.root.dispatchEvent(new CustomEvent("triage:view", { detail: this.normalisedView() }));
  };

  // Looks where another viewer looks (its normalisedView), at the same zoom relative to fit.
  Viewer.prototype.setView = function (view) {
    if (!this.image) { return; }
    this.following = true;
    try {
      if (view.fitted) { this.fit(); return; }
      this.resize();
      var scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.zoom * this.fitScale()));
      this.view = { scale: scale, x: this.size[0] / 2 - view.u * scale * this.image.naturalWidth,
                    y: this.size[1] / 2 - view.v * scale * this.image.naturalHeight };
      this.fitted = false;
      this.draw();
    } finally {
      this.following = false;
    }
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
      var r = self.ratio;  // the view is in CSS pixels, the canvas in device pixels
      context.setTransform(v.scale * r, 0, 0, v.scale * r, v.x * r, v.y * r);
      context.imageSmoothingEnabled = v.scale * r < 2;  // see the pixels when zoomed right in
      context.filter = filter;
      context.drawImage(self.image, 0, 0);
      context.filter = "none";
      if (index === 0 && self.layers && s.overlay && !self.editor) {
        context.globalAlpha = s.style === "outline" ? 1 : s.opacity;
        if (s.style !== "outline") { context.drawImage(self.layers.filled, 0, 0); }
        context.globalAlpha = s.style === "filled" ? s.opacity : 1;
        if (s.style !== "filled") { context.drawImage(self.layers.outline, 0, 0); }
        context.globalAlpha = 1;
      }
      // The outline being corrected (outline-editor.js): a canvas the film's size, drawn in
      // place of the model's outline, so that it zooms and pans with the film.
      if (index === 0 && self.editor) {
        context.globalAlpha = Math.max(0.3, s.opacity);
        context.drawImage(self.editor.layer, 0, 0);
        context.globalAlpha = 1;
      }
    });
    this.root.dataset.zoom = v.scale.toFixed(3);
    // The normalised view (zoom relative to fit, centre u v): what linked viewers share.
    var n = this.normalisedView();
    this.root.dataset.view = [n.zoom.toFixed(3), n.u.toFixed(3), n.v.toFixed(3)].join(" ");
    // Where the film is drawn in the canvas (x y width height, canvas pixels): for the tests.
    this.root.dataset.film = [v.x, v.y, v.scale * this.image.naturalWidth,
                              v.scale * this.image.naturalHeight].map(Math.round).join(" ");
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
    var centre = function () { return self.size ? [self.size[0] / 2, self.size[1] / 2] : [0, 0]; };
    this.root.querySelectorAll("[data-viewer-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var c = centre(), action = button.dataset.viewerAction;
        if (action === "zoom-in") { self.zoomAt(1.25, c[0], c[1]); }
        if (action === "zoom-out") { self.zoomAt(0.8, c[0], c[1]); }
        if (action === "reset") { self.fitToScreen(); }
      });
    });
    ["overlay-toggle", "opacity", "style", "window", "level"].forEach(function (role) {
      self.part(role).addEventListener("input", function () { self.draw(); });
    });
    // The canvases halve or double: keep the film and its controls on the screen.
    // (The compare view has no such checkbox: its two films are already side by side.)
    var sideBySide = this.part("side-by-side");
    if (sideBySide) { sideBySide.addEventListener("change", function () { self.fitToScreen(); }); }
    stage.addEventListener("keydown", function (event) {
      var c = centre(), step = 40, handled = true;
      switch (event.key) {
        case "+": case "=": self.zoomAt(1.25, c[0], c[1]); break;
        case "-": case "_": self.zoomAt(0.8, c[0], c[1]); break;
        case "0": self.fitToScreen(); break;
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

  // "Fit" asked for: the whole film, and the film and its controls scrolled onto the screen.
  Viewer.prototype.fitToScreen = function () {
    this.fit();
    this.root.scrollIntoView({ block: "nearest" });  // the film, controls and note fit (canvasSize)
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
    // While an outline is corrected with the brush or the eraser, one pointer draws on the film
    // (in film pixels) instead of panning it; the editor says whether it took the event.
    var edits = function (phase, event) {
      if (!self.editor || !self.image) { return false; }
      var box = self.canvases[0].getBoundingClientRect(), v = self.view;
      return self.editor.pointer(phase, (event.clientX - box.left - v.x) / v.scale,
                                 (event.clientY - box.top - v.y) / v.scale, event);
    };
    stage.addEventListener("pointerdown", function (event) {
      stage.setPointerCapture(event.pointerId);
      if (edits("down", event)) { return; }
      self.pointers[event.pointerId] = [event.clientX, event.clientY];
    });
    stage.addEventListener("pointermove", function (event) {
      if (edits("move", event)) { return; }
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
    var release = function (event) { edits("up", event); delete self.pointers[event.pointerId]; pinch = null; };
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
    // Linked viewers (compare.js): where one looks, normalised (null before its film loaded),
    // and moving another there.
    view: function (element) {
      var viewer = viewers.get(element);
      return viewer && viewer.image ? viewer.normalisedView() : null;
    },
    setView: function (element, view) {
      var viewer = viewers.get(element);
      if (viewer && view) { viewer.setView(view); }
    },
    // The outline editor (outline-editor.js): { layer: a canvas the film's size, pointer(phase,
    // x, y, event) -> true when it drew }, or null to show the model's outline again; redraw
    // after the layer changed.
    setEditor: function (element, editor) {
      var viewer = viewers.get(element);
      if (viewer) { viewer.editor = editor; viewer.draw(); }
    },
    redraw: function (element) {
      var viewer = viewers.get(element);
      if (viewer) { viewer.draw(); }
    },
  };
}());
