// The chat of a document page: the question box sends on Enter (Shift+Enter
// for a new line), empties after sending, and the conversation follows the
// newest answer as it streams. The forms and streams themselves are htmx.
// A source clicked shows its page in the pages pane (#page-N) with the
// source's snippet highlighted, where the server finds it on the page; a
// page opened from a source of an answer across documents (?hl=…#page-N)
// shows it the same way.
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
    // Copy puts an answer's text on the clipboard.
    messages.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest(".msg .copy");
      if (!b) return;
      var body = b.closest(".msg").querySelector(".msg-body");
      navigator.clipboard.writeText(body ? body.innerText : "").then(
        function () { b.textContent = "Copied"; },
        function () { b.textContent = "Copy failed"; });
    });
    // A finished answer replaces its streaming one: follow it, sources and all.
    messages.addEventListener("htmx:afterSwap", follow);
    // A source shows its page in the pages pane: the pane scrolls, not the
    // window, and the focus stays on the source.
    messages.addEventListener("click", function (e) {
      var link = e.target.closest && e.target.closest('a[href^="#page-"]');
      if (!link) return;
      e.preventDefault();
      show("pages");
      showPage(link.getAttribute("href").slice(1));
      // A [p. N] in the answer highlights what its source of that page does.
      var snippet = link.getAttribute("data-snippet");
      var msg = link.closest(".msg");
      var source = !snippet && msg && msg.querySelector('.sources a.cite[href="' + link.getAttribute("href") + '"][data-snippet]');
      if (source) snippet = source.getAttribute("data-snippet");
      highlight(link.getAttribute("href").slice(1), snippet);
    });
    // Ticking a document to ask means asking only the ones ticked.
    form.addEventListener("change", function (e) {
      var some = form.querySelector('input[name="scope"][value="some"]');
      if (some && e.target.name === "documents" && e.target.checked) some.checked = true;
    });
    follow();
  }
  // On a narrow screen the document page shows the conversation or the
  // pages, as its tabs say; show switches to one ("chat" or "pages").
  // Page images fit the pane's width or show at twice it.
  function setupViews() {
    var layout = document.getElementById("layout");
    if (!layout) return;
    layout.setAttribute("data-view", "chat");
    layout.querySelectorAll('.views [role="tab"]').forEach(function (tab) {
      tab.addEventListener("click", function () { show(tab.id === "tab-pages" ? "pages" : "chat"); });
    });
    var pages = document.getElementById("pages");
    layout.querySelectorAll(".zoom button").forEach(function (b) {
      b.addEventListener("click", function () {
        pages.classList.toggle("zoomed", b.getAttribute("data-zoom") === "2");
        layout.querySelectorAll(".zoom button").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
        var hl = pages.querySelector(".hl-layer .hl"); // keep a highlighted snippet in view
        if (hl) hl.scrollIntoView({ block: "center", inline: "start" });
      });
    });
  }
  function show(view) {
    var layout = document.getElementById("layout");
    if (!layout) return;
    layout.setAttribute("data-view", view);
    document.getElementById("tab-chat").setAttribute("aria-selected", String(view === "chat"));
    document.getElementById("tab-pages").setAttribute("aria-selected", String(view === "pages"));
  }
  // showPage marks the figure pageID as the page shown, names it in the
  // address (#page-N) and scrolls the pages pane to it.
  function showPage(pageID) {
    var figure = document.getElementById(pageID);
    if (!figure) return;
    document.querySelectorAll(".page-image.current").forEach(function (f) { f.classList.remove("current"); });
    figure.classList.add("current");
    history.replaceState(null, "", "#" + pageID);
    var pane = figure.closest(".pages");
    if (pane) pane.scrollTo({ top: pane.scrollTop + figure.getBoundingClientRect().top - pane.getBoundingClientRect().top });
  }
  // A source of an answer across documents opens its document's page here
  // at #page-N with ?hl= the snippet: highlighted as if clicked.
  function openedAtSource() {
    var snippet = new URLSearchParams(location.search).get("hl");
    if (!snippet || location.hash.indexOf("#page-") !== 0) return;
    show("pages");
    showPage(location.hash.slice(1));
    highlight(location.hash.slice(1), snippet);
  }
  var asked = 0; // the latest highlight asked for; earlier answers are dropped
  // highlight removes the highlights shown and, for a source with a
  // snippet, asks where the snippet lies on its page (the figure pageID)
  // and lays a box over each line of it.
  function highlight(pageID, snippet) {
    var mine = ++asked;
    document.querySelectorAll(".page-image .hl-layer").forEach(function (l) { l.remove(); });
    var figure = document.getElementById(pageID);
    var img = figure && figure.querySelector("img");
    if (!img || !snippet) return;
    fetch(img.getAttribute("src") + "/boxes?text=" + encodeURIComponent(snippet), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) {
        if (!found || !found.boxes.length || mine !== asked) return;
        var layer = document.createElement("div");
        layer.className = "hl-layer";
        found.boxes.forEach(function (b) {
          var box = document.createElement("div");
          box.className = "hl";
          box.style.left = b.x * 100 + "%";
          box.style.top = b.y * 100 + "%";
          box.style.width = b.w * 100 + "%";
          box.style.height = b.h * 100 + "%";
          layer.appendChild(box);
        });
        figure.appendChild(layer);
        // The layer takes the image's proportions, so the boxes' shares
        // of it are shares of the page; then the pages scroll to bring the
        // snippet's first line a third of the way down, not the page's top.
        var show = function () {
          if (mine !== asked || !layer.isConnected) return; // another source was clicked meanwhile
          layer.style.aspectRatio = (img.naturalWidth || img.width) + " / " + (img.naturalHeight || img.height);
          var pane = figure.closest(".pages");
          if (!pane) return;
          var top = layer.firstChild.getBoundingClientRect().top - pane.getBoundingClientRect().top;
          pane.scrollTo({ top: pane.scrollTop + top - pane.clientHeight / 3 });
        };
        if (img.complete) show(); else img.addEventListener("load", show, { once: true });
      })
      .catch(function () { /* no highlight; the page still shows */ });
  }
  // errorText pulls the message out of silo's error page.
  function errorText(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var p = doc.querySelector(".error-page p:not(.code)");
    return p ? p.textContent : "The question could not be sent.";
  }
  function start() { setupViews(); setup(); openedAtSource(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
