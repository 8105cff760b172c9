// Torii's one script: it only enhances pages that work without it.
// Loaded with <script src defer> under script-src 'self'; no inline script.
(function () {
  "use strict";

  // The page's words (layout.html puts them on <body> in its language).
  var root = document.body;
  var say = function (name, fallback) { return root.getAttribute("data-say-" + name) || fallback; };

  // Show/hide on every password field: a button after the field switches
  // it between hidden and shown text (aria-pressed says which).
  document.querySelectorAll('input[type="password"]').forEach(function (input) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal secondary";
    button.textContent = say("show", "Show password");
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-controls", input.id);
    button.addEventListener("click", function () {
      var shown = input.type === "text";
      input.type = shown ? "password" : "text";
      button.setAttribute("aria-pressed", shown ? "false" : "true");
      button.textContent = shown ? say("show", "Show password") : say("hide", "Hide password");
    });
    input.insertAdjacentElement("afterend", button);
    // Hidden again before the form is sent, so browsers offer to save it
    // as a password.
    if (input.form) {
      input.form.addEventListener("submit", function () { input.type = "password"; });
    }
  });

  // The resend wait: count down, then enable the waiting controls (the
  // server renders them disabled, with the time the wait ends).
  var wait = document.getElementById("wait");
  if (wait && wait.dataset.wait) {
    var end = Date.now() + Number(wait.dataset.wait) * 1000;
    var controls = document.querySelectorAll("[data-wait-control]");
    var tick = function () {
      var left = Math.ceil((end - Date.now()) / 1000);
      if (left <= 0) {
        controls.forEach(function (c) { c.disabled = false; });
        wait.textContent = say("wait-now", "You can ask for a new code now.");
        return;
      }
      var m = Math.floor(left / 60), s = left % 60;
      if (root.getAttribute("data-say-wait-left")) {
        // Other languages than English: the time as m:ss.
        wait.textContent = say("wait-left", "").replace("{time}", m + ":" + (s < 10 ? "0" : "") + s);
      } else {
        wait.textContent = "You can ask for a new code in " +
          (m > 0 ? m + (m === 1 ? " minute " : " minutes ") : "") + s + (s === 1 ? " second." : " seconds.");
      }
      setTimeout(tick, 1000);
    };
    // The status region is announced once; the countdown then updates
    // quietly (no announcement every second).
    wait.setAttribute("aria-live", "off");
    tick();
  }
})();
