// The transcription page: upload a file or record the microphone (live partial results over /v1/stream),
// then show the words with their times and highlight the current one while the audio plays. No build step.
"use strict";
const RATE = 16000; // the server's live PCM: 16 kHz mono little-endian int16
const $ = (id) => document.getElementById(id);
let words = [];
let recorder = null;

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function showTranscript(doc) {
  words = doc.words;
  $("text").textContent = doc.text || "(no speech recognised)";
  const box = $("transcript");
  box.replaceChildren();
  words.forEach((w) => {
    const span = document.createElement("span");
    span.className = "word";
    span.dataset.start = w.start;
    span.dataset.end = w.end;
    span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s`;
    const label = document.createElement("b");
    label.textContent = w.word;
    const time = document.createElement("small");
    time.textContent = w.start.toFixed(2);
    span.append(label, time);
    span.addEventListener("click", () => { $("player").currentTime = w.start; $("player").play(); });
    box.append(span);
  });
  box.dataset.state = "done";
}

function highlight() {
  const t = $("player").currentTime;
  document.querySelectorAll("#transcript .word").forEach((span, i) => {
    span.classList.toggle("current", t >= words[i].start && t < words[i].end);
  });
  if (!$("player").paused) requestAnimationFrame(highlight);
}

async function errorText(response) {
  try { return (await response.json()).error; } catch (e) { return `${response.status} ${response.statusText}`; }
}

async function uploadFile() {
  const file = $("file").files[0];
  if (!file) return;
  $("player").src = URL.createObjectURL(file);
  $("transcript").dataset.state = "busy";
  setStatus(`transcribing ${file.name} …`);
  const form = new FormData();
  form.append("file", file);
  const started = performance.now();
  try {
    const response = await fetch("/v1/transcribe", { method: "POST", body: form });
    if (!response.ok) { setStatus(await errorText(response), true); return; }
    const doc = await response.json();
    $("partial").textContent = "";
    showTranscript(doc);
    setStatus(`${doc.duration.toFixed(2)} s of audio, answered in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  } catch (e) {
    setStatus(`request failed: ${e}`, true);
  }
}

// ------------------------------------------------------------------------------------------------ recording
function toInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return out;
}

function resampleTo16k(samples, rate) {
  if (rate === RATE) return samples;
  const out = new Float32Array(Math.floor(samples.length * RATE / rate));
  const step = rate / RATE;
  for (let i = 0; i < out.length; i++) { // average the input samples each output sample covers (anti-aliasing)
    const a = Math.floor(i * step), b = Math.max(a + 1, Math.floor((i + 1) * step));
    let sum = 0;
    for (let j = a; j < b && j < samples.length; j++) sum += samples[j];
    out[i] = sum / (b - a);
  }
  return out;
}

function wavBlob(chunks) {
  const n = chunks.reduce((k, c) => k + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (at, s) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, RATE, true); view.setUint32(28, 2 * RATE, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * n, true);
  let at = 44;
  chunks.forEach((c) => c.forEach((v) => { view.setInt16(at, v, true); at += 2; }));
  return new Blob([view], { type: "audio/wav" });
}

async function startRecording() {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  let context;
  try { context = new AudioContext({ sampleRate: RATE }); } catch (e) { context = new AudioContext(); }
  await context.audioWorklet.addModule("/recorder-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-recorder");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`);
  socket.binaryType = "arraybuffer";
  const chunks = [];
  const state = { media, context, node, socket, chunks, partials: 0 };
  node.port.onmessage = (event) => {
    const pcm = toInt16(resampleTo16k(event.data, context.sampleRate));
    chunks.push(pcm);
    if (socket.readyState === WebSocket.OPEN) socket.send(pcm.buffer);
  };
  socket.onmessage = (event) => onStreamMessage(state, JSON.parse(event.data));
  socket.onerror = () => setStatus("the live connection failed", true);
  context.createMediaStreamSource(media).connect(node);
  node.connect(context.destination); // the processor outputs silence; the connection keeps it running
  $("transcript").dataset.state = "busy";
  $("partial").textContent = "";
  document.body.dataset.partials = "0";
  return state;
}

function onStreamMessage(state, msg) {
  if (msg.type === "partial") {
    state.partials += 1;
    document.body.dataset.partials = String(state.partials);
    $("partial").textContent = msg.text || "…";
    setStatus(`listening … ${msg.duration.toFixed(1)} s`);
  } else if (msg.type === "final") {
    $("partial").textContent = "";
    showTranscript(msg);
    $("player").src = URL.createObjectURL(wavBlob(state.chunks));
    setStatus(`recorded ${msg.duration.toFixed(2)} s`);
  } else if (msg.type === "error") {
    setStatus(msg.error, true);
  }
}

async function stopRecording(state) {
  state.media.getTracks().forEach((t) => t.stop());
  await state.context.close();
  setStatus("finishing …");
  if (state.socket.readyState === WebSocket.OPEN) state.socket.send("end");
  else state.socket.addEventListener("open", () => state.socket.send("end"));
}

async function toggleRecording() {
  const button = $("record");
  if (recorder) {
    const state = recorder;
    recorder = null;
    button.textContent = "Record";
    button.classList.remove("recording");
    await stopRecording(state);
    return;
  }
  try {
    recorder = await startRecording();
    button.textContent = "Stop";
    button.classList.add("recording");
    setStatus("listening …");
  } catch (e) {
    setStatus(`cannot record: ${e.message || e}`, true);
  }
}

$("file").addEventListener("change", () => { $("upload").disabled = !$("file").files.length; uploadFile(); });
$("upload").addEventListener("click", uploadFile);
$("record").addEventListener("click", toggleRecording);
$("player").addEventListener("play", () => requestAnimationFrame(highlight));
$("player").addEventListener("seeked", highlight);
fetch("/health").then((r) => r.json()).then((h) => { $("model").textContent = h.model; }).catch(() => {});
