// Case page: poll the status view about once a second; when an image's job is done, swap the
// X-ray for its overlay and show the result; when it failed, show the reason. Stops when every
// image has finished. No framework, no CDN. Status, result and reason sit in live regions
// (detail.html), so a screen reader announces them as they arrive.
(function () {
  "use strict";
  var root = document.getElementById("case");
  if (!root) { return; }
  var statusUrl = root.dataset.statusUrl;
  var shown = {};

  // Set text only when it changes: each change inside the page's live regions (role="status",
  // aria-live="polite") is read out by screen readers, and the poll runs every second.
  function setText(element, text) {
    if (element.textContent !== text) { element.textContent = text; }
  }

  // Findings in words, as the server wrote them (display.findings_rows): what, value, how measured.
  function showFindings(list, rows) {
    list.textContent = "";
    rows.forEach(function (row) {
      var term = document.createElement("dt"), value = document.createElement("dd");
      var how = document.createElement("small");
      term.textContent = row[0];
      value.textContent = row[1] + " ";
      how.textContent = "(" + row[2] + ")";
      value.appendChild(how);
      list.appendChild(term); list.appendChild(value);
    });
    list.hidden = rows.length === 0;
  }

  // The change since the patient's prior film, as the server wrote it
  // (comparison_display.comparison_lines); its links only where the reader may open the prior.
  function showComparison(paragraph, line) {
    if (!paragraph || !line) { return; }
    paragraph.textContent = "";
    var text = document.createElement("strong");
    text.textContent = line.text;
    paragraph.appendChild(text);
    [[line.prior_url, "The prior film"], [line.compare_url, "Compare side by side"]].forEach(function (link) {
      if (!link[0]) { return; }
      var anchor = document.createElement("a");
      anchor.href = link[0];
      anchor.textContent = link[1];
      paragraph.appendChild(document.createTextNode(" · "));
      paragraph.appendChild(anchor);
    });
    paragraph.hidden = false;
  }

  function update(image) {
    var section = document.getElementById("image-" + image.id);
    if (!section) { return; }
    var part = function (role) { return section.querySelector('[data-role="' + role + '"]'); };
    var badge = part("status");
    setText(badge, image.status);
    badge.className = "status status-" + image.status;
    if (image.status === "failed") {
      setText(part("error"), image.error);
      part("error").hidden = false;
    }
    if (image.status === "done" && !shown[image.id]) {
      shown[image.id] = true;
      part("review-first").hidden = !image.review_first;
      // The review form waits for a result; reveal it when the result arrives on an open page.
      var form = part("review-form"), pending = part("review-pending");
      if (form) { form.hidden = false; }
      if (pending) { pending.hidden = true; }
      showFindings(part("findings"), image.findings_rows || []);
      showComparison(part("comparison"), image.comparison_line);
      var viewer = section.querySelector("[data-viewer]");
      if (viewer && window.TriageViewer && image.mask_url) { window.TriageViewer.showMask(viewer, image.mask_url); }
      // The sentence is made by the server (webapp.cases.services.display.result_text), with
      // the probability threshold of the model that gave the result.
      setText(part("result"), image.result_text);
      var picture = part("picture");
      picture.onload = function () { picture.dataset.overlayLoaded = "1"; };
      picture.id = "overlay-" + image.id;
      picture.alt = "Overlay: " + (image.positive ? "pneumothorax outlined" : "no pneumothorax outlined");
      picture.src = image.overlay_url;
      part("caption").textContent = image.positive
        ? "Yellow outline and red tint: the area the model marks as pneumothorax."
        : "The model marks no pneumothorax on this image.";
      part("overlay-download").href = image.overlay_url + "?download=1";
      part("mask-download").href = image.mask_url + "?download=1";
      part("downloads").hidden = false;
    }
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (payload) {
        payload.images.forEach(update);
        var finished = payload.images.every(function (i) { return i.status === "done" || i.status === "failed"; });
        root.dataset.caseStatus = payload.status;
        if (!finished) { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });  // network blip: keep trying, slower
  }
  poll();
}());
