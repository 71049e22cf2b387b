// Worklist page: ask the server for the same rows (same filters, order and page) every few
// seconds and swap them in when they changed, so a new result moves up without a reload. The
// rows are rendered by the server (cases/_worklist_rows.html), so page and update agree.
(function () {
  "use strict";
  var table = document.getElementById("worklist");
  if (!table) { return; }
  var body = table.tBodies[0], count = document.getElementById("worklist-count");
  var last = null;

  function poll() {
    fetch(table.dataset.jsonUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (payload) {
        if (payload.html !== last) {
          if (last !== null) { body.innerHTML = payload.html; }
          last = payload.html;
          count.textContent = payload.count + (payload.count === 1 ? " case" : " cases") + " · updated live";
          table.dataset.updates = String(Number(table.dataset.updates || 0) + 1);
        }
        window.setTimeout(poll, 3000);
      })
      .catch(function () { window.setTimeout(poll, 10000); });  // offline for a moment: slower
  }
  poll();
}());
