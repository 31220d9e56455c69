/* AltPref rating pages: keyboard map (the rater's own keys, or none), "hear it" speech, live
 * announcements, long-text expanders, the character counter, the htmx swap of the next item,
 * and keeping unsent answers in the browser across a lost session.
 * Everything here is an enhancement: the forms work without it.
 *
 * Length is counted in code points, Array.from(text).length, as the server counts it
 * (annotate/checks.py char_count); text.length would count an emoji as two. */
(function () {
  "use strict";

  var DEFAULT_KEYS = {
    choose_a: "1", choose_b: "2", choose_tie: "3", choose_bad: "4", next_row: "j", prev_row: "k",
    skip: "s", undo: "u", hear_a: "h", hear_b: "b", zoom: "z", help: "?"
  };
  var CHOICE_VALUE = { choose_a: "A", choose_b: "B", choose_tie: "tie", choose_bad: "both-bad" };
  var VALUE_ACTION = { "A": "choose_a", "B": "choose_b", "tie": "choose_tie", "both-bad": "choose_bad" };
  var STORE = "altpref:answers:";

  function settings() {
    var el = document.getElementById("key-settings");
    var keys = {}, enabled = true;
    if (el) {
      enabled = el.getAttribute("data-enabled") !== "false";
      try { keys = JSON.parse(el.getAttribute("data-keys") || "{}"); } catch (e) { keys = {}; }
    }
    for (var a in DEFAULT_KEYS) if (!keys[a]) keys[a] = DEFAULT_KEYS[a];
    return { enabled: enabled, keys: keys };
  }
  var prefs = settings();

  function countChars(text) { return Array.from(text || "").length; }

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/i.test(el.type);
  }

  function item() { return document.getElementById("judge-item"); }
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

  function choiceLabel(input) {
    var label = input.closest("label");
    var span = label && label.querySelector(".choice-label");
    return (span || label || input).textContent.replace(/\s+/g, " ").trim();
  }

  function pick(row, value) {
    var input = row.querySelector('input[type=radio][value="' + value + '"]');
    if (!input) return null;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return input;
  }

  // One answer on the current facet (then on to the next), or with `all` on the current facet
  // and every facet after it.
  function choose(action, all) {
    var row = currentRow();
    if (!row) return;
    var list = rows(), i = list.indexOf(row), value = CHOICE_VALUE[action];
    if (all) {
      var input = null, n = 0;
      for (var j = i; j < list.length; j++) { var got = pick(list[j], value); if (got) { n++; input = input || got; } }
      if (!input) return;
      input.focus();
      announce(choiceLabel(input) + " on " + n + (n === 1 ? " facet" : " facets") + ". Enter submits.");
      return;
    }
    var one = pick(row, value);
    if (!one) return;
    announce(row.querySelector(".facet-label").textContent + ": " + choiceLabel(one));
    if (i < list.length - 1) focusRow(list[i + 1]); else one.focus();
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
    if (form && !form.hidden) { form.requestSubmit ? form.requestSubmit() : form.submit(); return true; }
    return false;
  }

  // "Hear it" speaks what the page shows: the post text, then "Image," and the alt-text, read
  // from the visible elements (direction controls appear there as their names).
  function speak(lineId) {
    var details = document.getElementById(lineId);
    if (!details) return;
    var side = lineId.slice(-1);
    var context = document.getElementById("context-text");
    var alt = document.getElementById("alt-" + side);
    var text = ((context && !context.hasAttribute("data-empty") ? context.textContent.trim() + " " : "") +
      "Image, " + (alt ? alt.textContent.trim() : "")).replace(/\s+/g, " ").trim();
    if (window.speechSynthesis) {
      window.speechSynthesis.cancel();
      window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
    }
    details.classList.add("spoken");
    announce("Reading alt-text " + side + ".");
  }

  function openKeymap() {
    var dialog = document.getElementById("keymap");
    if (dialog && !dialog.open) dialog.showModal();
  }

  // Letters and digits by their physical key, so Shift+1 is "1" with Shift on any layout;
  // other keys by the character they type ("?").
  function baseKey(event) {
    var m = /^Digit(\d)$/.exec(event.code || "") || /^Numpad(\d)$/.exec(event.code || "");
    if (m) return m[1];
    m = /^Key([A-Z])$/.exec(event.code || "");
    if (m) return m[1].toLowerCase();
    return event.key && event.key.length === 1 ? event.key.toLowerCase() : event.key;
  }

  function actionFor(event) {
    var base = baseKey(event), typed = event.key, keys = prefs.keys;
    for (var a in keys) {
      var k = keys[a];
      if (/^[a-z0-9]$/i.test(k) ? base === k.toLowerCase() : typed === k) return a;
    }
    return null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var dialog = document.getElementById("keymap");
    if (dialog && dialog.open) return;
    if (event.key === "Enter") {
      var tag = event.target.tagName;
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      if (submitForm("judge-form")) event.preventDefault();
      return;
    }
    if (!prefs.enabled) return;  // WCAG 2.1.4: the rater turned single-key shortcuts off
    var action = actionFor(event);
    if (!action) return;
    var hasRows = rows().length > 0;
    if (CHOICE_VALUE[action]) {
      if (hasRows) { choose(action, event.shiftKey); event.preventDefault(); }
      return;
    }
    if (event.shiftKey && /^[a-z0-9]$/i.test(prefs.keys[action])) return;
    var done = true;
    if (action === "next_row" && hasRows) moveRow(1);
    else if (action === "prev_row" && hasRows) moveRow(-1);
    else if (action === "skip") done = submitForm("skip-form");
    else if (action === "undo") done = submitForm("undo-form");
    else if (action === "help") openKeymap();
    else if (action === "hear_a") speak("sr-A");
    else if (action === "hear_b") speak("sr-B");
    else if (action === "zoom") { var z = document.querySelector("[data-zoom]"); if (z) z.click(); else done = false; }
    else done = false;
    if (done) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var t = event.target.closest ? event.target.closest("button") : null;
    if (!t) return;
    if (t.hasAttribute("data-hear")) speak(t.getAttribute("data-hear"));
    if (t.hasAttribute("data-keymap-open")) openKeymap();
    if (t.hasAttribute("data-expand")) {
      var box = document.getElementById(t.getAttribute("aria-controls"));
      var open = t.getAttribute("aria-expanded") !== "true";
      t.setAttribute("aria-expanded", open ? "true" : "false");
      if (!t.hasAttribute("data-label")) t.setAttribute("data-label", t.textContent);
      t.textContent = open ? "Show less" : t.getAttribute("data-label");
      if (box) box.classList.toggle("expanded", open);
    }
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

  // --- Character counters (one rule: code points) ---------------------------------------
  function updateCount(area) {
    var out = document.querySelector('[data-count-for="' + area.id + '"]');
    var max = parseInt(area.getAttribute("data-count-max"), 10);
    var n = countChars(area.value);
    if (out) out.textContent = n + " of " + max + " characters";
    area.setAttribute("aria-invalid", n > max ? "true" : "false");
  }

  // --- Unsent answers survive a lost session (sessionStorage, per item) -----------------
  function storeKey() { var it = item(); return it ? STORE + it.getAttribute("data-assignment") : null; }

  function saveAnswers() {
    var form = document.getElementById("judge-form"), key = storeKey();
    if (!form || !key || item().getAttribute("data-mode") === "edit") return;
    var data = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[type=radio]:checked, textarea"), function (el) {
      if (el.value) data[el.name] = el.value;
    });
    try { window.sessionStorage.setItem(key, JSON.stringify(data)); } catch (e) { /* storage off */ }
  }

  function restoreAnswers() {
    var form = document.getElementById("judge-form"), key = storeKey();
    if (!form || !key) return 0;
    var raw = null;
    try {
      // Answers kept for other items are stale: those items were submitted or given up.
      for (var i = window.sessionStorage.length - 1; i >= 0; i--) {
        var k = window.sessionStorage.key(i);
        if (k && k.indexOf(STORE) === 0 && k !== key) window.sessionStorage.removeItem(k);
      }
      raw = window.sessionStorage.getItem(key);
    } catch (e) { return 0; }
    if (!raw || item().getAttribute("data-mode") === "edit" || form.querySelector("input[type=radio]:checked")) return 0;
    var data = {}, n = 0;
    try { data = JSON.parse(raw); } catch (e) { return 0; }
    for (var name in data) {
      var els = form.querySelectorAll('[name="' + name + '"]');
      Array.prototype.forEach.call(els, function (el) {
        if (el.type === "radio") { if (el.value === data[name]) { el.checked = true; n++; } }
        else if (el.tagName === "TEXTAREA" && !el.value) { el.value = data[name]; }
      });
    }
    return n;
  }

  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("#judge-form")) saveAnswers();
  });
  document.addEventListener("input", function (event) {
    var t = event.target;
    if (t.hasAttribute && t.hasAttribute("data-count-max")) updateCount(t);
    if (t.closest && t.closest("#judge-form")) saveAnswers();
  });

  // --- Keys shown on the page follow the rater's map ------------------------------------
  function showKeys(root) {
    var screen = document.getElementById("judge-screen");
    if (screen) screen.classList.toggle("keys-off", !prefs.enabled);
    Array.prototype.forEach.call(root.querySelectorAll("kbd[data-key-for]"), function (k) {
      var key = prefs.keys[k.getAttribute("data-key-for")];
      if (key) k.textContent = key;
    });
    Array.prototype.forEach.call(root.querySelectorAll(".choice input[type=radio]"), function (input) {
      var k = input.closest("label").querySelector("kbd"), action = VALUE_ACTION[input.value];
      if (k && action) k.textContent = prefs.keys[action];
    });
  }

  // A new item is ready (first load or swapped in): keys, counters, restored answers, focus on
  // the first facet, the outcome announced, the position panel refreshed.
  function itemReady(swapped, fresh) {
    var it = item();
    if (!it) return;
    showKeys(document);
    Array.prototype.forEach.call(document.querySelectorAll("[data-count-max]"), updateCount);
    var restored = fresh ? 0 : restoreAnswers();
    var message = it.getAttribute("data-flash") || "";
    if (restored) message = "Restored " + restored + " answers you had not submitted. " + message;
    if (swapped) {
      var first = rows()[0];
      if (first) focusRow(first);
      if (!fresh) document.body.dispatchEvent(new CustomEvent("altpref:saved", { bubbles: true }));
    }
    if (message) announce(message.trim());
    document.dispatchEvent(new CustomEvent("altpref:item-ready", {
      detail: { assignment: it.getAttribute("data-assignment") }
    }));
    // After a swap-in of a prefetched item, the next prefetch waits for the server to confirm
    // the submit (until then the item answered is still reserved, and is no "next").
    if (!fresh) window.setTimeout(prefetchNext, 100);
  }

  // --- The next item, prefetched ------------------------------------------------------
  // While the rater works on an item the server reserves and renders the next one
  // (rate_prefetch); Enter swaps it in at once and sends the answers alongside. If the send
  // fails, the item answered is put back as it was, answers and all.
  var prefetched = null;  // {forId, id, html, url, at}
  var PREFETCH_MAX_AGE_MS = 5 * 60 * 1000;  // well inside the reservation

  function csrfToken() {
    var input = document.querySelector("#judge-form [name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function prefetchNext() {
    var it = item();
    if (!it || !it.hasAttribute("data-prefetch-url")) return;
    var forId = it.getAttribute("data-assignment");
    if (prefetched && prefetched.forId === forId) return;
    if (busy) { busy.then(prefetchNext); return; }  // one writer at a time (see track)
    prefetched = null;
    track(fetch(it.getAttribute("data-prefetch-url"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) {
        if (r.status !== 200 || r.url.indexOf("/login/") >= 0) return null;
        return r.text().then(function (html) { return { html: html, url: r.headers.get("X-Item-Url") }; });
      })
      .then(function (got) {
        if (!got || !item() || item().getAttribute("data-assignment") !== forId) return;
        var tpl = document.createElement("template");
        tpl.innerHTML = got.html;
        var next = tpl.content.querySelector("#judge-item");
        if (!next) return;
        prefetched = { forId: forId, id: next.getAttribute("data-assignment"), html: got.html, url: got.url, at: Date.now() };
        var img = next.querySelector("img.post-image");
        if (img) { var pre = new Image(); pre.src = img.getAttribute("src"); }  // decoded before it shows
        document.dispatchEvent(new CustomEvent("altpref:prefetched", { detail: { assignment: prefetched.id } }));
      })
      .catch(function () { prefetched = null; }));
  }

  // One request that writes at a time from this page (a prefetch reserves, a submit stores):
  // SQLite, the embedded default, refuses a second writer rather than waiting for it.
  var busy = null;
  function track(promise) {
    var p = promise.then(function () { if (busy === p) busy = null; }, function () { if (busy === p) busy = null; });
    busy = p;
    return p;
  }

  function swapInPrefetched(form) {
    var old = item(), next = prefetched;
    prefetched = null;
    var data = new FormData(form);
    var tpl = document.createElement("template");
    tpl.innerHTML = next.html;
    var fresh = tpl.content.querySelector("#judge-item");
    fresh.setAttribute("data-flash", "");  // announced once the server confirms
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    if (next.url) window.history.pushState({}, "", next.url);
    itemReady(true, true);
    track(fetch(form.getAttribute("action"), {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Next-Item": next.id, "HX-Request": "true" }
    }).then(function (r) {
      if (r.status === 204) {
        try { window.sessionStorage.removeItem(STORE + old.getAttribute("data-assignment")); } catch (e) { /* off */ }
        var undo = document.getElementById("undo-form");
        if (undo && r.headers.get("X-Undo-Url")) { undo.setAttribute("action", r.headers.get("X-Undo-Url")); undo.hidden = false; }
        if (r.headers.get("X-Next-Item-Live") === "0") {
          window.location.assign(old.getAttribute("data-next-url") || window.location.href);
          return;
        }
        announce(r.headers.get("X-Outcome") || "Saved your answers. Next item.");
        document.body.dispatchEvent(new CustomEvent("altpref:saved", { bubbles: true }));
        prefetchNext();
        return;
      }
      // Not saved: the answered item comes back as it was.
      var shown = item();
      if (shown) shown.replaceWith(old);
      window.history.replaceState({}, "", old.getAttribute("data-item-url"));
      if (r.url.indexOf("/login/") >= 0) {
        saveAnswers();
        window.location.assign("/login/?next=" + encodeURIComponent(old.getAttribute("data-item-url")));
        return;
      }
      return r.text().then(function (html) {
        if (r.status === 403 && /data-sign-in/.test(html)) {
          saveAnswers();
          var tpl2 = document.createElement("template");
          tpl2.innerHTML = html;
          var page = tpl2.content.querySelector("#judge-item");
          if (page) { old.replaceWith(page); var link = page.querySelector("[data-sign-in]"); if (link) link.focus(); }
          return;
        }
        // Anything else: send the form the plain way; the server's page says what is wrong.
        var f = document.getElementById("judge-form");
        if (f) { f.removeAttribute("hx-post"); f.submit(); }
      });
    }).catch(function () {
      var shown = item();
      if (shown) shown.replaceWith(old);
      announce("Not saved: the connection failed. Your answers are still here; press Enter to try again.");
    }));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || form.id !== "judge-form") return;
    if (busy) {
      // A prefetch or the previous submit is still on its way: submit when it is back.
      event.preventDefault();
      event.stopPropagation();
      busy.then(function () { if (form.isConnected) form.requestSubmit(); });
      return;
    }
    if (!prefetched) return;
    var it = item();
    if (!it || prefetched.forId !== it.getAttribute("data-assignment")) return;
    if (Date.now() - prefetched.at > PREFETCH_MAX_AGE_MS || !form.checkValidity()) return;
    event.preventDefault();
    event.stopPropagation();  // before htmx's own submit handler on the form
    swapInPrefetched(form);
  }, true);

  // htmx's own submit (when nothing was prefetched) counts as a writer too.
  var htmxDone = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "judge-form") return;
    track(new Promise(function (resolve) { htmxDone = resolve; }));
  });
  document.addEventListener("htmx:afterRequest", function () {
    if (htmxDone) { var done = htmxDone; htmxDone = null; done(); }
  });

  var swapping = false;  // a response for #judge-item is being swapped in

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr, it = item();
    if (!it || !event.detail.target || event.detail.target.id !== "judge-item") return;
    // The session ran out: the request was sent on to the sign-in page. Go there, and come
    // back to this item; its answers are in sessionStorage.
    if ((xhr.responseURL || "").indexOf("/login/") >= 0) {
      event.detail.shouldSwap = false;
      saveAnswers();
      window.location.assign("/login/?next=" + encodeURIComponent(it.getAttribute("data-item-url")));
      return;
    }
    // A failed security check (CSRF): show its "sign in again" message in place of the item.
    if (xhr.status === 403 && /data-sign-in/.test(xhr.responseText)) {
      saveAnswers();
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (xhr.status > 400) {
      // Anything else: send the form the plain way and let the server's page say what is wrong.
      event.detail.shouldSwap = false;
      var form = document.getElementById("judge-form");
      if (form) { form.removeAttribute("hx-post"); form.submit(); }
      return;
    }
    swapping = event.detail.shouldSwap;
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (!swapping) return;
    swapping = false;
    var it = item();
    if (!it) return;
    if (it.querySelector("#judge-form")) itemReady(true);
    else { var link = it.querySelector("[data-sign-in]"); if (link) link.focus(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.message) {
      var message = live.dataset.message;
      live.textContent = "";
      window.setTimeout(function () { live.textContent = message; }, 150);
    }
    if (item()) itemReady(false);
    else showKeys(document);
    Array.prototype.forEach.call(document.querySelectorAll("[data-count-max]"), updateCount);
  });
})();
