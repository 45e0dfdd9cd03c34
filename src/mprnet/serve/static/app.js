"use strict";
// The demo page: choose an image, pick a task and method, start a job (POST /api/jobs), follow it (GET
// /api/jobs/{id}: percent and time left), fetch its result and compare before and after.

const ZOOM = 4;
const $ = (id) => document.getElementById(id);
const EXAMPLE_RETRIES = 5;
const EXAMPLE_RETRY_MS = 2000;
const POLL_MS = 500;
// examples: null while the server prepares them, then the list; examplesFailed once every attempt failed.
const state = { models: null, limits: null, image: null, reference: null, examples: null, examplesFailed: false,
  urls: {} };

document.addEventListener("DOMContentLoaded", start);

async function start() {
  bindInputs();
  try {
    const catalogue = await getJson("/api/models");
    state.models = catalogue.tasks;
    state.limits = catalogue.limits;
    $("truth").textContent = catalogue.bundled_models;
    showTasks();
  } catch (error) {
    showError(`The server did not answer with its list of models (${error.message}). Reload the page to retry.`);
  }
  loadExamples();
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

function bindInputs() {
  const drop = $("drop");
  $("file").addEventListener("change", () => chooseImage($("file").files[0]));
  $("reference").addEventListener("change", () => { state.reference = $("reference").files[0] || null; });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    chooseImage(event.dataTransfer.files[0]);
  });
  $("method").addEventListener("change", showMethod);
  $("run").addEventListener("click", run);
  $("slider").addEventListener("input", moveSplit);
  $("compare").addEventListener("pointermove", zoomAt);
}

function chooseImage(file, reference = null) {
  if (!file) return;
  hideError();
  state.image = file;
  state.reference = reference;
  if (!reference) $("reference").value = "";
  document.querySelectorAll(".examples button").forEach((b) => b.classList.remove("chosen"));
  $("file-info").textContent = `${file.name} · ${formatBytes(file.size)}` +
    (reference ? " · with its clean original as reference" : "");
  updateRunButton();
}

function showTasks() {
  const box = $("tasks");
  state.models.forEach((task, index) => {
    const label = document.createElement("label");
    label.title = `trained for: ${task.degradation}`;
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "task", value: task.name, checked: index === 0 });
    radio.addEventListener("change", taskChanged);
    label.append(radio, task.name);
    box.append(label);
  });
  if (!state.models.length) showError("This server has no model installed, so there is nothing to run.");
  taskChanged();
}

function currentTask() {
  const checked = document.querySelector("input[name=task]:checked");
  return state.models.find((task) => task.name === (checked && checked.value));
}

function currentMethod() {
  const task = currentTask();
  return task && task.methods.find((method) => method.name === $("method").value);
}

function taskChanged() {
  const task = currentTask();
  const select = $("method");
  select.replaceChildren(...(task ? task.methods : []).map((method) => new Option(
    method.kind === "network" ? `${method.title} (blind)` : `${method.name}${method.needs.length ? " (needs " +
      method.needs.join(", ") + ")" : ""}`, method.name)));
  showMethod();
  showExamples();
}

function showMethod() {
  const method = currentMethod();
  $("method-summary").textContent = method ? method.summary : "";
  $("sigma-row").hidden = !(method && method.uses.includes("sigma"));
  $("kernel-row").hidden = !(method && method.uses.includes("kernel"));
  updateRunButton();
}

function updateRunButton() {
  $("run").disabled = !(state.image && currentMethod());
}

async function loadExamples() {
  for (let attempt = 1; state.examples === null; attempt++) {
    try {
      state.examples = await getJson("/api/examples");
    } catch (error) {
      if (attempt >= EXAMPLE_RETRIES) {
        state.examples = [];
        state.examplesFailed = true;
      } else {
        await new Promise((resolve) => setTimeout(resolve, EXAMPLE_RETRY_MS));
      }
    }
  }
  showExamples();
}

function showExamples() {
  const task = currentTask();
  const box = $("examples");
  if (state.examples === null) {
    box.textContent = "Preparing the examples… they appear here in a moment.";
    return;
  }
  // Task "auto" is to find out for itself what each example needs: it is offered every task's.
  const everyTask = task && task.name === "auto";
  const shown = state.examples.filter((example) => task && (everyTask || example.task === task.name));
  box.replaceChildren(...shown.map((example) => exampleButton(example, everyTask)));
  if (!shown.length) {
    box.textContent = state.examplesFailed ? "The examples could not be loaded; reload the page to retry."
      : "No examples for this task.";
  }
}

