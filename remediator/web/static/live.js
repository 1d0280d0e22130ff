// Live refresh without a build step: every element with data-live-url is re-fetched from
// that URL (a server-rendered fragment) and swapped in place. Stops while the tab is hidden,
// while the user types in a form inside it, or when the "Live" box is unticked.
(function () {
  "use strict";
  var toggle = document.getElementById("live-toggle");
  var note = document.getElementById("live-note");
  var seconds = 5;
  if (note && note.dataset.refresh) { seconds = parseInt(note.dataset.refresh, 10) || 5; }

  // Typing in a form, or having typed and clicked away, keeps its section as it is.
  function busy(element) {
    var active = document.activeElement;
    if (active && element.contains(active) && /INPUT|TEXTAREA|SELECT/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(element.querySelectorAll("input, textarea"), function (field) {
      return field.type !== "hidden" && field.type !== "checkbox" && field.value !== field.defaultValue;
    });
  }

  function refresh() {
    if (document.hidden || (toggle && !toggle.checked)) { return; }
    document.querySelectorAll("[data-live-url]").forEach(function (element) {
      if (busy(element)) { return; }
      fetch(element.dataset.liveUrl, { credentials: "same-origin", redirect: "error" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          element.innerHTML = html;
          if (note) { note.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC"; }
        })
        .catch(function (error) {
          if (note) { note.textContent = "live refresh failed (" + error.message + "): reload the page"; }
        });
    });
  }

  if (document.querySelector("[data-live-url]")) { setInterval(refresh, seconds * 1000); }
})();
