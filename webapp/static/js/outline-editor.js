// The outline editor of the case page (reviews/_outline.html): a clinician corrects the model's
// outline on the film at full resolution. The outline is a canvas the film's size, drawn by the
// viewer over the film at its zoom (TriageViewer.setEditor); a brush adds to it and an eraser
// takes away, with a size in film pixels; Undo steps back one stroke; "No pneumothorax" empties
// it. Save sends it as a black-and-white PNG the film's size (the server checks that by content
// and keeps it as a new version: the model's outline is never changed).
//
// It starts from the latest corrected outline, else the model's. No framework, no CDN, no
// inline script (the Content-Security-Policy); every control is a button or an input.
(function () {
  "use strict";

  var PAINT = [0, 160, 255];  // the outline being drawn: blue, unlike the model's red and yellow
  var UNDO_STEPS = 12;         // each step keeps a copy of the outline: bounded memory

  function Editor(root) {
    this.root = root;
    this.viewer = root.closest("section.image").querySelector("[data-viewer]");  // the film's
    this.width = Number(root.dataset.width);
    this.height = Number(root.dataset.height);
    this.tool = "brush";
    this.undo = [];
    this.part = function (role) { return root.querySelector('[data-outline-role="' + role + '"]'); };
    this.action = function (name) { return root.querySelector('[data-outline-action="' + name + '"]'); };
    this.bind();
    // A result that arrives while the page is open (case.js shows its outline): now it can be
    // corrected.
    var self = this;
    if (this.viewer && window.MutationObserver) {
      new MutationObserver(function () {
        if (self.viewer.dataset.maskLoaded === "1") { self.action("start").hidden = false; }
      }).observe(this.viewer, { attributes: true, attributeFilter: ["data-mask-loaded"] });
    }
  }

  Editor.prototype.say = function (text) { this.part("message").textContent = text; };

  Editor.prototype.bind = function () {
    var self = this;
    this.action("start").addEventListener("click", function () { self.start(); });
    this.action("close").addEventListener("click", function () { self.close(); });
    this.action("undo").addEventListener("click", function () { self.stepBack(); });
    this.action("clear").addEventListener("click", function () { self.clear(); });
    this.action("save").addEventListener("click", function () { self.save(); });
    this.root.querySelectorAll("[data-outline-tool]").forEach(function (button) {
      button.addEventListener("click", function () { self.choose(button.dataset.outlineTool); });
    });
    var size = this.part("size");
    size.addEventListener("input", function () { self.part("size-value").textContent = size.value; });
  };

  Editor.prototype.choose = function (tool) {
    this.tool = tool;
    this.root.querySelectorAll("[data-outline-tool]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.outlineTool === tool));
    });
    this.root.dataset.tool = tool;
  };

  // Opens the editor on the latest corrected outline, else the model's.
  Editor.prototype.start = function () {
    var self = this;
    var url = this.root.dataset.hasOutline === "1" ? this.root.dataset.outlineUrl : this.root.dataset.modelMaskUrl;
    this.action("start").disabled = true;
    this.say("Loading the outline…");
    window.TriageLayers.loadImage(url + "?t=" + Date.now()).then(function (mask) {
      if (mask.naturalWidth !== self.width || mask.naturalHeight !== self.height) {
        throw new Error("size");
      }
      self.layer = document.createElement("canvas");
      self.layer.width = self.width; self.layer.height = self.height;
      self.paintFrom(mask);
      self.undo = [];
      self.action("undo").disabled = true;
      self.action("start").hidden = true;
      self.part("tools").hidden = false;
      self.choose("brush");
      window.TriageViewer.setEditor(self.viewer, { layer: self.layer, pointer: self.pointer.bind(self) });
      self.root.dataset.editing = "1";
      self.say(self.root.dataset.hasOutline === "1" ? "Editing the latest corrected outline."
                                                    : "Editing a copy of the model's outline.");
      self.action("save").focus();
    }).catch(function () {
      self.action("start").disabled = false;
      self.say("The outline could not be loaded; it can be corrected once the analysis is done.");
    });
  };

  // The mask PNG (white on black) becomes the blue layer, transparent where there is nothing.
  Editor.prototype.paintFrom = function (mask) {
    var context = this.layer.getContext("2d");
    context.drawImage(mask, 0, 0);
    var pixels = context.getImageData(0, 0, this.width, this.height), data = pixels.data;
    for (var i = 0; i < data.length; i += 4) {
      var inside = data[i] > 127;
      data[i] = PAINT[0]; data[i + 1] = PAINT[1]; data[i + 2] = PAINT[2];
      data[i + 3] = inside ? 255 : 0;
    }
    context.putImageData(pixels, 0, 0);
  };

  Editor.prototype.close = function () {
    window.TriageViewer.setEditor(this.viewer, null);
    this.layer = null;
    this.undo = [];
    this.part("tools").hidden = true;
    this.action("start").hidden = false;
    this.action("start").disabled = false;
    delete this.root.dataset.editing;
    this.say("");
    this.action("start").focus();
  };

  Editor.prototype.remember = function () {
    var context = this.layer.getContext("2d");
    this.undo.push(context.getImageData(0, 0, this.width, this.height));
    if (this.undo.length > UNDO_STEPS) { this.undo.shift(); }
    this.action("undo").disabled = false;
  };

  Editor.prototype.stepBack = function () {
    if (!this.layer || !this.undo.length) { return; }
    this.layer.getContext("2d").putImageData(this.undo.pop(), 0, 0);
    this.action("undo").disabled = this.undo.length === 0;
    window.TriageViewer.redraw(this.viewer);
  };

  // "No pneumothorax": nothing outlined (undoable, like a stroke).
  Editor.prototype.clear = function () {
    if (!this.layer) { return; }
    this.remember();
    this.layer.getContext("2d").clearRect(0, 0, this.width, this.height);
    window.TriageViewer.redraw(this.viewer);
    this.say("The outline is empty: save to record no pneumothorax on this film.");
  };

  // Called by the viewer with film coordinates; true when the brush or the eraser took it (the
  // "Move the film" tool leaves the pointer to the viewer, which pans).
  Editor.prototype.pointer = function (phase, x, y) {
    if (!this.layer || this.tool === "pan") { return false; }
    if (phase === "down") {
      this.remember();
      this.last = [x, y];
      this.stroke(x, y);
      return true;
    }
    if (!this.last) { return false; }  // no stroke under way
    if (phase === "move") { this.stroke(x, y); return true; }
    this.last = null;  // up
    return true;
  };

  // A round-capped line from the last point: a fast stroke leaves no gaps.
  Editor.prototype.stroke = function (x, y) {
    var context = this.layer.getContext("2d"), size = Number(this.part("size").value);
    context.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
    context.strokeStyle = context.fillStyle = "rgb(" + PAINT.join(",") + ")";
    context.lineWidth = size;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.moveTo(this.last[0], this.last[1]);
    context.lineTo(x, y);
    context.stroke();
    context.beginPath();
    context.arc(x, y, size / 2, 0, 2 * Math.PI);
    context.fill();
    context.globalCompositeOperation = "source-over";
    this.last = [x, y];
    window.TriageViewer.redraw(this.viewer);
  };

  // The layer as the server wants it: opaque, 255 where drawn (half covered or more), else 0.
  Editor.prototype.maskBlob = function () {
    var width = this.width, height = this.height;
    var source = this.layer.getContext("2d").getImageData(0, 0, width, height).data;
    var out = document.createElement("canvas");
    out.width = width; out.height = height;
    var context = out.getContext("2d"), pixels = context.createImageData(width, height);
    for (var i = 0; i < source.length; i += 4) {
      var value = source[i + 3] >= 128 ? 255 : 0;
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = value;
      pixels.data[i + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
    return new Promise(function (resolve, reject) {
      out.toBlob(function (blob) { return blob ? resolve(blob) : reject(new Error("png")); }, "image/png");
    });
  };

  Editor.prototype.save = function () {
    if (!this.layer) { return; }
    var self = this, button = this.action("save");
    button.disabled = true;
    this.say("Saving…");
    this.maskBlob().then(function (blob) {
      var form = new FormData();
      form.append("mask", blob, "outline.png");
      form.append("csrfmiddlewaretoken", self.root.querySelector("[name=csrfmiddlewaretoken]").value);
      return fetch(self.root.dataset.outlineUrl, { method: "POST", body: form, credentials: "same-origin",
                                                   headers: { "Accept": "application/json" } });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw new Error(body.error || "The outline was not saved (" + response.status + ")."); }
        return body;
      });
    }).then(function (body) {
      self.root.dataset.hasOutline = "1";
      self.root.dataset.savedVersion = String(body.version);
      self.part("summary").textContent = "Outline corrected by " + body.corrected_by +
        (body.empty ? ": no pneumothorax" : "") + " (version " + body.version + "; the model's own outline is kept).";
      self.say("Saved as version " + body.version + ".");
    }).catch(function (error) {
      self.say(error.message || "The outline was not saved.");
    }).then(function () { button.disabled = false; });
  };

  document.querySelectorAll("[data-outline-editor]").forEach(function (element) {
    if (window.TriageViewer && window.TriageViewer.setEditor) { new Editor(element); }
  });
}());
