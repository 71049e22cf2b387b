/* Starts Redoc on /api/redoc/ (webapp/templates/api/redoc.html) from a file, not an inline
   script, so that the page's Content-Security-Policy needs no 'unsafe-inline' for scripts. */
(function () {
  "use strict";
  // The Redoc bundle's menu shows "API docs by Redocly" with a logo from cdn.redoc.ly. No page
  // of this site loads anything from another host (the policy would block it, with an error in
  // the console): an image whose source is on another origin is never given that source, by
  // attribute or by property, whichever the bundle's React uses.
  function elsewhere(value) {
    var url = new URL(String(value), document.baseURI);
    return url.protocol !== "data:" && url.protocol !== "blob:" && url.origin !== window.location.origin;
  }
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && elsewhere(value)) { return; }
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true, enumerable: src.enumerable, get: src.get,
    set: function (value) { if (!elsewhere(value)) { src.set.call(this, value); } }
  });
  var container = document.getElementById("redoc-container");
  window.Redoc.init(container.dataset.schemaUrl, JSON.parse(container.dataset.settings), container);
})();