function exampleButton(example, withTask) {
  const button = document.createElement("button");
  button.type = "button";
  button.title = `${example.photo}: ${example.degradation}`;
  const image = new Image();
  image.src = example.degraded;
  image.alt = `${example.photo}, ${example.degradation}`;
  const caption = document.createElement("span");
  caption.textContent = withTask ? `${example.photo} (${example.task})` : example.photo;
  button.append(image, caption);
  button.addEventListener("click", () => useExample(example, button));
  return button;
}

async function useExample(example, button) {
  try {
    const [degraded, clean] = await Promise.all([example.degraded, example.clean].map(fetchFile));
    chooseImage(degraded, clean);
    button.classList.add("chosen");
  } catch (error) {
    showError(`The example could not be loaded (${error.message}).`);
  }
}

async function fetchFile(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const name = url.split("/").slice(-3).join("-");
  return new File([await response.blob()], name, { type: "image/png" });
}

function run() {
  const task = currentTask();
  const method = currentMethod();
  hideError();
  if (state.limits && state.image.size > state.limits.max_upload_bytes) {
    showError(`This file is ${formatBytes(state.image.size)}; the server accepts at most ` +
      `${formatBytes(state.limits.max_upload_bytes)}.`);
    return;
  }
  const form = new FormData();
  form.append("image", state.image, state.image.name);
  form.append("task", task.name);
  form.append("method", method.name);
  if (method.uses.includes("sigma") && $("sigma").value !== "") form.append("sigma", $("sigma").value);
  if (method.uses.includes("kernel") && $("kernel").files[0]) form.append("kernel", $("kernel").files[0]);
  if (state.reference) form.append("reference", state.reference, state.reference.name);
  send(form);
}

function send(form) {
  const request = new XMLHttpRequest();
  request.open("POST", "/api/jobs");
  request.responseType = "json";
  $("run").disabled = true;
  $("progress").hidden = false;
  setProgress(0, "uploading");
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) setProgress(event.loaded / event.total, "uploading");
  });
  request.addEventListener("load", () => {
    if (request.status === 202) follow(request.response);
    else finish(() => explainFailure(request.status, request.response, request.getResponseHeader("Retry-After")));
  });
  request.addEventListener("error", () => finish(unreachable));
  request.send(form);
}

// Poll the job until it ends, showing its percent and the time left; then fetch and show its result.
async function follow(job) {
  try {
    while (job.state === "queued" || job.state === "running") {
      showJob(job);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const answer = await fetch(job.status_url);
      if (!answer.ok) return finish(() => answer.json().then((body) => explainFailure(answer.status, body)));
      job = await answer.json();
    }
    if (job.state === "failed") return finish(() => explainFailure(job.status, job));
    const result = await fetch(job.result_url);
    if (!result.ok) return finish(() => result.json().then((body) => explainFailure(result.status, body)));
    const blob = await result.blob();
    finish(() => showResult(blob, (name) => result.headers.get(name)));
  } catch (error) {
    finish(unreachable);
  }
}

function showJob(job) {
  const left = job.left_s === null ? "" : `, about ${formatSeconds(job.left_s)} left`;
  const tiles = job.tiles_total > 1 ? ` (tile ${job.tiles_done} of ${job.tiles_total})` : "";
  if (job.state === "queued") {
    $("bar").removeAttribute("value");
    $("progress-text").textContent = `waiting for a free worker… ${formatSeconds(job.elapsed_s)}${left}`;
  } else {
    setProgress(job.percent / 100, "restoring");
    $("progress-text").textContent += `${tiles}${left}`;
  }
}

