/* AltPref keyboard map, live announcements and "hear it" speech for the rating pages.
 * Everything here is an enhancement: the forms work without it. */
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/i.test(el.type);
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(".facet-row")); }

  function currentRow() {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest(".facet-row") : null;
    if (row) return row;
    var all = rows();
    for (var i = 0; i < all.length; i++) {
      if (!all[i].querySelector("input:checked")) return all[i];
    }
    return all[0] || null;
  }

  function focusRow(row) {
    if (!row) return;
    var target = row.querySelector("input:checked") || row.querySelector("input[type=radio]");
    if (target) target.focus();
  }

  function moveRow(delta) {
    var all = rows(), row = currentRow(), i = all.indexOf(row);
    if (i < 0) return;
    focusRow(all[Math.min(all.length - 1, Math.max(0, i + delta))]);
  }

  function choose(key) {
    var row = currentRow();
    if (!row) return;
    var input = row.querySelector('input[data-key="' + key + '"]');
    if (!input) return;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    var all = rows(), i = all.indexOf(row);
    announce(row.querySelector(".facet-label").textContent + ": " + input.parentNode.textContent.replace(/\s+/g, " ").trim());
    if (i < all.length - 1) focusRow(all[i + 1]); else input.focus();
  }

  function announce(text) {
    var live = document.getElementById("live");
    if (!live) return;
    live.textContent = "";
    // A fresh text node after a tick is what makes screen readers speak it again.
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function submitForm(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); return true; }
    return false;
  }

  function speak(lineId) {
    var line = document.getElementById(lineId);
    if (!line) return;
    var text = line.querySelector(".sr-line").textContent;
    if (window.speechSynthesis) {
      window.speechSynthesis.cancel();
      window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
    }
    line.classList.add("spoken");
    announce("Reading: " + text);
  }

  function openKeymap() {
    var dialog = document.getElementById("keymap");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var dialog = document.getElementById("keymap");
    if (dialog && dialog.open) return;
    var key = event.key;
    var hasRows = rows().length > 0;
    if (hasRows && /^[1-4]$/.test(key)) { choose(key); event.preventDefault(); return; }
    if (hasRows && (key === "ArrowDown" || key === "j")) { moveRow(1); event.preventDefault(); return; }
    if (hasRows && (key === "ArrowUp" || key === "k")) { moveRow(-1); event.preventDefault(); return; }
    if (key === "Enter") {
      var tag = event.target.tagName;
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      if (submitForm("judge-form")) event.preventDefault();
      return;
    }
    if (key === "s") { if (submitForm("skip-form")) event.preventDefault(); return; }
    if (key === "u") { if (submitForm("undo-form")) event.preventDefault(); return; }
    if (key === "?") { openKeymap(); event.preventDefault(); return; }
    if (key === "h") { speak("sr-A"); event.preventDefault(); return; }
    if (key === "H") { speak("sr-B"); event.preventDefault(); return; }
    if (key === "z") { var z = document.querySelector("[data-zoom]"); if (z) { z.click(); event.preventDefault(); } }
  });

  document.addEventListener("click", function (event) {
    var t = event.target.closest ? event.target.closest("button") : null;
    if (!t) return;
    if (t.hasAttribute("data-hear")) speak(t.getAttribute("data-hear"));
    if (t.hasAttribute("data-keymap-open")) openKeymap();
    if (t.hasAttribute("data-zoom")) {
      var img = document.getElementById(t.getAttribute("aria-controls"));
      var on = t.getAttribute("aria-pressed") !== "true";
      t.setAttribute("aria-pressed", on ? "true" : "false");
      if (img) img.classList.toggle("zoomed", on);
    }
    if (t.hasAttribute("data-copy-to")) {
      var to = document.getElementById(t.getAttribute("data-copy-to"));
      var from = document.getElementById(t.getAttribute("data-copy-from"));
      if (to && from) {
        to.value = from.textContent;
        to.dispatchEvent(new Event("input", { bubbles: true }));
        to.focus();
        announce("Suggestion copied into the editor.");
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.message) {
      var message = live.dataset.message;
      live.textContent = "";
      window.setTimeout(function () { live.textContent = message; }, 150);
    }
  });
})();
