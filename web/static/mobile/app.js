// gridmgr on the phone: a citizen's report (online or offline), its tracking and rating;
// a grid inspector's duty, patrol, live tasks and on-site steps; a field worker's steps.
// Rules live in the API: the actions shown are the ones the API says the case takes, and
// every refusal is the API's own sentence (Accept-Language) shown next to its field.
// The page carries this script and the outbox's (queue.js) inline: the first screen is one
// request. The map library loads when a map is first shown.
const { enqueue, flush, get, getAll, newId, put, remove } = self.gridmgrQueue;

const LANG = (navigator.languages || [navigator.language || "zh"])
  .map((l) => l.slice(0, 2)).find((l) => l === "zh" || l === "en") || "zh";
const TEXT = {
  zh: {
    report: "上报", mine: "我的上报", staff: "工作", signIn: "登录", signOut: "退出",
    photo: "照片", takePhoto: "拍照或选择照片", location: "位置", myLocation: "使用我的位置",
    accuracy: "精度约 %s 米", noLocation: "无法获取手机位置。", usePhotoLocation: "使用照片中的位置",
    pinHint: "拖动地图上的标记以调整位置。", category: "问题类别", categorySearch: "搜索类别，如“井盖”",
    description: "问题描述", contact: "联系方式（可选，用于接收进展）", name: "姓名", phone: "电话",
    email: "电子邮箱", send: "提交", queued: "已保存在手机上，联网后自动发送。", sent: "已提交",
    sending: "正在发送…", tracking: "进度", state: "状态", timeline: "办理经过", photos: "照片",
    after: "处置后", rate: "评价", rateDone: "感谢您的评价。", rating: "满意度（1–5）",
    offline: "离线", online: "在线", waiting: "待发送", failed: "未能提交", open: "查看",
    username: "用户名", password: "密码", onDuty: "在岗", offDuty: "离岗", patrol: "巡查模式",
    tasks: "待办任务", noTasks: "暂无任务。", navigate: "导航前往", note: "备注",
    valid: "属实", invalid: "不属实", passed: "核查通过", notPassed: "核查未通过",
    actionsNone: "此案件目前无需您处理。", pickCategory: "请选择类别。", needLocation: "请确定位置。",
    amount: "延期时长", unit: "单位", problems: "未能完成的操作", dismiss: "知道了",
    patrolReport: "巡查上报", code: "案件编号", stepQueued: "已保存，联网后自动提交。",
    stepDone: "已完成", refresh: "刷新", reportedAt: "上报时间", myGrids: "我的网格",
    hotspots: "近 7 天热点", forecast: "下周预测", expected: "预计 %s 件", noHotspots: "暂无热点。",
    actions: { verify: "核实", check: "核查", self_handle: "自行处置", accept: "签收",
      extend: "申请延期", handle: "处置反馈", return: "回退", shelve: "申请挂账", rate: "评价",
      file: "立案", dispatch: "派遣", close: "结案", cancel: "作废" },
    states: { reported: "已上报", verified: "已核实", filed: "已立案", dispatched: "已派遣",
      accepted: "处置中", handled: "已处置", checked: "已核查", closed: "已结案",
      cancelled: "已作废", shelved: "已挂账" },
    units: { working_hours: "工作小时", working_days: "工作日", urgent_hours: "紧急小时",
      natural_days: "自然日" },
  },
  en: {
    report: "Report", mine: "My reports", staff: "Work", signIn: "Sign in", signOut: "Sign out",
    photo: "Photo", takePhoto: "Take or choose a photo", location: "Location",
    myLocation: "Use my location", accuracy: "accurate to about %s m",
    noLocation: "The phone's location is not available.", usePhotoLocation: "Use the photo's location",
    pinHint: "Drag the pin on the map to adjust the place.", category: "Category",
    categorySearch: "Search categories, e.g. \"manhole\"", description: "Description",
    contact: "Contact (optional, for updates)", name: "Name", phone: "Phone", email: "E-mail",
    send: "Send", queued: "Kept on this phone; it will be sent when the network returns.",
    sent: "Sent", sending: "Sending…", tracking: "Progress", state: "State", timeline: "Timeline",
    photos: "Photos", after: "after the work", rate: "Rate", rateDone: "Thank you for your rating.",
    rating: "Satisfaction (1–5)", offline: "offline", online: "online", waiting: "waiting",
    failed: "not accepted", open: "Open", username: "User name", password: "Password",
    onDuty: "On duty", offDuty: "Off duty", patrol: "Patrol mode", tasks: "Tasks",
    noTasks: "No tasks.", navigate: "Navigate there", note: "Note", valid: "True report",
    invalid: "False report", passed: "Check passed", notPassed: "Check failed",
    actionsNone: "Nothing for you to do on this case now.", pickCategory: "Choose a category.",
    needLocation: "Set the location.", amount: "Extension", unit: "Unit",
    problems: "Steps that could not be taken", dismiss: "Dismiss", patrolReport: "Patrol report",
    code: "Case", stepQueued: "Kept; it will be sent when the network returns.",
    stepDone: "Done", refresh: "Refresh", reportedAt: "Reported", myGrids: "My grids",
    hotspots: "Hotspots of the last 7 days", forecast: "Next week", expected: "about %s cases",
    noHotspots: "No hotspots.",
    actions: { verify: "Verify", check: "Check", self_handle: "Handle on the spot",
      accept: "Accept", extend: "Request an extension", handle: "Report handled", return: "Return",
      shelve: "Request shelving", rate: "Rate", file: "File", dispatch: "Dispatch", close: "Close",
      cancel: "Cancel" },
    states: {}, units: {},
  },
};
const T = TEXT[LANG];
const t = (key, arg) => String(T[key] ?? TEXT.en[key] ?? key).replace("%s", arg ?? "");
const label = (group, key) => T[group][key] || TEXT.zh[group][key] || key;
const city = JSON.parse(document.body.dataset.city || "{}");
const view = document.getElementById("view");
const app = { session: null, map: null, socket: null, patrolWatch: null, lastPosition: 0 };
window.gridmgrApp = app;

