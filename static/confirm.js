// A form with data-confirm asks its question before it is sent; "Cancel"
// keeps it from being sent.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  }, true);
})();
