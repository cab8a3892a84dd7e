// Models page: refresh running tasks (training epochs and folds, gate results) every 3 s.
"use strict";
(function () {
  function refresh() {
    const rows = document.querySelectorAll('#tasks tr[data-state="running"]');
    if (!rows.length) return;
    rows.forEach(function (row) {
      fetch("/admin/models/tasks/" + row.dataset.task, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (t) {
          if (!t) return;
          row.dataset.state = t.state;
          row.querySelector(".state").textContent = t.state;
          const p = t.progress ? JSON.stringify(t.progress) : "";
          const res = t.result ? " " + JSON.stringify(t.result) : "";
          row.querySelector(".progress").textContent = p + res + (t.error ? " " + t.error : "");
        });
    });
    setTimeout(refresh, 3000);
  }
  setTimeout(refresh, 3000);
})();

// The versions are a snapshot of the registry read in the background: once a newer reading
// is ready, offer it (never reload under an admin filling a form).
(function () {
  const note = document.getElementById("listing");
  if (!note || note.dataset.refreshing !== "1") return;
  function poll() {
    fetch("/admin/models/listing", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        if (String(s.listed_at || "") !== note.dataset.listedAt && !s.refreshing) {
          note.textContent = "The registry was read again. ";
          const link = document.createElement("a");
          link.href = window.location.pathname;
          link.textContent = "Show the new listing";
          note.appendChild(link);
          return;
        }
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 2000);
})();