// -- small helpers -------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function field(id, text, control, ...more) {
  return h("div", { class: "field", id: `f-${id}` }, h("label", { for: id, text }), control,
    ...more, h("p", { class: "error", id: `e-${id}`, role: "alert" }));
}

function showError(id, message) {
  const box = document.getElementById(`e-${id}`) || document.getElementById("e-form");
  if (box) box.textContent = message || "";
}

function clearErrors() { document.querySelectorAll(".error").forEach((e) => { e.textContent = ""; }); }

// Which field an API refusal is about, by its code.
const ERROR_FIELDS = [
  [/^(too_far|location_required|bad_location|outside_city|outside_scope|no_grid)/, "location"],
  [/photo|image|request_entity_too_large/, "photo"],
  [/category/, "category"],
  [/contact|email|phone/, "contact"],
  [/rating/, "rating"],
  [/extension|unit|amount/, "amount"],
  [/note/, "note"],
];

function fieldOf(error) {
  const hit = ERROR_FIELDS.find(([pattern]) => pattern.test(error.code || ""));
  if (hit) return hit[1];
  const fields = error.fields || error.details?.fields;
  if (fields && typeof fields === "object") {
    const name = Object.keys(fields)[0];
    if (["lon", "lat"].includes(name)) return "location";
    return name;
  }
  return "form";
}

async function session() {
  if (!app.session) app.session = (await get("session", "tokens")) || null;
  return app.session;
}

async function api(path, { method = "GET", json, auth = true } = {}) {
  const headers = { "Accept-Language": LANG, Accept: "application/json" };
  const pair = auth ? await session() : null;
  if (pair) headers.Authorization = `Bearer ${pair.access_token}`;
  if (json) headers["Content-Type"] = "application/json";
  let response = await fetch(path, { method, headers, body: json ? JSON.stringify(json) : undefined });
  if (response.status === 401 && pair?.refresh_token) {
    const renewed = await fetch("/api/v1/auth/refresh", {
      method: "POST", headers: { Authorization: `Bearer ${pair.refresh_token}` } });
    if (renewed.ok) {
      app.session = { ...pair, ...(await renewed.json()) };
      await put("session", app.session, "tokens");
      headers.Authorization = `Bearer ${app.session.access_token}`;
      response = await fetch(path, { method, headers, body: json ? JSON.stringify(json) : undefined });
    }
  }
  const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error?.message || String(response.status));
    error.api = body.error || { code: `http_${response.status}` };
    throw error;
  }
  return body;
}

// A report may take a position a few seconds old; an on-site step asks for a fresh one (the
// API checks it against the case's point, and a position from before the walk there is wrong).
function position(timeout = 8000, maximumAge = 10000) {
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve(null); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy }),
      () => resolve(null), { enableHighAccuracy: true, timeout, maximumAge });
  });
}

async function resized(file, longest = 1600) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, longest / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
}

// -- the map: the city's regions, a movable pin ---------------------------------------------

// Leaflet and VectorGrid (the wall's vendored copies), fetched side by side and run in order
// when a map is first shown: the first screen does not wait for them.
let mapLibrary = null;

function loadMapLibrary() {
  if (!mapLibrary) {
    const css = "/maps/static/vendor/leaflet/leaflet.css";
    if (!document.querySelector(`link[href="${css}"]`)) document.head.append(h("link", { rel: "stylesheet", href: css }));
    const scripts = ["/maps/static/vendor/leaflet/leaflet.js",
      "/maps/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"].map((src) => new Promise((resolve, reject) => {
      const script = h("script", { src, onload: resolve, onerror: reject });
      script.async = false;
      document.head.append(script);
    }));
    mapLibrary = Promise.all(scripts).catch((error) => { mapLibrary = null; throw error; });
  }
  return mapLibrary;
}

