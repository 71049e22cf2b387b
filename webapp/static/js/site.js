/* Behaviour every page may use, declared in the markup instead of inline handlers (the
   Content-Security-Policy runs no inline script, settings/_csp.py):
   - <form data-confirm="question">: asks before submitting (deleting a case);
   - <button data-action="print">: prints the page (the printable report). */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-action=print]") : null;
    if (button) { window.print(); }
  });
})();