function formatSeconds(seconds) {
  return seconds < 60 ? `${Math.round(seconds)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function finish(then) {
  $("progress").hidden = true;
  updateRunButton();
  then();
}

function unreachable() {
  showError("The server could not be reached. Is `mprnet serve` still running?");
}

function setProgress(fraction, label) {
  $("bar").value = fraction;
  $("progress-text").textContent = `${label} ${Math.round(fraction * 100)} %`;
}

function explainFailure(status, body, wait = null) {
  const message = ((body && body.error) || `the server answered ${status}`).replace(/\.$/, "");
  if (status === 503) {
    showError(`The server is busy right now: ${message}.` + (wait ? ` Try again in ${wait} s.` : ""));
  } else if (status === 504) {
    showError(`The restoration took too long: ${message}. A smaller image will be faster.`);
  } else {
    showError(`Could not restore this image: ${message}.`);
  }
}

// `header(name)` reads the result's headers, those of /api/restore.
function showResult(blob, header) {
  const filename = /filename="([^"]+)"/.exec(header("Content-Disposition") || "");
  replaceUrl("before", state.image);
  replaceUrl("after", blob);
  $("before").src = state.urls.before;
  $("after").src = state.urls.after;
  $("download").href = state.urls.after;
  $("download").download = filename ? filename[1] : "restored.png";
  const seconds = Number(header("X-Seconds"));
  $("timing").textContent = `${header("X-Method")} (${header("X-Task")}) took ${seconds.toFixed(2)} s on the server.`;
  showDecision(header);
  showMetrics(header);
  $("result").hidden = false;
  $("after").addEventListener("load", () => zoomAround(0.5, 0.5), { once: true });
  $("after").addEventListener("error", () => showError("The result was made but this browser cannot display " +
    "its format; use the download link."), { once: true });
  $("result").scrollIntoView({ behavior: "smooth", block: "start" });
}

function replaceUrl(key, blob) {
  if (state.urls[key]) URL.revokeObjectURL(state.urls[key]);
  state.urls[key] = URL.createObjectURL(blob);
}

// Task "auto" says what it found: the server's X-Decision, X-Confidence, X-Task ("denoise+derain": two steps) and
// X-Kernel-Peak (where blur was checked against the kernel estimated from the photo); every network restoration
// says what the no-harm check found (X-Warning: "left alone: ..." under auto, "warning: ..." for a chosen task).
function showDecision(header) {
  const decision = header("X-Decision");
  const warning = header("X-Warning");
  $("decision").hidden = !decision && !warning;
  if (!decision) {
    $("decision").textContent = warning ? `The result does not look better than the photo (${warning}).` : "";
    return;
  }
  const sure = `${Math.round(100 * Number(header("X-Confidence")))}% sure`;
  if (decision === "clean" && header("X-Kernel-Peak")) {
    $("decision").textContent = `It looked blurred (${sure}), but the blur kernel estimated from it is a sharp ` +
      "photo's: it is returned unchanged. Choose deblur to restore it anyway.";
  } else if (decision === "clean") {
    $("decision").textContent = `The photo looks clean (${sure}): it is returned unchanged.`;
  } else if (decision === "unsure") {
    $("decision").textContent = `Not sure what is wrong with this photo (at most ${sure} of any one ` +
      "thing, or too little detail to tell blur): it is returned unchanged. Choose a task to restore it anyway.";
  } else if (warning) {
    $("decision").textContent = `Auto chose ${decision} (${sure}), but the result does not look better, so the ` +
      `photo is returned unchanged (${warning}). Choose ${decision} to restore it anyway.`;
  } else {
    const then = header("X-Task").split("+").slice(1).map((task) => `, then ${task}`).join("");
    $("decision").textContent = `Auto chose ${decision} (${sure})${then}.`;
  }
}

function showMetrics(header) {
  const metric = (name) => parseMetric(header(name));
  const psnr = [metric("X-PSNR-Input"), metric("X-PSNR-Output")];
  const ssim = [metric("X-SSIM-Input"), metric("X-SSIM-Output")];
  $("metrics").hidden = psnr[0] === null;
  if (psnr[0] === null) return;
  fillRow("psnr", psnr, 2, " dB");
  fillRow("ssim", ssim, 4, "");
}

function parseMetric(text) {
  if (text === null) return null;
  return text === "inf" ? Infinity : Number(text);
}

function fillRow(name, [before, after], digits, unit) {
  const show = (value) => (Number.isFinite(value) ? value.toFixed(digits) : "∞");
  $(`${name}-in`).textContent = show(before);
  $(`${name}-out`).textContent = show(after);
  const gain = after - before;
  $(`${name}-gain`).textContent = Number.isFinite(gain) ? `${gain >= 0 ? "+" : ""}${gain.toFixed(digits)}${unit}` : "";
}

function moveSplit() {
  $("compare").style.setProperty("--split", `${$("slider").value}%`);
}

function zoomAt(event) {
  const box = $("compare").getBoundingClientRect();
  zoomAround((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
}

function zoomAround(fx, fy) {
  [["before", "zoom-before"], ["after", "zoom-after"]].forEach(([imageId, canvasId]) => {
    const image = $(imageId);
    const canvas = $(canvasId);
    const context = canvas.getContext("2d");
    if (!image.naturalWidth) return;
    const side = canvas.width / ZOOM;
    const left = clamp(fx * image.naturalWidth - side / 2, 0, Math.max(0, image.naturalWidth - side));
    const top = clamp(fy * image.naturalHeight - side / 2, 0, Math.max(0, image.naturalHeight - side));
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, left, top, side, side, 0, 0, canvas.width, canvas.height);
  });
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
}

function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}
