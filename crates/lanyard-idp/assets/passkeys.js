// Lanyard's passkey pages: asks the server for a ceremony's options, hands them to the
// browser's WebAuthn API, and submits the answer in an ordinary form, so that what follows
// (the app's code, the consent page, an error page) is a normal page load.
//
// Forms opt in with data attributes:
//   <form data-passkey="register" data-options="/account/passkeys/options"> ... register
//   <form data-passkey="sign-in" data-options="/signin/passkey/options">      ... button
// A sign-in form with data-autofill also offers passkeys in the username field's autofill
// (conditional mediation) where the browser can.
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    var p = o.publicKey;
    p.challenge = toBytes(p.challenge);
    p.user.id = toBytes(p.user.id);
    (p.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: p };
  }

  function requestOptions(o) {
    var p = o.publicKey;
    p.challenge = toBytes(p.challenge);
    (p.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    var out = { publicKey: p };
    if (o.mediation) out.mediation = o.mediation;
    return out;
  }

  function registration(cred) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(cred.response.attestationObject),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        transports: cred.response.getTransports ? cred.response.getTransports() : []
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function say(form, message) {
    var box = form.querySelector("[data-passkey-status]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  // POSTs the form's fields (and `extra`) to its options address; the ceremony's options.
  function fetchOptions(form, extra) {
    var body = new URLSearchParams(new FormData(form));
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    return fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error_description || "The server refused.");
        return j;
      });
    });
  }

  function finish(form, ceremony, credential) {
    form.querySelector("input[name=ceremony]").value = ceremony;
    form.querySelector("input[name=credential]").value = JSON.stringify(credential);
    form.submit();
  }

  function failed(form, e) {
    if (e && e.name === "NotAllowedError") {
      say(form, "The passkey request was cancelled or timed out. Try again.");
    } else if (e && e.name === "InvalidStateError") {
      say(form, "This device already holds a passkey for your account.");
    } else {
      say(form, (e && e.message) || "Passkeys did not work here. Try again, or use your password.");
    }
  }

  // The autofill request waits until the person picks a passkey there; a button press
  // cancels it first (a browser runs one request at a time).
  var waitingAutofill = null;

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    if (!supported()) {
      say(form, "This browser cannot use passkeys.");
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      return;
    }
    var kind = form.dataset.passkey;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (waitingAutofill) {
        waitingAutofill.abort();
        waitingAutofill = null;
      }
      say(form, kind === "register" ? "Follow your browser's prompt to create the passkey." : "Follow your browser's prompt.");
      fetchOptions(form).then(function (o) {
        if (kind === "register") {
          return navigator.credentials.create(creationOptions(o.options)).then(function (c) {
            finish(form, o.ceremony, registration(c));
          });
        }
        return navigator.credentials.get(requestOptions(o.options)).then(function (c) {
          finish(form, o.ceremony, assertion(c));
        });
      }).catch(function (e) { failed(form, e); });
    });
    if (kind === "sign-in" && form.hasAttribute("data-autofill") &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        return fetchOptions(form, { conditional: "1" }).then(function (o) {
          var options = requestOptions(o.options);
          waitingAutofill = new AbortController();
          options.signal = waitingAutofill.signal;
          return navigator.credentials.get(options).then(function (c) {
            waitingAutofill = null;
            finish(form, o.ceremony, assertion(c));
          });
        });
      }).catch(function () { /* autofill is a convenience; the button still works */ });
    }
  });
})();
