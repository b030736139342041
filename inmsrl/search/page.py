"""The listening page served by ``inmsrl serve``: one self-contained HTML document (no external files).

It asks ``/api/index`` for the instruments and tracks, lets the user pick a query track or upload a
file, set a weight per instrument and the number of hits, and lists the hits with two players each:
the query and the hit, both starting at the best-matching windows (``#t=`` media fragments).
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>inmsrl — per-instrument music search</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; max-width: 70em; }
 fieldset { margin-bottom: 1em; }
 label { margin-right: 1em; }
 .weight input { width: 4em; }
 table { border-collapse: collapse; width: 100%; }
 th, td { border-bottom: 1px solid #ccc; padding: 0.3em; text-align: left; vertical-align: middle; }
 #status { color: #555; margin: 0.5em 0; }
 #status.error { color: #b00; }
 audio { height: 2em; width: 16em; }
</style>
</head>
<body>
<h1>Which songs have a part like this one's?</h1>
<p id="model"></p>
<fieldset>
 <legend>Query</legend>
 <label>Indexed track <select id="track"></select></label>
 <button id="search-track">Search</button>
 <span id="upload-box"> or upload a file <input type="file" id="file" accept="audio/*">
 <button id="search-file">Search with file</button></span>
</fieldset>
<fieldset>
 <legend>Instrument weights</legend>
 <span id="weights"></span>
 <label>hits <input type="number" id="k" value="10" min="1" max="100" style="width:4em"></label>
</fieldset>
<div id="status"></div>
<table id="results" hidden>
 <thead><tr><th>#</th><th>track</th><th>distance</th><th>per instrument</th>
 <th>query from</th><th>match from</th><th>query</th><th>match</th></tr></thead>
 <tbody></tbody>
</table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null;

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function weights() {
  return info.sources.map((s) => s + "=" + ($("w-" + s).value || 0)).join(",");
}

function clock(seconds) {
  const m = Math.floor(seconds / 60), s = (seconds % 60).toFixed(1).padStart(4, "0");
  return m + ":" + s;
}

function player(src, start) {
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "metadata";
  audio.src = src + "#t=" + start.toFixed(3);
  audio.dataset.start = start.toFixed(3);
  return audio;
}

function show(hits, querySrc) {
  const body = $("results").querySelector("tbody");
  body.replaceChildren();
  for (const hit of hits) {
    const row = body.insertRow();
    row.className = "hit";
    row.dataset.track = hit.track;
    row.insertCell().textContent = hit.rank;
    row.insertCell().textContent = hit.track;
    row.insertCell().textContent = hit.distance.toFixed(3);
    row.insertCell().textContent = Object.entries(hit.per_source)
      .map(([s, d]) => s + " " + d.toFixed(2)).join(", ");
    row.insertCell().textContent = clock(hit.query_time);
    row.insertCell().textContent = clock(hit.match_time);
    const queryCell = row.insertCell(), matchCell = row.insertCell();
    queryCell.className = "query-audio";
    queryCell.appendChild(player(querySrc, hit.query_time));
    matchCell.className = "match-audio";
    matchCell.appendChild(player("/audio/" + hit.number, hit.match_time));
  }
  $("results").hidden = hits.length === 0;
  status(hits.length + " hits");
}

async function answer(response) {
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

async function searchTrack() {
  const number = $("track").value;
  const id = info.tracks[number].id;
  status("searching…");
  try {
    const url = "/api/search?track=" + encodeURIComponent(id) + "&weights=" +
      encodeURIComponent(weights()) + "&k=" + $("k").value;
    const payload = await answer(await fetch(url));
    show(payload.hits, "/audio/" + number);
  } catch (err) { status(err.message, true); }
}

async function searchFile() {
  const file = $("file").files[0];
  if (!file) { status("choose a file first", true); return; }
  if (file.size > info.max_upload) {
    status(file.name + " is larger than this server takes (" + info.max_upload + " bytes)", true);
    return;
  }
  status("embedding " + file.name + "…");
  try {
    const url = "/api/upload?name=" + encodeURIComponent(file.name) + "&weights=" +
      encodeURIComponent(weights()) + "&k=" + $("k").value;
    const payload = await answer(await fetch(url, {method: "POST", body: file}));
    show(payload.hits, "/audio/upload/" + payload.upload);
  } catch (err) { status(err.message, true); }
}

async function start() {
  info = await answer(await fetch("/api/index"));
  $("model").textContent = info.tracks.length + " tracks indexed with " + (info.model || "a model") +
    "; instruments: " + info.sources.join(", ");
  for (const track of info.tracks) {
    const option = document.createElement("option");
    option.value = track.number;
    option.textContent = track.id + " (" + clock(track.duration) + ")";
    $("track").appendChild(option);
  }
  for (const source of info.sources) {
    const label = document.createElement("label");
    label.className = "weight";
    label.textContent = source + " ";
    const input = document.createElement("input");
    input.type = "number"; input.min = "0"; input.step = "0.1"; input.value = "1"; input.id = "w-" + source;
    label.appendChild(input);
    $("weights").appendChild(label);
  }
  $("upload-box").hidden = !info.uploads;
  $("search-track").onclick = searchTrack;
  $("search-file").onclick = searchFile;
  status("ready");
}
start().catch((err) => status(err.message, true));
</script>
</body>
</html>
"""
