// Drag-and-drop and upload progress for the documents page's upload form.
// The form itself is htmx (hx-post, multipart); this only hands it files.
(function () {
  "use strict";
  function setup() {
    var form = document.getElementById("upload");
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector(".upload-progress");
    var maxBytes = Number(form.getAttribute("data-max-mb")) * 1024 * 1024;
    // A file over the limit is refused here, before it is sent.
    var send = function () {
      var kept = new DataTransfer();
      Array.prototype.forEach.call(input.files, function (f) {
        if (f.size > maxBytes) refuse(f.name + " is larger than " + form.getAttribute("data-max-mb") + " MB");
        else kept.items.add(f);
      });
      input.files = kept.files;
      if (input.files.length) htmx.trigger(form, "submit");
    };
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
    // A refusal stays until dismissed.
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest(".refusal .dismiss");
      if (b) b.closest(".refusal").remove();
    });
  }
  // refuse shows a refusal above the list, as the server's look.
  function refuse(reason) {
    var p = document.createElement("p");
    p.className = "alert refusal";
    p.setAttribute("role", "alert");
    p.textContent = reason + ". ";
    var b = document.createElement("button");
    b.type = "button";
    b.className = "link dismiss";
    b.textContent = "Dismiss";
    p.appendChild(b);
    document.getElementById("refusals").prepend(p);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
