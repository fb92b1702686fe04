// The phone's outbox: reports and steps wait here (IndexedDB) until the API has them.
// Each entry carries the id the API de-duplicates on (a report's client_id, a step's
// Idempotency-Key), so sending it again after a lost answer stores nothing twice. Used by the
// page and by the service worker (Background Sync); a Web Lock lets one of them send at a time.
// A plain script, not a module: the page carries it inline (its first screen waits for no
// second request) and the service worker imports it; both find it as self.gridmgrQueue.
(() => {

const DB_NAME = "gridmgr-m";
const STORES = ["outbox", "mine", "session"];

// A send that hangs (a dead network that says it is up) gives up, freeing the outbox.
const SEND_TIMEOUT_MS = 20000;
const STEP_CONFLICT_RETRY_MS = 1000;

let opened = null;

function openDb() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore("outbox", { keyPath: "id" });
        db.createObjectStore("mine", { keyPath: "client_id" });
        db.createObjectStore("session");
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(name) {
  if (!STORES.includes(name)) throw new Error(name);
  return (await openDb()).transaction(name, "readonly").objectStore(name);
}

// A write is done when its transaction is complete and on disk, not when its request succeeds:
// a page closed right after "kept on this phone" would otherwise take the entry with it.
async function write(name, operation) {
  if (!STORES.includes(name)) throw new Error(name);
  const transaction = (await openDb()).transaction(name, "readwrite", { durability: "strict" });
  const request = operation(transaction.objectStore(name));
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve(request.result);
    transaction.onabort = () => reject(transaction.error || request.error);
  });
}

async function getAll(name) { return done((await store(name)).getAll()); }
async function get(name, key) { return done((await store(name)).get(key)); }
async function put(name, value, key) { return write(name, (s) => s.put(value, key)); }
async function remove(name, key) { return write(name, (s) => s.delete(key)); }

/** A new id for a report's client_id or a step's Idempotency-Key. */
function newId(kind) { return `m-${kind}-${crypto.randomUUID()}`; }

/** Keep ``entry`` ({id, kind, url, fields, photos, lang, auth}) until it is sent. */
async function enqueue(entry) {
  await put("outbox", { ...entry, status: "pending", created: Date.now() });
  if (self.registration && self.registration.sync) return;
  // Not awaited: on a first visit the service worker may still be installing.
  navigator.serviceWorker?.ready.then((registration) => registration.sync?.register("outbox"))
    .catch(() => null); // no Background Sync here: sent on the next open or "online"
}

async function tokens() { return get("session", "tokens"); }

async function refreshed() {
  const pair = await tokens();
  if (!pair?.refresh_token) return null;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST", headers: { Authorization: `Bearer ${pair.refresh_token}` },
    signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  if (!response.ok) return null;
  const fresh = await response.json();
  await put("session", { ...pair, ...fresh }, "tokens");
  return fresh.access_token;
}

async function send(entry, token) {
  const body = new FormData();
  for (const [name, value] of Object.entries(entry.fields || {})) {
    if (value !== null && value !== undefined && value !== "") body.append(name, String(value));
  }
  (entry.photos || []).forEach((photo, i) => body.append("photos", photo, `photo-${i}.jpg`));
  const headers = { "Accept-Language": entry.lang || "zh" };
  if (entry.kind === "step") headers["Idempotency-Key"] = entry.id;
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(entry.url, { method: "POST", headers, body, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
}

async function sendOne(entry) {
  let token = entry.auth ? (await tokens())?.access_token : null;
  let response = await send(entry, token);
  if (response.status === 401 && entry.auth) {
    token = await refreshed();
    if (!token) return "later";
    response = await send(entry, token);
  }
  if (response.status === 409 && entry.kind === "step") {
    // Refused as a conflict while a copy of this very step (a request the browser sent again
    // on a new connection) may still be being taken: asked once more with the same key, the
    // API answers with that step's answer, or refuses again if someone else moved the case.
    await new Promise((resolve) => setTimeout(resolve, STEP_CONFLICT_RETRY_MS));
    response = await send(entry, token);
  }
  if (response.status === 429 || response.status >= 500 || response.status === 401) return "later";
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    if (entry.kind === "report") {
      const before = await get("mine", entry.id);
      await put("mine", {
        ...(before || {}), client_id: entry.id, description: entry.fields.description || "",
        category: entry.fields.category, category_name: entry.category_name || "",
        created: entry.created, case_code: answer.case?.code, case_id: answer.case?.id,
        tracking_token: answer.tracking_token || before?.tracking_token || null });
    }
    await put("outbox", { ...entry, photos: [], status: "sent", answer, sent: Date.now() });
  } else {
    await put("outbox", { ...entry, photos: [], status: "failed", error: answer.error || {
      code: `http_${response.status}`, message: String(response.status) } });
  }
  return "done";
}

async function tell(message) {
  const windows = self.clients ? await self.clients.matchAll({ type: "window" }) : [];
  windows.forEach((client) => client.postMessage(message));
  if (!self.clients && self.dispatchEvent) self.dispatchEvent(new CustomEvent("outbox", { detail: message }));
}

/** Send every waiting entry, oldest first; stops at the first that cannot go yet. */
async function flush() {
  const run = async () => {
    const waiting = (await getAll("outbox")).filter((e) => e.status === "pending")
      .sort((a, b) => a.created - b.created);
    let sent = 0;
    for (const entry of waiting) {
      let outcome;
      try {
        outcome = await sendOne(entry);
      } catch (_) {
        outcome = "later"; // no network
      }
      if (outcome === "later") break;
      sent += 1;
    }
    if (sent) await tell({ type: "outbox", sent });
    return { sent, waiting: waiting.length - sent };
  };
  return navigator.locks ? navigator.locks.request("gridmgr-outbox", run) : run();
}

self.gridmgrQueue = { openDb, getAll, get, put, remove, newId, enqueue, flush };
})();
