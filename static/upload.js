// Drag-and-drop and upload progress for the documents page's upload form.
// The form itself is htmx (hx-post, multipart); this only hands it files.
(function () {
  "use strict";
  function setup() {
    var form = document.getElementById("upload");
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector(".upload-progress");
    var send = function () { if (input.files.length) htmx.trigger(form, "submit"); };
    input.addEventListener("change", send);
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (e) { e.preventDefault(); form.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      form.addEventListener(type, function () { form.classList.remove("dragging"); });
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; send(); }
    });
    form.addEventListener("htmx:xhr:progress", function (e) {
      if (e.detail.lengthComputable) bar.value = Math.round(100 * e.detail.loaded / e.detail.total);
    });
    form.addEventListener("htmx:afterRequest", function () { bar.value = 0; form.reset(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
