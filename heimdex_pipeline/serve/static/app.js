// The little the pages need: search (text, a dropped image or face), playback, upload, renaming people.
"use strict";

const $ = (selector) => document.querySelector(selector);
const time = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function show(result, label) {
  const grid = $("#results");
  grid.replaceChildren();
  const notes = (result.notes || []).join(" ");
  const random = result.random_weights ? " (random CLIP weights: scores reflect pixels, not meaning)" : "";
  $("#status").textContent = `${result.hits.length} scenes for ${label}${random}. ${notes}`;
  for (const hit of result.hits) {
    const card = $("#hit").content.firstElementChild.cloneNode(true);
    card.href = `/videos/${encodeURIComponent(hit.video_id)}?t=${hit.play_from_s.toFixed(3)}`;
    const img = card.querySelector("img");
    if (hit.thumbnail_url) {
      img.src = hit.thumbnail_url;
      img.onerror = () => img.replaceWith(Object.assign(document.createElement("div"), { className: "placeholder", textContent: "no picture" }));
    } else {
      img.replaceWith(Object.assign(document.createElement("div"), { className: "placeholder", textContent: "no picture" }));
    }
    card.querySelector(".rank").textContent = `#${hit.rank}`;
    card.querySelector(".title").textContent = hit.video_title || hit.video_id;
    if (document.body.dataset.admin === "yes" && hit.video_owner) {  // whose, for an admin
      card.querySelector(".title").after(Object.assign(document.createElement("span"), { className: "owner", textContent: hit.video_owner }));
    }
    card.querySelector(".span").textContent = `${time(hit.start_s)} – ${time(hit.end_s)}`;
    const why = hit.visual_score !== null ? ` · pictures ${hit.visual_score.toFixed(3)}` : "";
    card.querySelector(".score").textContent = `score ${hit.score.toFixed(3)}${why}`;
    if (hit.speech) {  // the words said, the query's words marked (as text nodes: never HTML)
      const said = card.querySelector(".said");
      said.hidden = false;
      said.append(Object.assign(document.createElement("time"), { textContent: time(hit.play_from_s) }), " “");
      hit.speech.words.forEach((word, index) => {
        if (index) said.append(" ");
        said.append(word.matched ? Object.assign(document.createElement("mark"), { textContent: word.text }) : word.text);
      });
      said.append("”");
    }
    if (hit.face) {  // who is seen, and when (text nodes only)
      const who = card.querySelector(".who");
      who.hidden = false;
      if (hit.face.crop_url) who.append(Object.assign(document.createElement("img"), { src: hit.face.crop_url, alt: "" }));
      const name = hit.face.person_name || (hit.face.person_id ? `Person ${hit.face.person_id}` : "a face");
      who.append(`${name} at ${time(hit.face.time_s)} · distance ${hit.face.distance.toFixed(3)}`);
    }
    grid.append(card);
  }
}

async function run(promise, label) {
  $("#status").textContent = "Searching…";
  try {
    show(await answer(await promise), label);
  } catch (error) {
    $("#results").replaceChildren();
    $("#status").textContent = error.message;
  }
}

function searchImage(file) {
  $("#q").value = "";
  history.replaceState(null, "", "/");
  const preview = $("#query-image");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const form = new FormData();
  form.append("image", file);
  run(fetch("/api/search/image?limit=24", { method: "POST", body: form }), `the picture “${file.name}”`);
}

function searchFace(file) {
  const q = $("#q").value.trim();
  const preview = $("#query-image");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const form = new FormData();
  form.append("photo", file);
  if (q) form.append("q", q);
  const label = q ? `“${q}” with the face in “${file.name}”` : `the face in “${file.name}”`;
  run(fetch("/api/search/face?limit=24", { method: "POST", body: form }), label);
}

function setUpDrop(zone, input, handle) {
  input.addEventListener("change", (event) => event.target.files[0] && handle(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) handle(file);
  });
}