async function regionMap(element, point, { draggable = false, onMove } = {}) {
  try { await loadMapLibrary(); } catch (_) { return null; }
  if (!window.L || !element.isConnected) return null;
  const map = L.map(element, { zoomControl: true, attributionControl: false });
  if (L.vectorGrid) {
    L.vectorGrid.protobuf("/m/tiles/regions/{z}/{x}/{y}.pbf", {
      maxNativeZoom: 18, interactive: false,
      vectorTileLayerStyles: { regions: (p) => ({
        weight: p.level === "grid" ? 1 : 2, color: p.level === "grid" ? "#6b8fb8" : "#0b5cad",
        fill: false }) },
    }).addTo(map);
  }
  const bbox = city.bbox;
  if (point) map.setView([point.lat, point.lon], 16);
  else if (bbox) map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
  else map.setView([39.9, 116.4], 12);
  const centre = map.getCenter();
  const pin = L.marker(point ? [point.lat, point.lon] : centre, { draggable, keyboard: true,
    icon: L.divIcon({ className: "pin", iconSize: [24, 24], iconAnchor: [12, 24] }) }).addTo(map);
  if (onMove) pin.on("dragend", () => { const p = pin.getLatLng(); onMove({ lat: p.lat, lon: p.lng }); });
  return { map, pin, move(p) { pin.setLatLng([p.lat, p.lon]); map.setView([p.lat, p.lon], Math.max(map.getZoom(), 16)); } };
}

// -- the citizen's report -------------------------------------------------------------------

let catalogue = null;

function categories() {
  if (!catalogue) {
    catalogue = api(`/api/v1/categories?lang=${LANG}`, { auth: false })
      .catch((error) => { catalogue = null; throw error; });
  }
  return catalogue;
}

function matches(category, words) {
  const haystack = [category.code, category.name, category.name_zh, category.name_en,
    category.class_name_zh, category.class_name_en, ...(category.keywords || [])].join(" ").toLowerCase();
  return words.every((w) => haystack.includes(w));
}

async function reportView() {
  const state = { photo: null, exif: null, point: null, category: null, categoryName: "" };
  const locationText = h("p", { id: "location-text", class: "hint" });
  const exifButton = h("button", { type: "button", id: "use-exif", hidden: true, onclick: () => {
    setPoint({ ...state.exif, accuracy: null, source: "photo" });
  }, text: t("usePhotoLocation") });
  const mapBox = h("div", { class: "map", id: "report-map", "aria-label": t("pinHint") });
  const preview = h("img", { id: "photo-preview", alt: "", hidden: true });
  const photoInput = h("input", { type: "file", id: "photo", accept: "image/*", capture: "environment",
    onchange: () => {
      const file = photoInput.files[0];
      if (!file) return;
      // Sending waits for the resize: a quick tap on "send" must not leave the photo behind.
      state.photoReady = (async () => {
        // Loaded with the first photo: the EXIF reader is not on the first screen's path.
        const { gpsFromJpeg } = await import("/m/static/exif.js");
        state.exif = await gpsFromJpeg(file);
        state.photo = await resized(file);
        preview.src = URL.createObjectURL(state.photo);
        preview.hidden = false;
        exifButton.hidden = !state.exif || (state.point && state.point.source === "phone");
      })();
    } });
  const results = h("ul", { id: "category-results", class: "choices", role: "listbox" });
  const chosen = h("p", { id: "category-chosen", class: "hint" });
  const search = h("input", { type: "search", id: "category", placeholder: t("categorySearch"),
    autocomplete: "off", oninput: async () => {
      const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      results.replaceChildren();
      if (!words.length) return;
      let all = [];
      try { all = await categories(); } catch (error) { showError("category", error.message); }
      for (const c of all.filter((c) => matches(c, words)).slice(0, 8)) {
        results.append(h("li", {}, h("button", { type: "button", role: "option", "data-code": c.code,
          onclick: () => { state.category = c.code; state.categoryName = c.name;
            chosen.textContent = `${c.name} (${c.code})`; results.replaceChildren(); search.value = ""; },
          text: `${c.name} · ${LANG === "zh" ? c.class_name_zh : c.class_name_en}` })));
      }
    } });
  const description = h("textarea", { id: "description", rows: 3, maxlength: 4000 });
  const contactName = h("input", { id: "contact_name", autocomplete: "name" });
  const contactPhone = h("input", { id: "contact_phone", type: "tel", autocomplete: "tel" });
  const contactEmail = h("input", { id: "contact_email", type: "email", autocomplete: "email" });
  const outcome = h("div", { id: "report-outcome", role: "status" });
  let map = null;

  function setPoint(point) {
    state.point = point;
    locationText.textContent = `${point.lat.toFixed(5)}, ${point.lon.toFixed(5)}`
      + (point.accuracy ? ` · ${t("accuracy", Math.round(point.accuracy))}` : "");
    if (map) map.move(point);
    exifButton.hidden = !state.exif || point.source === "photo";
    showError("location", "");
  }

  async function locate() {
    const point = await position();
    if (point) setPoint({ ...point, source: "phone" });
    else {
      locationText.textContent = t("noLocation");
      exifButton.hidden = !state.exif;
    }
  }

  const form = h("form", { id: "report-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    outcome.replaceChildren(); // the last report's "kept" or "sent" is not this one's
    await state.photoReady;
    if (!state.category) { showError("category", t("pickCategory")); return; }
    if (!state.point) { showError("location", t("needLocation")); return; }
    const id = newId("report");
    const pair = await session();
    await enqueue({ id, kind: "report", url: "/api/v1/reports", lang: LANG, auth: Boolean(pair),
      category_name: state.categoryName,
      fields: { client_id: id, lon: state.point.lon.toFixed(7), lat: state.point.lat.toFixed(7),
        category: state.category, description: description.value.trim(),
        contact_name: contactName.value.trim(), contact_phone: contactPhone.value.trim(),
        contact_email: contactEmail.value.trim(), channel: "app" },
      photos: state.photo ? [state.photo] : [] });
    await put("mine", { client_id: id, description: description.value.trim(), category: state.category,
      category_name: state.categoryName, created: Date.now(), case_code: null, tracking_token: null });
    outcome.textContent = t("sending");
    await flush().catch(() => 0);
    const entry = await get("outbox", id);
    if (entry.status === "sent") {
      outcome.replaceChildren(h("p", { class: "ok", text: `${t("sent")}: ${entry.answer.case.code}` }),
        entry.answer.tracking_token ? h("a", { id: "track-link", href: `#/track/${entry.answer.tracking_token}`,
          text: t("tracking") }) : "");
      form.reset(); preview.hidden = true; state.photo = null; state.exif = null;
    } else if (entry.status === "failed") {
      outcome.textContent = "";
      await remove("outbox", id);
      await remove("mine", id);
      showError(fieldOf(entry.error), entry.error.message);
    } else {
      outcome.replaceChildren(h("p", { class: "queued", id: "queued-note", text: t("queued") }));
      form.reset(); preview.hidden = true; state.photo = null;
    }
  } },
  field("photo", t("takePhoto"), photoInput, preview),
  field("location", t("location"), h("div", { class: "row" },
    h("button", { type: "button", id: "locate", onclick: locate, text: t("myLocation") }), exifButton),
  locationText, mapBox, h("p", { class: "hint", text: t("pinHint") })),
  field("category", t("category"), search, results, chosen),
  field("description", t("description"), description),
  h("fieldset", { id: "f-contact" }, h("legend", { text: t("contact") }),
    field("contact_name", t("name"), contactName), field("contact_phone", t("phone"), contactPhone),
    field("contact_email", t("email"), contactEmail), h("p", { class: "error", id: "e-contact" })),
  h("p", { class: "error", id: "e-form", role: "alert" }),
  h("button", { type: "submit", id: "send", class: "primary", text: t("send") }), outcome);
  view.replaceChildren(h("h1", { text: t("report") }), form);
  categories().catch(() => null); // kept by the service worker for reports made offline
  regionMap(mapBox, null, { draggable: true, onMove: (p) => setPoint({ ...p, accuracy: null, source: "pin" }) })
    .then((shown) => { map = shown; if (map && state.point) map.move(state.point); });
  locate();
}

