// The chat of a document page: the question box sends on Enter (Shift+Enter
// for a new line), empties after sending, and the conversation follows the
// newest answer as it streams. The forms and streams themselves are htmx.
(function () {
  "use strict";
  function setup() {
    var form = document.getElementById("ask");
    if (!form) return;
    var box = form.querySelector("textarea");
    var messages = document.getElementById("messages");
    var problem = document.getElementById("chat-error");
    var follow = function () { messages.scrollTop = messages.scrollHeight; };
    box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        if (box.value.trim() !== "") htmx.trigger(form, "submit");
      }
    });
    form.addEventListener("htmx:afterRequest", function (e) {
      if (e.detail.successful) {
        form.reset();
        problem.hidden = true;
        var empty = document.getElementById("empty-chat");
        if (empty) empty.remove();
        follow();
      } else {
        // Keep the question in the box, and say why it was not sent.
        problem.textContent = (e.detail.xhr && e.detail.xhr.status === 422)
          ? errorText(e.detail.xhr.responseText) : "The question could not be sent. Please try again.";
        problem.hidden = false;
      }
    });
    messages.addEventListener("htmx:sseMessage", follow);
    messages.addEventListener("htmx:sseError", function (e) {
      var msg = e.target.closest && e.target.closest(".msg");
      if (msg) msg.classList.add("reconnecting");
    });
    follow();
  }
  // errorText pulls the message out of silo's error page.
  function errorText(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var p = doc.querySelector(".error-page p:not(.code)");
    return p ? p.textContent : "The question could not be sent.";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
