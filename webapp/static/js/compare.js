// The compare view (cases/compare.html): the prior film and this film side by side, zoom and
// pan in step. Zooming or dragging one (mouse, touch or keys) moves the other to the same place,
// in coordinates normalised to each film (viewer.js: normalisedView), so that films of different
// sizes stay matched: the same zoom relative to "fit", the same fraction of the film at the
// centre. Each film's outline is drawn where the model found one (data-mask-url).
// No framework, no CDN; loaded after viewer-layers.js and viewer.js.
(function () {
  "use strict";
  var group = document.querySelector("[data-compare]");
  if (!group || !window.TriageViewer) { return; }
  var viewers = Array.prototype.slice.call(group.querySelectorAll("[data-viewer]"));

  viewers.forEach(function (element) {
    if (element.dataset.maskUrl) { window.TriageViewer.showMask(element, element.dataset.maskUrl); }
    // One moved: the others follow (they do not tell back: viewer.js, moved).
    element.addEventListener("triage:view", function (event) {
      viewers.forEach(function (other) {
        if (other !== element) { window.TriageViewer.setView(other, event.detail); }
      });
    });
    // A film that loads after the reader moved the other one joins it where it is.
    element.addEventListener("triage:ready", function () {
      viewers.forEach(function (other) {
        var view = other !== element ? window.TriageViewer.view(other) : null;
        if (view && !view.fitted) { window.TriageViewer.setView(element, view); }
      });
    });
  });
}());