// -- tracking and rating --------------------------------------------------------------------

async function trackView(token) {
  view.replaceChildren(h("h1", { text: t("tracking") }), h("p", { text: "…" }));
  let tracked;
  try {
    tracked = await api(`/api/v1/reports/track/${encodeURIComponent(token)}`, { auth: false });
  } catch (error) {
    view.replaceChildren(h("h1", { text: t("tracking") }), h("p", { class: "error", text: error.message }));
    return;
  }
  const c = tracked.case;
  const rateBox = h("div", { id: "rate-box" });
  if (c.state === "closed" && tracked.rating == null) {
    const rating = h("select", { id: "rating" }, [5, 4, 3, 2, 1].map((n) => h("option", { value: n, text: "★".repeat(n) })));
    const note = h("textarea", { id: "note", rows: 2 });
    rateBox.append(h("form", { id: "rate-form", onsubmit: async (event) => {
      event.preventDefault();
      clearErrors();
      try {
        await api(`/api/v1/reports/track/${encodeURIComponent(token)}/rate`, { method: "POST",
          auth: false, json: { rating: Number(rating.value), ...(note.value.trim() ? { note: note.value.trim() } : {}) } });
        rateBox.replaceChildren(h("p", { class: "ok", id: "rated", text: t("rateDone") }));
      } catch (error) { showError(fieldOf(error.api || {}), error.message); }
    } }, field("rating", t("rating"), rating), field("note", t("note"), note),
    h("p", { class: "error", id: "e-form" }), h("button", { type: "submit", class: "primary", id: "rate", text: t("rate") })));
  } else if (tracked.rating != null) {
    rateBox.append(h("p", { id: "rated", text: `${t("rating")}: ${"★".repeat(tracked.rating)}` }));
  }
  view.replaceChildren(h("h1", { text: `${t("tracking")} · ${c.code}` }),
    h("p", {}, `${t("state")}: `, h("strong", { id: "track-state", "data-state": c.state, text: label("states", c.state) })),
    h("p", { text: `${c.category_name}` }),
    h("h2", { text: t("timeline") }),
    h("ol", { class: "timeline", id: "timeline" }, tracked.steps.map((s) =>
      h("li", {}, h("time", { datetime: s.at, text: new Date(s.at).toLocaleString(LANG) }), " ",
        label("actions", s.action), " → ", label("states", s.state)))),
    tracked.photos.length ? h("h2", { text: t("photos") }) : "",
    h("div", { class: "photos" }, tracked.photos.map((p) => h("figure", {},
      h("img", { src: p.thumbnail_url, alt: p.stage === "after" ? t("after") : t("photo"), loading: "lazy",
        class: `photo-${p.stage}` }),
      p.stage === "after" ? h("figcaption", { text: t("after") }) : ""))),
    rateBox);
}

