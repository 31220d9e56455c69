// The round page's chart: a marker's value is read out on hover and on focus; arrow keys move
// along a line (Left/Right, Home/End) and between lines (Up/Down), one Tab stop per line. The
// status section is replaced every 2 s while a round runs, so the focused marker is found
// again after each swap. Delegated listeners: they survive htmx swaps.
(function () {
  "use strict";

  function readout() { return document.getElementById("curve-readout"); }

  function show(point) {
    var out = readout();
    if (out && point) { out.textContent = point.getAttribute("aria-label"); }
  }

  function isPoint(el) { return el && el.classList && el.classList.contains("curve-point"); }

  function moveTo(from, to) {
    if (!to) { return; }
    from.setAttribute("tabindex", "-1");
    to.setAttribute("tabindex", "0");
    to.focus();
  }

  document.addEventListener("focusin", function (event) {
    if (isPoint(event.target)) { show(event.target); }
  });
  // A marker focused before this deferred script ran (a fast keyboard user, a slow load) is
  // read out now: its focusin came before the listener.
  if (isPoint(document.activeElement)) { show(document.activeElement); }
  document.addEventListener("mouseover", function (event) {
    if (isPoint(event.target)) { show(event.target); }
  });

  document.addEventListener("keydown", function (event) {
    var point = event.target;
    if (!isPoint(point)) { return; }
    var series = point.parentNode;
    var points = Array.prototype.slice.call(series.querySelectorAll(".curve-point"));
    var i = points.indexOf(point);
    var target = null;
    if (event.key === "ArrowRight") { target = points[i + 1]; }
    else if (event.key === "ArrowLeft") { target = points[i - 1]; }
    else if (event.key === "Home") { target = points[0]; }
    else if (event.key === "End") { target = points[points.length - 1]; }
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var all = Array.prototype.slice.call(series.parentNode.querySelectorAll(".series"));
      var next = all[all.indexOf(series) + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        var step = point.getAttribute("data-step");
        target = next.querySelector('.curve-point[data-step="' + step + '"]') ||
          next.querySelector(".curve-point");
      }
    } else { return; }
    event.preventDefault();
    moveTo(point, target);
  });

  // Keep the reader's place across the polling swaps.
  var kept = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    kept = isPoint(active)
      ? { series: active.parentNode.getAttribute("data-series"), step: active.getAttribute("data-step") }
      : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!kept) { return; }
    var groups = document.querySelectorAll("#round-curve .series");
    for (var g = 0; g < groups.length; g++) {
      if (groups[g].getAttribute("data-series") === kept.series) {
        var point = groups[g].querySelector('.curve-point[data-step="' + kept.step + '"]');
        if (point) {
          groups[g].querySelectorAll(".curve-point").forEach(function (p) { p.setAttribute("tabindex", "-1"); });
          point.setAttribute("tabindex", "0");
          point.focus();
        }
      }
    }
    kept = null;
  });
})();
