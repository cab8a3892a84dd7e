/* Teaching mode on the Analyse page: the choice is remembered in this browser; a blinded
   answer (status "awaiting_read") asks for the clinician's read, posts it, and hands Radio's
   answer, which the server sends only then, to app.js's render(). */
(function () {
  "use strict";

  var KEY = "radio.teaching";
  var panel, choices, readForm, message, box, current, done;

  function setMessage(text, kind) {
    message.textContent = text;
    message.className = "message" + (kind ? " " + kind : "");
    message.setAttribute("role", kind === "error" ? "alert" : "status");
  }

  function ask(data, onAnswer) {
    current = data;
    done = onAnswer;
    choices.textContent = "";
    data.classes.forEach(function (name) {
      var label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "label";
      input.value = name;
      input.required = true;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + name));
      choices.appendChild(label);
    });
    setMessage("", "");
    panel.hidden = false;
    document.getElementById("read-heading").focus();
  }

  async function send(ev) {
    ev.preventDefault();
    var chosen = readForm.querySelector("input[name=label]:checked");
    if (!chosen) { setMessage("Choose your read first.", "error"); return; }
    var form = document.getElementById("upload-form");
    var body = new FormData();
    body.append("label", chosen.value);
    var csrf = document.querySelector('meta[name="csrf-token"]');
    var headers = { "Accept": "application/json" };
    if (csrf) { headers["X-CSRF-Token"] = csrf.content; }
    var button = document.getElementById("read-submit");
    button.disabled = true;
    try {
      var resp = await fetch(form.dataset.readUrl.replace("__ID__", encodeURIComponent(current.id)),
                             { method: "POST", body: body, credentials: "same-origin", headers: headers });
      var data = await resp.json();
      if (!resp.ok) { setMessage(data.error || "HTTP " + resp.status, "error"); return; }
      panel.hidden = true;
      done(data);
    } catch (e) {
      setMessage("Could not reach the Radio server; your read was not recorded.", "error");
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    panel = document.getElementById("read-panel");
    choices = document.getElementById("read-choices");
    readForm = document.getElementById("read-live");
    message = document.getElementById("read-message");
    box = document.getElementById("teaching");
    if (!panel || !box) { return; }
    try { box.checked = window.localStorage.getItem(KEY) === "1"; } catch (e) { /* private mode */ }
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, box.checked ? "1" : "0"); } catch (e) { /* ignore */ }
    });
    document.getElementById("file").addEventListener("change", function () { panel.hidden = true; });
    readForm.addEventListener("submit", send);
  });

  window.RadioTeaching = { ask: ask };
}());