async function mineView() {
  const mine = (await getAll("mine")).sort((a, b) => b.created - a.created);
  const outbox = await getAll("outbox");
  const status = (m) => outbox.find((e) => e.id === m.client_id);
  view.replaceChildren(h("h1", { text: t("mine") }), h("ul", { class: "cards", id: "mine" }, mine.map((m) => {
    const entry = status(m);
    const waiting = entry && entry.status === "pending";
    return h("li", { "data-client-id": m.client_id },
      h("strong", { text: m.category_name || m.category }), " ",
      h("span", { class: waiting ? "badge wait" : "badge", text: waiting ? t("waiting") : (m.case_code || "") }),
      h("p", { text: m.description }),
      m.tracking_token ? h("a", { href: `#/track/${m.tracking_token}`, text: t("tracking") }) : "");
  })));
}

// -- staff: sign-in, duty, patrol, live tasks, case page, steps ------------------------------

async function loginView() {
  const username = h("input", { id: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  view.replaceChildren(h("h1", { text: t("signIn") }), h("form", { id: "login-form", onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    try {
      const pair = await api("/api/v1/auth/token", { method: "POST", auth: false,
        json: { username: username.value.trim(), password: password.value } });
      app.session = pair;
      await put("session", pair, "tokens");
      app.session.me = await api("/api/v1/me");
      await put("session", app.session, "tokens");
      location.hash = "#/tasks";
    } catch (error) { showError("password", error.message); }
  } }, field("username", t("username"), username), field("password", t("password"), password),
  h("button", { type: "submit", class: "primary", id: "sign-in", text: t("signIn") })));
}

async function signOut() {
  const pair = await session();
  if (pair) api("/api/v1/auth/revoke", { method: "POST", json: { token: pair.refresh_token } }).catch(() => null);
  await remove("session", "tokens");
  app.session = null;
  app.socket?.disconnect();
  app.socket = null;
  location.hash = "#/report";
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (document.querySelector(`script[src="${src}"]`)) { resolve(); return; }
    document.head.append(h("script", { src, onload: resolve, onerror: reject }));
  });
}

async function connectLive(onEvent) {
  if (app.socket) { app.onLive = onEvent; return; }
  await loadScript("/maps/static/vendor/socketio/socket.io.min.js");
  app.onLive = onEvent;
  app.socket = io("/live", { transports: ["websocket"], reconnectionDelay: 500,
    auth: (cb) => session().then((pair) => cb({ token: pair?.access_token })) });
  app.socket.on("connect", () => document.body.classList.add("live"));
  app.socket.on("disconnect", () => document.body.classList.remove("live"));
  app.socket.onAny((event, data) => app.onLive && app.onLive(event, data));
}

function patrol(on) {
  if (app.patrolWatch !== null) { navigator.geolocation.clearWatch(app.patrolWatch); app.patrolWatch = null; }
  if (!on || !navigator.geolocation) return;
  app.patrolWatch = navigator.geolocation.watchPosition(async (p) => {
    // The API keeps at most one position per interval; sending more often is refused.
    const every = (city.position_seconds || 30) * 1000;
    if (Date.now() - app.lastPosition < every) return;
    app.lastPosition = Date.now();
    api("/api/v1/positions", { method: "POST", json: { lon: p.coords.longitude, lat: p.coords.latitude,
      accuracy_m: p.coords.accuracy } }).catch(() => null);
  }, () => null, { enableHighAccuracy: true, maximumAge: 15000 });
}

async function problemsList() {
  const failed = (await getAll("outbox")).filter((e) => e.status === "failed" && e.kind === "step");
  if (!failed.length) return "";
  return h("section", { id: "problems", class: "problems" }, h("h2", { text: t("problems") }),
    h("ul", {}, failed.map((e) => h("li", { "data-id": e.id }, `${e.case_code || ""} ${label("actions", e.action)}: `,
      h("span", { class: "reason", text: e.error?.message || "" }), " ",
      h("button", { type: "button", onclick: async () => { await remove("outbox", e.id); route(); }, text: t("dismiss") })))));
}

