// The little the pages need: search (text or a dropped image), playback from a scene, upload.
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
    card.href = `/videos/${encodeURIComponent(hit.video_id)}?t=${hit.start_s.toFixed(3)}`;
    const img = card.querySelector("img");
    if (hit.thumbnail_url) {
      img.src = hit.thumbnail_url;
      img.onerror = () => img.replaceWith(Object.assign(document.createElement("div"), { className: "placeholder", textContent: "no picture" }));
    } else {
      img.replaceWith(Object.assign(document.createElement("div"), { className: "placeholder", textContent: "no picture" }));
    }
    card.querySelector(".rank").textContent = `#${hit.rank}`;
    card.querySelector(".title").textContent = hit.video_title || hit.video_id;
    card.querySelector(".span").textContent = `${time(hit.start_s)} – ${time(hit.end_s)}`;
    card.querySelector(".score").textContent = `score ${hit.score.toFixed(3)}`;
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

function setUpSearch() {
  const form = $("#search");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#q").value.trim();
    if (!q) return;
    $("#query-image").hidden = true;
    history.replaceState(null, "", `/?q=${encodeURIComponent(q)}`);
    run(fetch(`/api/search?limit=24&q=${encodeURIComponent(q)}`), `“${q}”`);
  });
  const drop = $("#drop");
  $("#image").addEventListener("change", (event) => event.target.files[0] && searchImage(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) searchImage(file);
  });
  const q = new URLSearchParams(location.search).get("q");
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
  for (const scene of scenes) scene.addEventListener("click", (event) => {
    event.preventDefault();
    seek(+scene.dataset.start);
    player.play().catch(() => {});
    history.replaceState(null, "", `?t=${scene.dataset.start}`);
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

document.addEventListener("DOMContentLoaded", () => { setUpSearch(); setUpPlayer(); setUpUpload(); setUpRefresh(); });
