// The console's one script: the audit trail's live tail. Every page works without it.
"use strict";
(function () {
  const box = document.getElementById("tail");
  const body = document.getElementById("events");
  const status = document.getElementById("tail-status");
  if (!box || !body) return;
  let after = Number(box.dataset.after || "0");
  let timer = null;
  let added = 0;
  const filters = new URLSearchParams(window.location.search);
  filters.delete("before");
  async function poll() {
    const query = new URLSearchParams(filters);
    query.set("after", String(after));
    try {
      const response = await fetch("/console/audit/tail?" + query.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        status.textContent = "Your console session ended. Reload the page to sign in again.";
        stop();
        return;
      }
      if (!response.ok) {
        status.textContent = response.status === 503
          ? "Lanyard is briefly unavailable; still trying."
          : "The live tail stopped (" + response.status + "). Reload the page.";
        if (response.status !== 503) stop();
        return;
      }
      const answer = await response.json();
      for (const e of answer.events) {
        const row = document.createElement("tr");
        row.dataset.id = String(e.id);
        row.className = "fresh";
        for (const value of [e.at, e.actor, e.action, e.target, e.outcome]) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.appendChild(cell);
        }
        body.insertBefore(row, body.firstChild);
        after = Math.max(after, e.id);
        added += 1;
      }
      status.textContent = "Following new events: " + added + " so far." +
        (answer.complete ? "" : " More came at once than fit here: reload the page to see them all.");
    } catch (err) {
      status.textContent = "Lanyard could not be reached; still trying.";
    }
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
  }
  box.addEventListener("change", function () {
    if (box.checked) {
      status.textContent = "Following new events.";
      poll();
      timer = setInterval(poll, 2000);
    } else {
      stop();
      status.textContent = "Stopped.";
    }
  });
})();