async function tasksView() {
  const pair = await session();
  if (!pair) { location.hash = "#/login"; return; }
  const me = pair.me || {};
  const list = h("ul", { class: "cards", id: "tasks" });
  const duty = h("button", { type: "button", id: "duty", "aria-pressed": String(Boolean(app.onDuty)),
    text: app.onDuty ? t("onDuty") : t("offDuty"), onclick: async () => {
      try {
        const answer = await api("/api/v1/duty", { method: "POST", json: { on_duty: !app.onDuty } });
        app.onDuty = answer.on_duty;
        duty.setAttribute("aria-pressed", String(app.onDuty));
        duty.textContent = app.onDuty ? t("onDuty") : t("offDuty");
        if (!app.onDuty) { patrolBox.checked = false; patrol(false); }
      } catch (error) { showError("duty", error.message); }
    } });
  const patrolBox = h("input", { type: "checkbox", id: "patrol", checked: app.patrolWatch !== null,
    onchange: () => patrol(patrolBox.checked) });
  async function load() {
    try {
      const tasks = await api("/api/v1/tasks");
      const known = new Set([...list.querySelectorAll("li")].map((li) => li.dataset.caseId));
      list.replaceChildren(...tasks.items.map((task) => h("li", { "data-case-id": task.case.id, "data-action": task.action },
        h("a", { href: `#/case/${task.case.id}`, text: `${label("actions", task.action)} · ${task.case.code}` }),
        h("p", { text: `${task.case.category_name} · ${label("states", task.case.state)}` }))));
      if (!tasks.items.length) list.append(h("li", { class: "empty", text: t("noTasks") }));
      if (tasks.items.some((task) => known.size && !known.has(String(task.case.id)))) navigator.vibrate?.(200);
      app.tasks = tasks.items;
    } catch (error) { showError("tasks", error.message); }
  }
  view.replaceChildren(h("h1", { text: `${t("staff")} · ${me.display_name || me.username || ""}` }),
    h("div", { class: "row" }, duty, h("label", { class: "switch" }, patrolBox, " ", t("patrol")),
      h("button", { type: "button", id: "sign-out", onclick: signOut, text: t("signOut") })),
    h("p", { class: "error", id: "e-duty" }),
    me.role === "inspector" ? h("div", { class: "row" },
      h("a", { class: "button primary", id: "patrol-report", href: "#/patrol", text: t("patrolReport") }),
      h("a", { class: "button", id: "my-grids", href: "#/grids", text: t("myGrids") })) : "",
    await problemsList(),
    h("h2", { text: t("tasks") }), list, h("p", { class: "error", id: "e-tasks" }));
  await load();
  connectLive((event) => { if (event.startsWith("case.") && location.hash.startsWith("#/tasks")) load(); })
    .catch(() => null);
}

// What a step form asks for, by action: the inputs only, never whether it is allowed.
const STEP_FORMS = {
  verify: [["valid", "choice"]], check: [["passed", "choice"], ["photo", "photo"], ["note", "note"]],
  self_handle: [["photo", "photo"], ["note", "note"]], handle: [["photo", "photo"], ["note", "note"]],
  extend: [["amount", "amount"], ["note", "note"]], shelve: [["note", "note"]],
  return: [["note", "note"]], accept: [],
};

function stepForm(c, action) {
  const inputs = STEP_FORMS[action] || [["note", "note"]];
  const state = { photo: null, choice: true };
  const controls = inputs.map(([name, kind]) => {
    if (kind === "photo") {
      const input = h("input", { type: "file", id: `${action}-photo`, accept: "image/*", capture: "environment",
        onchange: () => {
          state.photoReady = input.files[0] ? resized(input.files[0]).then((p) => { state.photo = p; })
            : Promise.resolve((state.photo = null));
        } });
      return field(`${action}-photo`, t("photo"), input);
    }
    if (kind === "note") return field(`${action}-note`, t("note"), h("textarea", { id: `${action}-note`, rows: 2 }));
    if (kind === "amount") {
      return field(`${action}-amount`, t("amount"), h("input", { id: `${action}-amount`, type: "number", min: "0.5", step: "0.5", value: "1" }),
        h("select", { id: `${action}-unit`, "aria-label": t("unit") }, ["working_days", "working_hours", "natural_days"]
          .map((u) => h("option", { value: u, text: label("units", u) }))));
    }
    const yes = name === "valid" ? t("valid") : t("passed");
    const no = name === "valid" ? t("invalid") : t("notPassed");
    return h("div", { class: "row", role: "radiogroup" },
      h("label", {}, h("input", { type: "radio", name: `${action}-${name}`, value: "true", checked: true,
        onchange: () => { state.choice = true; } }), " ", yes),
      h("label", {}, h("input", { type: "radio", name: `${action}-${name}`, value: "false",
        onchange: () => { state.choice = false; } }), " ", no));
  });
  const outcome = h("p", { class: "hint", id: `${action}-outcome`, role: "status" });
  return h("form", { class: "step", id: `step-${action}`, "data-action": action, onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    await state.photoReady;
    const here = await position(8000, 0);
    const fields = { note: document.getElementById(`${action}-note`)?.value.trim() };
    if (here) Object.assign(fields, { lon: here.lon.toFixed(7), lat: here.lat.toFixed(7) });
    if (inputs.some(([n]) => n === "valid")) fields.valid = String(state.choice);
    if (inputs.some(([n]) => n === "passed")) fields.passed = String(state.choice);
    if (action === "extend") {
      fields.amount = document.getElementById(`${action}-amount`).value;
      fields.unit = document.getElementById(`${action}-unit`).value;
    }
    const id = newId("step");
    await enqueue({ id, kind: "step", url: `/api/v1/cases/${c.id}/${action}`, lang: LANG, auth: true,
      action, case_code: c.code, fields, photos: state.photo ? [state.photo] : [] });
    outcome.textContent = t("sending");
    await flush().catch(() => 0);
    const entry = await get("outbox", id);
    if (entry.status === "sent") {
      await remove("outbox", id);
      // The case again, with the steps the API allows now (accept leads to handle, ...).
      app.flash = { action, state: entry.answer.state };
      await caseView(c.id);
    } else if (entry.status === "failed") {
      await remove("outbox", id);
      outcome.textContent = "";
      const where = fieldOf(entry.error);
      const id2 = where === "form" ? `step-${action}` : `${action}-${where}`;
      if (document.getElementById(`e-${id2}`)) showError(id2, entry.error.message);
      else showError(`step-${action}`, entry.error.message);
    } else {
      outcome.textContent = t("stepQueued");
      outcome.dataset.state = "queued";
    }
  } }, h("h3", { text: label("actions", action) }),
  controls,
  h("div", { class: "field", id: `f-${action}-location` }, h("p", { class: "error", id: `e-${action}-location`, role: "alert" })),
  h("p", { class: "error", id: `e-step-${action}`, role: "alert" }),
  h("button", { type: "submit", class: "primary", id: `do-${action}`, text: label("actions", action) }), outcome);
}

