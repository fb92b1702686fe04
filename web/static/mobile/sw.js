// The phone app's service worker (scope /m/): keeps the app shell on the phone so the app
// opens offline, keeps the category catalogue and the region tiles for the map seen last,
// and sends the outbox when the network returns (Background Sync where the browser has it).
// Caching follows web.dev's offline cookbook: cache-first for the versioned shell, network
// falling back to the cache for the page, stale-while-revalidate for the catalogue.
// The page carries the app's own script, styles and the outbox inline (queue.js, imported
// here too), so it is the one file that changes with the app.
import "/m/static/queue.js";

const { flush } = self.gridmgrQueue;
const VERSION = "m-3";
const SHELL = `${VERSION}-shell`;
const DATA = `${VERSION}-data`;
const SHELL_FILES = [
  "/m/", "/m/manifest.webmanifest", "/m/static/exif.js", "/m/static/icons/icon-192.png",
  "/maps/static/vendor/leaflet/leaflet.js", "/maps/static/vendor/leaflet/leaflet.css",
  "/maps/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js",
  "/maps/static/vendor/socketio/socket.io.min.js", "/maps/static/vendor/exifr/mini.esm.mjs",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_FILES))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => !k.startsWith(VERSION)).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function pageFirstFromNetwork(request) {
  try {
    const response = await fetch(request);
    if (response.ok) (await caches.open(SHELL)).put("/m/", response.clone());
    return response;
  } catch (_) {
    return (await caches.match("/m/")) || Response.error();
  }
}

async function fromCacheFirst(request) {
  const cached = await caches.match(request, { ignoreSearch: false });
  return cached || fetch(request);
}

async function staleWhileRevalidate(request) {
  const cache = await caches.open(DATA);
  const cached = await cache.match(request);
  const fresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  });
  if (cached) {
    fresh.catch(() => null);
    return cached;
  }
  // A tile never seen, and no network: an empty answer (the map draws what it has) rather than
  // a failed fetch, which the map library leaves uncaught.
  return fresh.catch(() => (new URL(request.url).pathname.startsWith("/m/tiles/")
    ? new Response(null, { status: 504 }) : Response.error()));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/m/")) {
    event.respondWith(pageFirstFromNetwork(request));
  } else if (SHELL_FILES.includes(url.pathname) || url.pathname.startsWith("/maps/static/vendor/leaflet/")) {
    event.respondWith(fromCacheFirst(request));
  } else if (url.pathname === "/api/v1/categories" || url.pathname.startsWith("/m/tiles/")
             || (url.pathname.startsWith("/api/v1/photos/") && !url.search.includes("original"))) {
    event.respondWith(staleWhileRevalidate(request));
  }
});

// What could not go yet (no network after all, a server busy or down) fails the sync event,
// so the browser fires it again later, with its own back-off.
self.addEventListener("sync", (event) => {
  if (event.tag !== "outbox") return;
  event.waitUntil(flush().then(({ waiting }) => {
    if (waiting) throw new Error(`${waiting} waiting in the outbox`);
  }));
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "flush") event.waitUntil(flush());
});
