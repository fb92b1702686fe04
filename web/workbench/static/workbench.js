// The workbench's one module: lists refresh themselves from /live, small maps show a case and
// its steps, the hotline's map places a report, "use my position" fills an on-site step.
const liveState = document.getElementById("live-state");

function setLive(on) {
  if (liveState) { liveState.textContent = on ? liveState.dataset.live : liveState.dataset.offline; }
}

async function refreshRows(table) {
  const answer = await fetch(table.dataset.liveRows, { credentials: "same-origin" });
  if (!answer.ok) { return; }
  const body = table.tBodies[0];
  const template = document.createElement("template");
  template.innerHTML = "<table><tbody>" + (await answer.text()) + "</tbody></table>";
  const fresh = template.content.querySelector("tbody");
  if (fresh) { body.replaceChildren(...fresh.children); }
}

async function refreshBlock(block) {
  const answer = await fetch(location.href, { credentials: "same-origin" });
  if (!answer.ok) { return; }
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = page.querySelector("[data-live-reload]");
  const focused = document.activeElement;
  // Never pull a form away from someone typing in it.
  if (fresh && !(focused && block.contains(focused) && focused.matches("input, textarea, select"))) {
    block.replaceChildren(...fresh.childNodes);
  }
}

let pending = null;
function refreshSoon() {
  if (pending) { return; }
  pending = setTimeout(() => {
    pending = null;
    document.querySelectorAll("[data-live-rows]").forEach((t) => refreshRows(t));
    document.querySelectorAll("[data-live-reload]").forEach((b) => refreshBlock(b));
  }, 100);
}

async function freshToken() {
  const answer = await fetch("/workbench/live-token", { credentials: "same-origin" });
  if (!answer.ok) { throw new Error("signed out"); }
  return (await answer.json()).token;
}

function loadSocketIo() {
  return new Promise((resolve, reject) => {
    if (window.io) { resolve(window.io); return; }
    const script = document.createElement("script");
    script.src = "/maps/static/vendor/socketio/socket.io.min.js";
    const nonce = document.querySelector("script[nonce]");
    if (nonce) { script.nonce = nonce.nonce; }
    script.onload = () => resolve(window.io);
    script.onerror = reject;
    document.head.appendChild(script);
  });
}

async function connectLive() {
  if (!document.querySelector("[data-live-rows], [data-live-reload]")) { return; }
  const io = await loadSocketIo();
  let lastSeq = 0;
  const socket = io("/live", {
    transports: ["websocket"], reconnectionDelay: 500, reconnectionDelayMax: 3000,
    auth: (cb) => {
      freshToken().then((token) => cb(lastSeq > 0 ? { token, since: lastSeq } : { token }))
        .catch(() => cb({}));
    },
  });
  socket.on("connect", () => setLive(true));
  socket.on("disconnect", () => setLive(false));
  socket.on("connect_error", () => setLive(false));
  socket.onAny((event, data) => {
    if (data && typeof data.seq === "number" && data.seq > lastSeq) { lastSeq = data.seq; }
    if (event.startsWith("case.") || event === "replay.truncated") { refreshSoon(); }
  });
  window.workbenchLive = socket;
}

function caseMap(element) {
  const L = window.L;
  const lat = Number(element.dataset.lat), lon = Number(element.dataset.lon);
  const map = L.map(element, { attributionControl: false }).setView([lat, lon], 16);
  L.circleMarker([lat, lon], { radius: 8, color: "#b00020" }).addTo(map);
  document.querySelectorAll(".timeline li[data-lat]").forEach((step) => {
    if (step.dataset.lat) {
      L.circleMarker([Number(step.dataset.lat), Number(step.dataset.lon)], { radius: 5 })
        .bindTooltip(step.querySelector("strong").textContent).addTo(map);
    }
  });
}

function pickMap(element) {
  const L = window.L;
  const map = L.map(element, { attributionControl: false });
  const box = (element.dataset.bbox || "").split(",").map(Number);
  if (box.length === 4) { map.fitBounds([[box[1], box[0]], [box[3], box[2]]]); }
  else { map.setView([0, 0], 2); }
  const lonInput = document.getElementById(element.dataset.pickLon);
  const latInput = document.getElementById(element.dataset.pickLat);
  let marker = null;
  const place = (lat, lon) => {
    lonInput.value = lon.toFixed(6);
    latInput.value = lat.toFixed(6);
    if (marker) { marker.setLatLng([lat, lon]); } else { marker = L.marker([lat, lon]).addTo(map); }
  };
  map.on("click", (e) => place(e.latlng.lat, e.latlng.lng));
  const search = document.querySelector("[data-region-search]");
  if (search) {
    const list = document.getElementById(search.dataset.regionSearch);
    let found = [];
    search.addEventListener("input", async () => {
      const q = search.value.trim();
      if (q.length < 2) { return; }
      const answer = await fetch("/workbench/regions?q=" + encodeURIComponent(q), { credentials: "same-origin" });
      if (!answer.ok) { return; }
      found = (await answer.json()).items;
      list.replaceChildren(...found.map((r) => {
        const option = document.createElement("option");
        option.value = r.code + " " + r.name;
        return option;
      }));
      const chosen = found.find((r) => search.value === r.code + " " + r.name);
      if (chosen) { place(chosen.lat, chosen.lon); map.setView([chosen.lat, chosen.lon], 16); }
    });
  }
}

document.querySelectorAll("button.here").forEach((button) => {
  button.addEventListener("click", () => {
    navigator.geolocation.getCurrentPosition((p) => {
      document.getElementById(button.dataset.lon).value = p.coords.longitude.toFixed(6);
      document.getElementById(button.dataset.lat).value = p.coords.latitude.toFixed(6);
    });
  });
});
if (window.L) {
  const small = document.querySelector(".small-map");
  if (small) { caseMap(small); }
  const pick = document.querySelector(".pick-map");
  if (pick) { pickMap(pick); }
}
connectLive().catch(() => setLive(false));