async function caseView(caseId) {
  const pair = await session();
  if (!pair) { location.hash = "#/login"; return; }
  let c;
  try { c = await api(`/api/v1/cases/${caseId}`); } catch (error) {
    view.replaceChildren(h("p", { class: "error", text: error.message })); return;
  }
  if (!app.tasks) { try { app.tasks = (await api("/api/v1/tasks")).items; } catch (_) { app.tasks = []; } }
  // The API's word on what this user may do: the case's available_actions when it says them,
  // else the task it gave this user for the case.
  const actions = Array.isArray(c.available_actions) ? c.available_actions.map((a) => a.action || a)
    : (app.tasks || []).filter((task) => task.case.id === c.id).map((task) => task.action);
  const mapBox = h("div", { class: "map", id: "case-map" });
  const flash = app.flash;
  app.flash = null;
  view.replaceChildren(h("h1", { text: `${c.code}` }),
    flash ? h("p", { class: "ok", id: "step-outcome", role: "status", "data-action": flash.action,
      "data-state": flash.state, text: `${label("actions", flash.action)} · ${t("stepDone")}: ${label("states", flash.state)}` }) : "",
    h("p", {}, h("strong", { id: "case-state", "data-state": c.state, text: label("states", c.state) }),
      ` · ${c.category_name}`),
    c.description ? h("p", { text: c.description }) : "",
    mapBox,
    h("p", {}, h("a", { id: "navigate", class: "button", href: `geo:${c.lat},${c.lon}?q=${c.lat},${c.lon}(${encodeURIComponent(c.code)})`,
      text: t("navigate") })),
    h("div", { class: "photos" }, (c.photos || []).map((p) => h("img", { src: p.thumbnail_url, alt: t("photo") }))),
    h("div", { id: "steps" }, actions.length
      ? actions.filter((a, i) => actions.indexOf(a) === i).map((a) => stepForm(c, a))
      : h("p", { class: "hint", text: t("actionsNone") })));
  regionMap(mapBox, { lat: c.lat, lon: c.lon });
}

// A patrol report in three taps: the photo, a category among the usual ones, send. The place is
// the phone's (fresh) position; the report is the inspector's own, kept for sending like any.
const USUAL_CATEGORIES = 6;

async function patrolReportView() {
  const pair = await session();
  if (!pair) { location.hash = "#/login"; return; }
  const state = { photo: null, photoReady: null, category: null, categoryName: "" };
  const outcome = h("div", { id: "patrol-outcome", role: "status" });
  const preview = h("img", { id: "patrol-preview", alt: "", hidden: true });
  const photo = h("input", { type: "file", id: "patrol-photo", accept: "image/*", capture: "environment",
    onchange: () => {
      if (!photo.files[0]) return;
      state.photoReady = resized(photo.files[0]).then((blob) => {
        state.photo = blob; preview.src = URL.createObjectURL(blob); preview.hidden = false; });
    } });
  // The categories this phone reported most, then the catalogue's first: one tap each.
  const counts = {};
  (await getAll("mine")).forEach((m) => { counts[m.category] = (counts[m.category] || 0) + 1; });
  let all = [];
  try { all = await categories(); } catch (error) { showError("patrol-category", error.message); }
  const usual = [...all].sort((a, b) => (counts[b.code] || 0) - (counts[a.code] || 0))
    .slice(0, USUAL_CATEGORIES);
  const choices = h("div", { class: "choices row", id: "patrol-categories", role: "radiogroup" },
    usual.map((c) => h("button", { type: "button", role: "radio", "aria-checked": "false", "data-code": c.code,
      text: c.name, onclick: (event) => {
        state.category = c.code; state.categoryName = c.name;
        choices.querySelectorAll("button").forEach((b) => b.setAttribute("aria-checked", String(b === event.currentTarget)));
      } })));
  const form = h("form", { id: "patrol-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    outcome.replaceChildren();
    await state.photoReady;
    if (!state.category) { showError("patrol-category", t("pickCategory")); return; }
    const here = await position(8000, 0);
    if (!here) { showError("patrol-location", t("noLocation")); return; }
    const id = newId("report");
    await enqueue({ id, kind: "report", url: "/api/v1/reports", lang: LANG, auth: true,
      category_name: state.categoryName, fields: { client_id: id, lon: here.lon.toFixed(7),
        lat: here.lat.toFixed(7), category: state.category, channel: "patrol" },
      photos: state.photo ? [state.photo] : [] });
    await put("mine", { client_id: id, description: "", category: state.category,
      category_name: state.categoryName, created: Date.now(), case_code: null, tracking_token: null });
    await flush().catch(() => 0);
    const entry = await get("outbox", id);
    if (entry.status === "failed") {
      await remove("outbox", id);
      await remove("mine", id);
      const where = fieldOf(entry.error);
      showError(where === "location" || where === "photo" || where === "category" ? `patrol-${where}` : "patrol-form",
        entry.error.message);
      return;
    }
    outcome.replaceChildren(h("p", { class: entry.status === "sent" ? "ok" : "queued", id: "patrol-sent",
      "data-state": entry.status === "sent" ? entry.answer.case.state : "queued",
      text: entry.status === "sent" ? `${t("sent")}: ${entry.answer.case.code}` : t("queued") }));
    form.reset(); preview.hidden = true;
    Object.assign(state, { photo: null, photoReady: null, category: null });
    choices.querySelectorAll("button").forEach((b) => b.setAttribute("aria-checked", "false"));
  } },
  field("patrol-photo", t("takePhoto"), photo, preview),
  h("div", { class: "field", id: "f-patrol-category" }, h("p", { text: t("category") }), choices,
    h("p", { class: "error", id: "e-patrol-category", role: "alert" })),
  h("p", { class: "error", id: "e-patrol-location", role: "alert" }),
  h("p", { class: "error", id: "e-patrol-form", role: "alert" }),
  h("button", { type: "submit", class: "primary", id: "patrol-send", text: t("send") }), outcome);
  view.replaceChildren(h("h1", { text: t("patrolReport") }), form);
}

