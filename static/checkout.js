// Small enhancements of the attendee pages; every page works without them.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";

  // An error summary or alert takes focus, so a screen reader reads it first.
  function focusProblem() {
    var target = document.getElementById("error-summary") || document.querySelector(".alert[tabindex]");
    if (target) target.focus();
  }

  // Money written as checkout/formatting.py writes it: "€18.50" / "18,50 €".
  function money(cents, symbol) {
    var units = String(Math.floor(cents / 100)), rest = String(cents % 100).padStart(2, "0");
    if (lang.indexOf("pt") === 0) return units.replace(/\B(?=(\d{3})+(?!\d))/g, " ") + "," + rest + " " + symbol;
    return symbol + (symbol.length === 1 ? "" : " ") + units.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + rest;
  }

  // The running total while choosing tickets.
  function runningTotal(form) {
    var out = form.querySelector("[data-total]");
    if (!out) return;
    function update() {
      var cents = 0;
      form.querySelectorAll("input[data-price]").forEach(function (input) {
        var n = parseInt(input.value, 10);
        if (n > 0) cents += n * parseInt(input.dataset.price, 10);
      });
      out.textContent = money(cents, form.dataset.symbol);
    }
    form.addEventListener("input", update);
    update();
  }

  // The ticket hold counts down; a minute before the end it says so (aria-live), and at
  // the end it offers to start again with what was typed.
  function countdown(hold) {
    var left = parseInt(hold.dataset.holdSeconds, 10);
    if (!(left > 0)) return;
    var end = Date.now() + left * 1000;
    var text = hold.querySelector("p.muted");
    var warning = hold.querySelector(".hold-warning");
    var warned = false;
    function tick() {
      var seconds = Math.max(0, Math.round((end - Date.now()) / 1000));
      var clock = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
      if (text) text.textContent = hold.dataset.textLeft.replace("{time}", clock);
      if (seconds <= 60 && !warned) { warned = true; warning.textContent = hold.dataset.textWarning; }
      if (seconds === 0) {
        if (text) text.hidden = true;
        warning.textContent = hold.dataset.textExpired;
        document.querySelectorAll(".hold-restart").forEach(function (el) { el.hidden = false; });
        return;
      }
      setTimeout(tick, 1000);
    }
    tick();
  }

  // While a payment is awaited, the order's status is fetched again every few seconds and
  // swapped in place; the region is aria-live="polite", so the news is read when it comes.
  function poll(region) {
    var url = region.dataset.poll;
    function again() {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) return setTimeout(again, 10000);
          var next = document.createElement("div");
          next.innerHTML = html;
          var fresh = next.querySelector(".live");
          var current = region.querySelector(".live");
          if (fresh && current && fresh.dataset.status !== current.dataset.status) {
            region.replaceChildren(fresh);
          }
          if (!fresh || !fresh.hasAttribute("data-final")) setTimeout(again, 4000);
        })
        .catch(function () { setTimeout(again, 10000); });
    }
    setTimeout(again, 4000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusProblem();
    document.querySelectorAll("form[data-running-total]").forEach(runningTotal);
    document.querySelectorAll(".hold[data-hold-seconds]").forEach(countdown);
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
