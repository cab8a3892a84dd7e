/* The upload page: choose or drop a file, POST it to /predict with fetch, render the answer.
   Every error shows the server's own sentence (the JSON "error" field). */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  var input = document.getElementById("file");
  var dropzone = document.getElementById("dropzone");
  var fileName = document.getElementById("file-name");
  var submit = document.getElementById("submit");
  var message = document.getElementById("message");
  var result = document.getElementById("result");
  var preview = document.getElementById("preview");
  var canvas = document.getElementById("heatmap");
  var answer = document.getElementById("answer");
  var opacity = document.getElementById("opacity");
  var opacityValue = document.getElementById("opacity-value");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var previewUrl = null;
  var lastHeatmap = null;
  // True when this browser cannot show the chosen file (a DICOM): the server's rendering of
  // the stored image is shown once the answer names it.
  var previewFailed = false;
  var placeholder = document.getElementById("preview-pending");

  function setMessage(text, kind) {
    message.textContent = text;
    message.className = "message" + (kind ? " " + kind : "");
    message.setAttribute("role", kind === "error" ? "alert" : "status");
  }

  function isDicom(file) {
    return file.type === "application/dicom" || /\.(dcm|dicom)$/i.test(file.name);
  }

  function showPreview(file) {
    if (previewUrl) { URL.revokeObjectURL(previewUrl); previewUrl = null; }
    previewFailed = isDicom(file);
    placeholder.hidden = !previewFailed;
    if (previewFailed) { preview.removeAttribute("src"); return; }
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
  }

  // The image as the server stored it (a DICOM rendered as the greyscale the model saw).
  function showStoredImage(id) {
    preview.src = form.dataset.imageUrl.replace("__ID__", encodeURIComponent(id));
  }

  function chosen() {
    var file = input.files && input.files[0];
    // The name stays in this browser: it is never sent to our logs or stored.
    fileName.textContent = file ? file.name + " (" + (file.size / 1048576).toFixed(1) + " MB)"
                                : "No file chosen";
    setMessage("", "");
    lastHeatmap = null;
    window.RadioHeatmap.clear(canvas);
    document.getElementById("heatmap-controls").hidden = true;
    answer.hidden = true;
    result.hidden = !file;
    if (file) { showPreview(file); }
    return file;
  }

  input.addEventListener("change", chosen);

  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (ev) {
      ev.preventDefault();
      dropzone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () { dropzone.classList.remove("over"); });
  });
  dropzone.addEventListener("drop", function (ev) {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files.length) {
      input.files = ev.dataTransfer.files;
      chosen();
    }
  });

  function percent(p) { return (p * 100).toFixed(1) + "%"; }

  function renderBars(probabilities, label) {
    var list = document.getElementById("bars");
    list.textContent = "";
    Object.keys(probabilities).forEach(function (name) {
      var p = probabilities[name];
      var li = document.createElement("li");
      li.className = "bar" + (name === label ? " best" : "");
      var title = document.createElement("span");
      title.className = "bar-name";
      title.textContent = name;
      var track = document.createElement("span");
      track.className = "bar-track";
      track.setAttribute("role", "meter");
      track.setAttribute("aria-valuemin", "0");
      track.setAttribute("aria-valuemax", "100");
      track.setAttribute("aria-valuenow", (p * 100).toFixed(1));
      track.setAttribute("aria-label", name);
      var fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.width = Math.max(0, Math.min(100, p * 100)) + "%";
      track.appendChild(fill);
      var value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = percent(p);
      li.appendChild(title);
      li.appendChild(track);
      li.appendChild(value);
      list.appendChild(li);
    });
  }

  function drawHeatmap() {
    if (!lastHeatmap || !preview.naturalWidth) { return; }
    // The canvas needs no more pixels than the screen shows; CSS stretches it over the image.
    var scale = Math.min(1, 512 / Math.max(preview.naturalWidth, preview.naturalHeight));
    window.RadioHeatmap.draw(canvas, lastHeatmap,
      Math.max(1, Math.round(preview.naturalWidth * scale)),
      Math.max(1, Math.round(preview.naturalHeight * scale)));
  }

  function applyOpacity() {
    canvas.style.opacity = String(opacity.value / 100);
    opacityValue.textContent = opacity.value + "%";
  }
  opacity.addEventListener("input", applyOpacity);
  preview.addEventListener("load", drawHeatmap);
  preview.addEventListener("load", function () { placeholder.hidden = true; });
  // A file this browser cannot decode (a DICOM without its extension, say): a placeholder
  // until the answer arrives, then the server's rendering of the stored image.
  preview.addEventListener("error", function () {
    if (!preview.getAttribute("src") || previewFailed) { return; }
    previewFailed = true;
    placeholder.hidden = false;
  });

  function render(data, clientMs) {
    var notXray = data.status === "not_xray";
    // The statement in words comes from the server (app/clinical/answer.py): the same sentences as
    // the case page and the history.
    var said = data.explanation || {};
    var headline = document.getElementById("result-headline");
    headline.textContent = said.headline || (notXray ? "Not a chest X-ray" : data.label);
    headline.className = "headline" + (notXray ? " not-xray" : "");
    document.getElementById("result-why").textContent = said.why || data.ood_reason || "";
    var flag = document.getElementById("review-flag");
    flag.hidden = !data.needs_review;
    flag.textContent = said.review || "Needs radiologist review";
    document.getElementById("diagnosis").hidden = notXray;
    if (!notXray) { renderBars(data.probabilities, data.label); }
    document.getElementById("result-model").textContent =
      data.model.name + " version " + data.model.version;
    document.getElementById("result-time").textContent =
      Math.round(data.latency_ms) + " ms on the server, " + Math.round(clientMs) + " ms in total";
    document.getElementById("result-id").textContent = data.id;
    lastHeatmap = notXray ? null : data.heatmap;
    document.getElementById("heatmap-controls").hidden = !lastHeatmap;
    canvas.hidden = !lastHeatmap;
    if (lastHeatmap) { drawHeatmap(); applyOpacity(); } else { window.RadioHeatmap.clear(canvas); }
    answer.hidden = false;
    result.hidden = false;
    if (previewFailed || !preview.naturalWidth) { showStoredImage(data.id); }
    document.getElementById("result-heading").focus();
  }

  async function errorText(resp) {
    try {
      var body = await resp.json();
      if (body && body.error) {
        return body.error + (body.id ? " (reference " + body.id + ")" : "");
      }
    } catch (e) { /* not JSON: a proxy in front of us answered */ }
    return "The server answered HTTP " + resp.status + " without an explanation.";
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var file = input.files && input.files[0];
    if (!file) { setMessage("Choose an image first.", "error"); input.focus(); return; }
    if (file.size > maxBytes) {
      setMessage("The file is too large; the limit is " + form.dataset.maxMb + " MB.", "error");
      return;
    }
    answer.hidden = true;
    submit.disabled = true;
    setMessage("Analysing...", "busy");
    var body = new FormData();
    body.append("file", file);
    var started = performance.now();
    try {
      // The session cookie authenticates this call, so it carries the page's CSRF token.
      var csrf = document.querySelector('meta[name="csrf-token"]');
      // Teaching mode (static/teaching.js): the answer comes only after the clinician's read.
      var teaching = document.getElementById("teaching");
      var url = teaching && teaching.checked ? form.dataset.teachingUrl : form.action;
      var resp = await fetch(url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: csrf ? { "X-CSRF-Token": csrf.content } : {}
      });
      if (!resp.ok) { setMessage(await errorText(resp), "error"); return; }
      var data = await resp.json();
      setMessage("", "");
      if (data.status === "awaiting_read") {
        result.hidden = false;
        if (previewFailed || !preview.naturalWidth) { showStoredImage(data.id); }
        window.RadioTeaching.ask(data, function (full) { render(full, performance.now() - started); });
        return;
      }
      render(data, performance.now() - started);
    } catch (e) {
      setMessage("Could not reach the Radio server; check the connection and try again.",
                 "error");
    } finally {
      submit.disabled = false;
    }
  });
})();