// The inspector's own grids: their cases' shading (the wall's grid tiles, limited by the API to
// the inspector's scope), this week's hotspots and next week's forecast.
async function gridsView() {
  const pair = await session();
  if (!pair) { location.hash = "#/login"; return; }
  const mapBox = h("div", { class: "map", id: "grids-map" });
  const hot = h("ul", { class: "cards", id: "hotspots" });
  const next = h("ul", { class: "cards", id: "forecast" });
  view.replaceChildren(h("h1", { text: t("myGrids") }), mapBox, h("p", { class: "error", id: "e-grids" }),
    h("h2", { text: t("hotspots") }), hot, h("h2", { text: t("forecast") }), next);
  const here = await position(4000);
  const map = await regionMap(mapBox, here);
  if (map && L.vectorGrid) {
    L.vectorGrid.protobuf("/maps/tiles/grids/{z}/{x}/{y}.pbf", {
      maxNativeZoom: 18, interactive: false,
      fetchOptions: { headers: { Authorization: `Bearer ${(await session()).access_token}` } },
      vectorTileLayerStyles: { grids: (p) => ({ weight: 2, color: "#0b5cad", fill: true,
        fillColor: "#d9480f", fillOpacity: Math.min(0.6, 0.1 + 0.1 * (p.value || 0)) }) },
    }).addTo(map.map);
  }
  try {
    const [spots, week] = await Promise.all([api("/api/v1/hotspots"), api("/api/v1/forecast")]);
    const rows = [...(spots.hotspots || []), ...(spots.recurring || [])];
    hot.replaceChildren(...(rows.length ? rows.map((r) => h("li", { "data-grid": r.grid_code },
      `${r.grid_code} · ${r.category_name || r.category || ""}`)) : [h("li", { class: "empty", text: t("noHotspots") })]));
    next.replaceChildren(...(week.grids || []).map((g) => h("li", { "data-grid": g.grid_code },
      `${g.grid_code} · ${t("expected", Number(g.expected).toFixed(1))}`)));
  } catch (error) { showError("grids", error.message); }
}

// -- routing ---------------------------------------------------------------------------------

async function route() {
  app.map = null;
  const [, page, arg] = (location.hash || "#/report").split("/");
  document.querySelectorAll("nav a").forEach((a) => a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${page}`));
  if (page === "track" && arg) return trackView(decodeURIComponent(arg));
  if (page === "mine") return mineView();
  if (page === "login") return loginView();
  if (page === "tasks") return tasksView();
  if (page === "case" && arg) return caseView(Number(arg));
  if (page === "patrol") return patrolReportView();
  if (page === "grids") return gridsView();
  return reportView();
}

function showNetwork() {
  const badge = document.getElementById("network");
  badge.textContent = navigator.onLine ? t("online") : t("offline");
  badge.className = navigator.onLine ? "on" : "off";
}

async function start() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  showNetwork();
  window.addEventListener("online", () => { showNetwork(); sendWaiting(); });
  window.addEventListener("offline", showNetwork);
  window.addEventListener("outbox", () => { if (/^#\/(mine|tasks)/.test(location.hash)) route(); });
  window.addEventListener("hashchange", route);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data?.type === "outbox" && /^#\/(mine|tasks)/.test(location.hash)) route();
    });
    // Its install fetches the whole app shell: registered once the page, its map and the
    // catalogue are in, so it does not share a slow network with the first screen.
    window.addEventListener("load", () => Promise.resolve(catalogue).catch(() => null).then(() =>
      navigator.serviceWorker.register("/m/sw.js", { scope: "/m/", type: "module" }).catch(() => null)));
  }
  await route();
  sendWaiting();
}

// The page sends the outbox on opening and whenever the network returns, and tries again while
// something waits (Background Sync, where the browser has it, sends it with the app closed).
async function sendWaiting() {
  clearTimeout(app.retry);
  let outcome = { waiting: 0 };
  if (navigator.onLine) outcome = await flush().catch(() => ({ waiting: 1 }));
  if (outcome.waiting) app.retry = setTimeout(sendWaiting, 15000);
}

start();
