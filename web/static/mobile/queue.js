// The phone's outbox: reports and steps wait here (IndexedDB) until the API has them.
// Each entry carries the id the API de-duplicates on (a report's client_id, a step's
// Idempotency-Key), so sending it again after a lost answer stores nothing twice. Used by the
// page and by the service worker (Background Sync); a Web Lock lets one of them send at a time.

const DB_NAME = "gridmgr-m";
const STORES = ["outbox", "mine", "session"];

// A send that hangs (a dead network that says it is up) gives up, freeing the outbox.
const SEND_TIMEOUT_MS = 20000;

let opened = null;

export function openDb() {
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

async function store(name, mode = "readonly") {
  if (!STORES.includes(name)) throw new Error(name);
  return (await openDb()).transaction(name, mode).objectStore(name);
}

export async function getAll(name) { return done((await store(name)).getAll()); }
export async function get(name, key) { return done((await store(name)).get(key)); }
export async function put(name, value, key) {
  return done((await store(name, "readwrite")).put(value, key));
}
export async function remove(name, key) { return done((await store(name, "readwrite")).delete(key)); }

/** A new id for a report's client_id or a step's Idempotency-Key. */
export function newId(kind) { return `m-${kind}-${crypto.randomUUID()}`; }

/** Keep ``entry`` ({id, kind, url, fields, photos, lang, auth}) until it is sent. */
export async function enqueue(entry) {
  await put("outbox", { ...entry, status: "pending", created: Date.now() });
  if (self.registration && self.registration.sync) return;
  try {
    const registration = await navigator.serviceWorker?.ready;
    await registration?.sync?.register("outbox");
  } catch (_) { /* no Background Sync here: sent on the next open or "online" */ }
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
export async function flush() {
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
