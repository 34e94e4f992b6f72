/* Lanyard: warns before the sign-in session times out, and offers to keep it.
 *
 * Include on any page of a registered app (docs/sessions.md):
 *   <script src="https://sso.example.com/session/warning.js" data-client-id="wiki"
 *           data-login-url="/login?return_to=%2Freports" defer></script>
 * data-client-id   your client id (required unless the page is Lanyard's own)
 * data-warn-before seconds of warning before the session ends (default 120)
 * data-login-url   where "Sign in again" goes once it has ended (default: this page)
 * data-session-url the app's own status and "stay signed in" endpoints, `<url>/status` and
 *                  `<url>/extend` (lanyard-rp serves them at `/session`): for an app on
 *                  another site than Lanyard's, where Lanyard's cookie cannot reach; the app
 *                  asks Lanyard server to server. Default: Lanyard's own, with its cookie.
 *
 * It asks /session/status (which is not activity), shows a banner N seconds before the
 * session ends, and "Stay signed in" posts /session/extend. window.LanyardSession.check()
 * asks again at once. No dependencies, no inline styles or scripts beyond this file.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch) return;
  var issuer = new URL(script.src).origin;
  var data = script.dataset;
  var query = data.clientId ? "?client_id=" + encodeURIComponent(data.clientId) : "";
  var own = data.sessionUrl;
  var statusUrl = own ? own + "/status" : issuer + "/session/status" + query;
  var extendUrl = own ? own + "/extend" : issuer + "/session/extend" + query;
  var credentials = own ? "same-origin" : "include";
  var warnBefore = Number(data.warnBefore) > 0 ? Number(data.warnBefore) : 120;
  var loginUrl = data.loginUrl || window.location.href;
  var timer = null;
  var box = null;
  var seenActive = false;
  var acknowledged = false;

  function minutes(seconds) {
    var m = Math.max(1, Math.ceil(seconds / 60));
    return m === 1 ? "1 minute" : m + " minutes";
  }

  function banner() {
    if (box) return box;
    box = document.createElement("div");
    box.id = "lanyard-session-warning";
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-live", "assertive");
    box.setAttribute("aria-labelledby", "lanyard-session-warning-text");
    box.style.cssText =
      "position:fixed;left:50%;bottom:1rem;transform:translateX(-50%);z-index:2147483647;" +
      "width:max-content;max-width:min(32rem,92vw);padding:1rem 1.25rem;border-radius:.5rem;" +
      "background:#1d2a4d;color:#fff;font:1rem/1.4 system-ui,sans-serif;" +
      "box-shadow:0 4px 16px rgba(0,0,0,.3)";
    var text = document.createElement("p");
    text.id = "lanyard-session-warning-text";
    text.style.cssText = "margin:0 0 .75rem";
    var button = document.createElement("button");
    button.type = "button";
    button.id = "lanyard-session-warning-action";
    button.style.cssText =
      "padding:.5rem 1rem;font:inherit;border:0;border-radius:.4rem;background:#fff;" +
      "color:#1d2a4d;cursor:pointer;outline-offset:2px";
    box.appendChild(text);
    box.appendChild(button);
    box.hidden = true;
    document.body.appendChild(box);
    return box;
  }

  function show(message, action, onClick) {
    var b = banner();
    var appearing = b.hidden;
    b.firstChild.textContent = message;
    b.lastChild.textContent = action;
    b.lastChild.onclick = onClick;
    b.hidden = false;
    if (appearing) b.lastChild.focus();
  }

  function hide() {
    if (box) box.hidden = true;
  }

  function later(seconds) {
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(1, seconds) * 1000);
  }

  function check() {
    fetch(statusUrl, { credentials: credentials, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.json();
      })
      .then(function (s) {
        if (!s.active) {
          // Only a session this page saw end is announced (a page opened without one, or
          // on a site the cookie does not reach, shows nothing).
          if (seenActive) {
            show("Your session has ended. Sign in again to continue where you were.",
              "Sign in again", function () { window.location.href = loginUrl; });
          }
          return;
        }
        seenActive = true;
        if (s.expires_in > warnBefore) {
          hide();
          acknowledged = false;
          later(s.expires_in - warnBefore);
          return;
        }
        if (s.absolute_expires_in <= s.expires_in) {
          if (!acknowledged) {
            show("Your session ends in " + minutes(s.expires_in) +
              " and cannot be extended. Save your work: you will then be asked to sign in again.",
              "OK", function () { acknowledged = true; hide(); });
          }
        } else {
          show("You will be signed out in " + minutes(s.expires_in) +
            " because you have been inactive.", "Stay signed in", extend);
        }
        later(Math.min(30, s.expires_in + 1));
      })
      .catch(function () { later(60); });
  }

  function extend() {
    fetch(extendUrl, { method: "POST", credentials: credentials })
      .then(check, check);
  }

  window.LanyardSession = { check: check, extend: extend };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", check);
  } else {
    check();
  }
})();