function setUpRename() {
  for (const form of document.querySelectorAll("form.rename")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = form.elements.name.value.trim();
      if (!name) return;
      form.classList.remove("saved");
      const response = await fetch(`/api/people/${form.dataset.person}/name`, {
        method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }),
      });
      if (response.ok) form.classList.add("saved");
      else form.elements.name.setCustomValidity((await response.json().catch(() => ({}))).detail || "not saved");
    });
  }
}

function setUpSearch() {
  const form = $("#search");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#q").value.trim();
    if (!q) return;
    $("#query-image").hidden = true;
    const mode = $("#mode") ? $("#mode").value : "hybrid";
    history.replaceState(null, "", `/?q=${encodeURIComponent(q)}&mode=${mode}`);
    run(fetch(`/api/search?limit=24&mode=${mode}&q=${encodeURIComponent(q)}`), `“${q}”`);
  });
  setUpDrop($("#drop"), $("#image"), searchImage);
  if ($("#drop-face")) setUpDrop($("#drop-face"), $("#face"), searchFace);
  const params = new URLSearchParams(location.search);
  if (params.get("mode") && $("#mode")) $("#mode").value = params.get("mode");
  const q = params.get("q");
  if (q) { $("#q").value = q; form.requestSubmit(); }
}

function setUpPlayer() {
  const player = $("#player");
  if (!player) return;
  const scenes = [...document.querySelectorAll(".scene")];
  const seek = (start) => { player.currentTime = start; };
  const start = parseFloat(player.dataset.start || "0");
  player.addEventListener("loadedmetadata", () => { if (start > 0) seek(start); }, { once: true });
  player.addEventListener("timeupdate", () => {
    for (const scene of scenes) scene.classList.toggle("playing", player.currentTime >= +scene.dataset.start &&
      (scene.nextElementSibling ? player.currentTime < +scene.nextElementSibling.dataset.start : true));
  });
  const lines = [...document.querySelectorAll(".transcript .line")];
  player.addEventListener("timeupdate", () => {  // the line being said, highlighted
    for (const line of lines) {
      const on = player.currentTime >= +line.dataset.start && player.currentTime < +line.dataset.end;
      if (on && !line.classList.contains("speaking")) line.scrollIntoView({ block: "nearest" });
      line.classList.toggle("speaking", on);
    }
  });
  for (const link of [...scenes, ...lines]) link.addEventListener("click", (event) => {
    event.preventDefault();
    seek(+link.dataset.start);
    player.play().catch(() => {});
    history.replaceState(null, "", `?t=${link.dataset.start}`);
  });
}

function setUpUpload() {
  const form = $("#upload");
  if (!form || !$("#file")) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("#file").files[0];
    if (!file) return;
    const request = new XMLHttpRequest();
    const data = new FormData();
    data.append("file", file);
    const bar = $("#progress");
    bar.hidden = false;
    request.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
    request.onload = () => {
      const body = JSON.parse(request.responseText || "{}");
      if (request.status === 201) {
        $("#status").innerHTML = "";
        const link = Object.assign(document.createElement("a"), { href: "/videos", textContent: "the videos page" });
        $("#status").append(`Uploaded as ${body.video_id}: it will be indexed shortly. Follow it on `, link, ".");
      } else {
        $("#status").textContent = body.detail || `upload failed (${request.status})`;
      }
    };
    request.onerror = () => { $("#status").textContent = "upload failed: the server could not be reached"; };
    request.open("POST", "/api/videos");
    request.send(data);
  });
}

function setUpRefresh() {
  const grid = document.querySelector("[data-refresh='yes']");
  if (grid) setTimeout(() => location.reload(), 5000);  // states are changing: keep them fresh
}

document.addEventListener("DOMContentLoaded", () => { setUpSearch(); setUpPlayer(); setUpUpload(); setUpRefresh(); setUpRename(); });
