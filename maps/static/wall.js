/* gridmgr command-centre wall: layers, live updates, side panel and case card.
 *
 * The folium page creates the Leaflet map; this script adds everything else. All data comes
 * from bounded /maps/... feeds and the /live Socket.IO channel; nothing large is in the page.
 */
(function () {
  "use strict";

  // The page's configuration is at the end of <body>; read it once the document is parsed.
  var cfg = null;
  var t = function (key) { return cfg.t[key] || key; };
  var CLOCK_COLOURS = { green: "#2e9d4f", yellow: "#f2b01e", red: "#d93025", waiting: "#7f8c9a", paused: "#7f8c9a" };
  var wall = {
    markers: {}, workers: {}, lastSeq: 0, stats: null,
    loaded: { stats: false, cases: false, boundaries: false, grids: false },
    eventsSeen: 0,
  };
  window.gridWall = wall;

  // Leaflet 1.8+ dropped fakeStop, which Leaflet.VectorGrid 1.3 still calls on clicks.
  if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = function () { return true; }; }

  var timeFmt, clockFmt;
  function setupFormats() {
    var locale = cfg.lang === "en" ? "en-GB" : "zh-CN";
    timeFmt = new Intl.DateTimeFormat(locale, {
      timeZone: cfg.timezone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false,
    });
    clockFmt = new Intl.DateTimeFormat(locale, {
      timeZone: cfg.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }
  function fmtTime(iso) { return iso ? timeFmt.format(new Date(iso)) : "–"; }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function $(id) { return document.getElementById(id); }

  function getJSON(url, retried) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401 && !retried) {
          // Another request may have renewed the session's token a moment ago: try once more.
          return new Promise(function (ok) { setTimeout(ok, 300); })
            .then(function () { return getJSON(url, true); });
        }
        if (r.status === 401) { window.location.href = cfg.urls.login; throw new Error("signed out"); }
        if (!r.ok) { throw new Error(url + " answered " + r.status); }
        return r.json();
      });
  }
  // What each bbox feed last fetched: a move that stays inside it at the same zoom needs no
  // new query (live events keep that area current).
  var fetched = {};
  function covered(feed) {
    var last = fetched[feed];
    return last && last.zoom === map.getZoom() && last.bounds.contains(map.getBounds());
  }
  function remember(feed, pad) {
    fetched[feed] = { zoom: map.getZoom(), bounds: map.getBounds().pad(pad) };
  }
  function bboxParam(pad) {
    var b = map.getBounds().pad(pad || 0);
    var w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
    var s = Math.max(-90, b.getSouth()), n = Math.min(90, b.getNorth());
    return [w, s, e, n].map(function (v) { return v.toFixed(6); }).join(",");
  }
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }
  function markReady(part) {
    wall.loaded[part] = true;
    var all = Object.keys(wall.loaded).every(function (k) { return wall.loaded[k]; });
    if (all && !document.body.dataset.wallReady) {
      document.body.dataset.wallReady = "1";
      wall.readyAt = performance.now();
    }
  }

  var map;

  function start() {
    cfg = JSON.parse(document.getElementById("wall-config").textContent);
    wall.cfg = cfg;
    wall.lastSeq = cfg.seq || 0;
    setupFormats();
    map = window[cfg.map];
    wall.map = map;
    // Without zoom limits of its own, Leaflet would take the grid layer's minimum zoom as the
    // map's and zoom the whole wall in.
    map.setMinZoom(3);
    map.setMaxZoom(20);
    map.createPane("grids").style.zIndex = 390;
    map.createPane("boundaries").style.zIndex = 405;
    map.createPane("heat").style.zIndex = 420;
    map.createPane("forecast").style.zIndex = 395;
    map.createPane("components").style.zIndex = 410;

    buildBoundaries();
    buildGrids();
    buildComponents();
    buildCases();
    buildHeat();
    buildWorkers();
    buildForecast();
    buildHotspots();
    buildControls();
    startClock();
    setInterval(function () { freshToken().catch(function () {}); }, 120000);
    refreshStats();
    connectLive();
    map.on("moveend", debounce(function () {
      if (!covered("boundaries")) { refreshBoundaries(); }
      if (!covered("cases")) { refreshCases(); }
      if (!covered("heat")) { refreshHeat(); }
    }, 150));
    $("card-close").addEventListener("click", function () { $("case-card").hidden = true; });
  }

  // --- boundaries ----------------------------------------------------------------------------
  var LEVEL_STYLE = {
    district: { color: "#1f4e79", weight: 3, fill: false, labelMin: 0, labelMax: 13 },
    street: { color: "#2f6fad", weight: 2, fill: false, dashArray: "6 4", labelMin: 12, labelMax: 15 },
    community: { color: "#5b8fc7", weight: 1, fill: false, dashArray: "2 3", labelMin: 14, labelMax: 22 },
  };
  var boundaryLayers = {};
  function buildBoundaries() {
    Object.keys(LEVEL_STYLE).forEach(function (level) {
      var style = LEVEL_STYLE[level];
      var group = L.layerGroup();
      group.geo = L.geoJSON(null, {
        pane: "boundaries", interactive: false,
        style: function () {
          return { color: style.color, weight: style.weight, fill: false, dashArray: style.dashArray };
        },
      }).addTo(group);
      group.labels = L.layerGroup().addTo(group);
      group.level = level;
      boundaryLayers[level] = group;
    });
    boundaryLayers.district.addTo(map);
    boundaryLayers.street.addTo(map);
    boundaryLayers.community.addTo(map);
    refreshBoundaries();
  }
  function refreshBoundaries() {
    var zoom = Math.floor(map.getZoom());
    remember("boundaries", 0.2);
    var jobs = Object.keys(boundaryLayers).map(function (level) {
      var group = boundaryLayers[level];
      if (!map.hasLayer(group)) { return Promise.resolve(); }
      var url = cfg.urls.boundaries + "?level=" + level + "&zoom=" + zoom + "&bbox=" + bboxParam(0.2);
      return getJSON(url).then(function (fc) {
        group.geo.clearLayers();
        group.geo.addData(fc);
        group.labels.clearLayers();
        var style = LEVEL_STYLE[level];
        if (zoom >= style.labelMin && zoom <= style.labelMax) {
          fc.features.forEach(function (f) {
            group.labels.addLayer(L.marker(f.properties.label, {
              interactive: false, keyboard: false,
              icon: L.divIcon({ className: "region-label level-" + level, html: esc(f.properties.name), iconSize: null }),
            }));
          });
        }
      });
    });
    Promise.all(jobs).then(function () { markReady("boundaries"); })
      .catch(function (err) { console.warn(err.message); });
  }

  // --- unit grids (vector tiles) ---------------------------------------------------------------
  var SHADES = {
    open: [[1, "#fde0c5"], [3, "#facba6"], [6, "#f59e72"], [10, "#eb7f54"], [20, "#d95d39"]],
    overdue: [[1, "#f9c0c0"], [2, "#f08a8a"], [4, "#e35252"], [8, "#c62828"], [15, "#8e0000"]],
    reports7d: [[1, "#d6e7f5"], [3, "#a9cce8"], [6, "#73a9d6"], [10, "#4383c0"], [20, "#1f5c99"]],
  };
  var measure = "open";
  var gridLayer;
  function shadeFor(value) {
    var colour = null;
    SHADES[measure].forEach(function (step) { if (value >= step[0]) { colour = step[1]; } });
    return colour;
  }
  function gridStyle(props) {
    var colour = shadeFor(props.value || 0);
    return {
      weight: 0.6, color: "#6c7a89", opacity: 0.7,
      fill: true, fillColor: colour || "#ffffff", fillOpacity: colour ? 0.55 : 0.04,
    };
  }
  // Bumped when live events change the cases, so re-fetched tiles skip the browser cache.
  var gridVersion = 0;
  function gridUrl() { return cfg.urls.tiles + "?measure=" + measure + "&v=" + gridVersion; }
  var refreshGridsSoon = debounce(function () {
    gridVersion += 1;
    gridLayer.setUrl(gridUrl());
  }, 5000);
  function buildGrids() {
    gridLayer = L.vectorGrid.protobuf(gridUrl(), {
      pane: "grids", minZoom: 13, maxNativeZoom: 18, maxZoom: 22,
      rendererFactory: L.canvas.tile, interactive: true,
      vectorTileLayerStyles: { grids: gridStyle },
      getFeatureId: function (f) { return f.properties.code; },
      fetchOptions: { credentials: "same-origin" },
    });
    gridLayer.on("click", function (e) {
      var p = e.layer.properties;
      L.popup().setLatLng(e.latlng)
        .setContent("<b>" + esc(p.name) + "</b><br>" + esc(p.code) + "<br>" + esc(t("measure_" + measure)) + ": " + esc(p.value))
        .openOn(map);
    });
    gridLayer.on("load", function () {
      wall.gridsShownBy = measure;
      markReady("grids");
    });
    gridLayer.addTo(map);
    if (map.getZoom() < 13) { markReady("grids"); }
    renderLegend();
  }
  function setMeasure(value) {
    measure = value;
    wall.gridsShownBy = null;
    gridLayer.setUrl(gridUrl());
    renderLegend();
  }
  function renderLegend() {
    $("legend").innerHTML = SHADES[measure].map(function (s) {
      return '<span><i style="background:' + s[1] + '"></i>≥' + s[0] + "</span>";
    }).join("");
  }

  // --- components (vector tiles from zoom 15): lamps, covers, hydrants… coloured by state ----
  var COMPONENT_COLOURS = { intact: "#2e7d32", damaged: "#d93025", missing: "#7b1fa2", occupied: "#f2b01e" };
  var componentLayer;
  wall.componentsDrawn = 0;
  function componentStyle(props) {
    wall.componentsDrawn += 1;
    return {
      radius: 4, weight: 1, color: "#ffffff", opacity: 0.9,
      fill: true, fillColor: COMPONENT_COLOURS[props.state] || "#455a64", fillOpacity: 0.9,
    };
  }
  function buildComponents() {
    componentLayer = L.vectorGrid.protobuf(cfg.urls.componentTiles, {
      pane: "components", minZoom: 15, maxNativeZoom: 18, maxZoom: 22,
      rendererFactory: L.canvas.tile, interactive: true,
      vectorTileLayerStyles: { components: componentStyle },
      getFeatureId: function (f) { return f.properties.code; },
      fetchOptions: { credentials: "same-origin" },
    });
    componentLayer.on("click", function (e) {
      var p = e.layer.properties;
      var lines = ["<b>" + esc(p.name) + "</b>", esc(p.code), esc(p.category) + " · " + esc(p.state)];
      if (p.owner) { lines.push(esc(p.owner)); }
      L.popup().setLatLng(e.latlng).setContent(lines.join("<br>")).openOn(map);
    });
    componentLayer.addTo(map);
  }

  // --- prevention: next week's forecast and this week's hotspots -------------------------------
  // The forecast is the grid tiles' "forecast" measure (the server keeps the city's forecast
  // until a new case); the hotspots a small feed of a few grids. Both are re-read every few
  // minutes while shown, never on map moves.
  var FORECAST_SHADES = [[0.5, "#efe3f5"], [1, "#d9c1ea"], [2, "#b98fd6"], [4, "#9360bf"], [8, "#6a329f"]];
  var FORECAST_EVERY = 600000, HOTSPOTS_EVERY = 300000;
  var forecastLayer, hotspotLayer, preventionTip, forecastVersion = 0;
  function forecastUrl() {
    return cfg.urls.tiles + "?measure=forecast&lang=" + cfg.lang + "&v=" + forecastVersion;
  }
  function forecastStyle(props) {
    var colour = null;
    FORECAST_SHADES.forEach(function (step) { if ((props.value || 0) >= step[0]) { colour = step[1]; } });
    return {
      weight: 0.6, color: "#6a329f", opacity: 0.5,
      fill: true, fillColor: colour || "#ffffff", fillOpacity: colour ? 0.6 : 0.02,
    };
  }
  function fmtNumber(v, digits) { return Number(v || 0).toFixed(digits); }
  function forecastText(p) {
    return '<div class="prevention-tip"><b>' + esc(p.name) + "</b> <small>" + esc(p.code) + "</small><br>" +
      esc(t("expected_next_week")) + ": <b>" + fmtNumber(p.value, 1) + "</b><br>" +
      esc(t("interval")) + ": " + esc(p.low) + "–" + esc(p.high) +
      (p.top ? "<br>" + esc(t("top_forecast")) + ": " + esc(p.top) : "") + "</div>";
  }
  function showTip(html, latlng) {
    preventionTip.setContent(html).setLatLng(latlng);
    map.openTooltip(preventionTip);
  }
  function buildForecast() {
    preventionTip = L.tooltip({ direction: "top", offset: [0, -6], opacity: 0.95 });
    forecastLayer = L.vectorGrid.protobuf(forecastUrl(), {
      pane: "forecast", minZoom: 13, maxNativeZoom: 18, maxZoom: 22,
      rendererFactory: L.canvas.tile, interactive: true,
      vectorTileLayerStyles: { grids: forecastStyle },
      getFeatureId: function (f) { return f.properties.code; },
      fetchOptions: { credentials: "same-origin" },
    });
    forecastLayer.on("mouseover", function (e) { showTip(forecastText(e.layer.properties), e.latlng); });
    forecastLayer.on("mouseout", function () { map.closeTooltip(preventionTip); });
    forecastLayer.on("click", function (e) {
      L.popup().setLatLng(e.latlng).setContent(forecastText(e.layer.properties)).openOn(map);
    });
    forecastLayer.on("load", function () { wall.forecastShown = true; });
    $("forecast-scale").innerHTML = FORECAST_SHADES.map(function (s) {
      return '<span><i style="background:' + s[1] + '"></i>≥' + s[0] + "</span>";
    }).join("");
    setInterval(function () {
      if (!map.hasLayer(forecastLayer)) { return; }
      forecastVersion += 1;
      forecastLayer.setUrl(forecastUrl());
    }, FORECAST_EVERY);
  }
  function hotspotText(p) {
    var rows = p.hotspots.map(function (h) {
      return "<li><b>" + esc(t("hotspot")) + "</b> " + esc(h.name || t("all_categories")) +
        (h.category ? " <small>" + esc(h.category) + "</small>" : "") + "<br>" +
        esc(t("count_7d")) + " " + esc(h.count) + " · " + esc(t("expected_usual")) + " " + fmtNumber(h.expected, 1) +
        " · " + esc(t("q_value")) + " " + (h.q < 0.001 ? "&lt;0.001" : fmtNumber(h.q, 3)) + "</li>";
    }).concat(p.recurring.map(function (r) {
      return "<li><b>" + esc(t("recurring")) + "</b> " + esc(r.name) + " <small>" + esc(r.category) + "</small><br>" +
        esc(t("recurring_cases")) + " " + esc(r.cases) +
        (r.reappeared ? " · " + esc(t("reappeared")) + " " + esc(r.reappeared) : "") + "</li>";
    }));
    return '<div class="prevention-tip"><b>' + esc(p.name) + "</b> <small>" + esc(p.code) + "</small><ul>" +
      rows.join("") + "</ul></div>";
  }
  function buildHotspots() {
    hotspotLayer = L.layerGroup();
    var outlines = L.geoJSON(null, {
      style: function (f) {
        var hot = f.properties.hotspots.length > 0;
        return hot ? { color: "#d93025", weight: 3, fillColor: "#d93025", fillOpacity: 0.15 }
          : { color: "#8e44ad", weight: 2, dashArray: "5 3", fillColor: "#8e44ad", fillOpacity: 0.08 };
      },
      onEachFeature: function (f, layer) {
        layer.on("mouseover", function (e) { showTip(hotspotText(f.properties), e.latlng); });
        layer.on("mouseout", function () { map.closeTooltip(preventionTip); });
      },
    }).addTo(hotspotLayer);
    var flags = L.layerGroup().addTo(hotspotLayer);
    hotspotLayer.outlines = outlines;
    hotspotLayer.flags = flags;
    setInterval(function () { if (map.hasLayer(hotspotLayer)) { refreshHotspots(); } }, HOTSPOTS_EVERY);
  }
  function refreshHotspots() {
    return getJSON(cfg.urls.hotspots).then(function (fc) {
      hotspotLayer.outlines.clearLayers();
      hotspotLayer.outlines.addData(fc);
      hotspotLayer.flags.clearLayers();
      fc.features.forEach(function (f) {
        var p = f.properties, hot = p.hotspots.length > 0;
        var count = hot ? Math.max.apply(null, p.hotspots.map(function (h) { return h.count; })) : null;
        hotspotLayer.flags.addLayer(L.marker(p.label, {
          keyboard: false, zIndexOffset: 500, title: p.code,
          icon: L.divIcon({ className: "hotspot-flag" + (hot ? "" : " recurring"),
            html: "<span>" + (hot ? esc(count) : "↻") + "</span>", iconSize: [24, 20], iconAnchor: [12, 10] }),
        }).on("click", function (e) {
          L.popup().setLatLng(e.latlng).setContent(hotspotText(p)).openOn(map);
        }));
      });
      wall.hotspotsShown = fc.features.length;
    }).catch(function (err) { console.warn(err.message); });
  }

  // --- open cases ------------------------------------------------------------------------------
  var caseLayer, clusterLayer;
  function caseIcon(c) {
    var shape = c.kind === "component" ? "square" : "round";
    return L.divIcon({
      className: "case-marker " + shape + " clock-" + c.clock,
      html: '<span data-case-id="' + c.id + '"></span>', iconSize: [16, 16],
    });
  }
  function buildCases() {
    caseLayer = L.markerClusterGroup({
      chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 50,
      disableClusteringAtZoom: 18,
      iconCreateFunction: function (cluster) {
        var children = cluster.getAllChildMarkers();
        var worst = "green";
        children.forEach(function (m) {
          if (m.options.clock === "red") { worst = "red"; }
          else if (m.options.clock === "yellow" && worst !== "red") { worst = "yellow"; }
        });
        return L.divIcon({
          className: "case-cluster clock-" + worst,
          html: "<span>" + cluster.getChildCount() + "</span>", iconSize: [38, 38],
        });
      },
    });
    clusterLayer = L.layerGroup();
    caseLayer.addTo(map);
    clusterLayer.addTo(map);
    refreshCases();
  }
  function upsertMarker(c) {
    var m = wall.markers[c.id];
    if (m) {
      m.setLatLng([c.lat, c.lon]);
      m.options.clock = c.clock;
      m.setIcon(caseIcon(c));
      caseLayer.refreshClusters(m);
      return m;
    }
    m = L.marker([c.lat, c.lon], { icon: caseIcon(c), clock: c.clock, title: c.code });
    m.caseId = c.id;
    m.on("click", function () { openCard(c.id); });
    wall.markers[c.id] = m;
    caseLayer.addLayer(m);
    return m;
  }
  function removeMarker(id) {
    var m = wall.markers[id];
    if (m) { caseLayer.removeLayer(m); delete wall.markers[id]; }
  }
  function refreshCases() {
    remember("cases", 0.2);
    getJSON(cfg.urls.cases + "?bbox=" + bboxParam(0.2)).then(function (data) {
      clusterLayer.clearLayers();
      var keep = {};
      data.cases.forEach(function (c) { keep[c.id] = true; });
      Object.keys(wall.markers).forEach(function (id) { if (!keep[id]) { removeMarker(id); } });
      data.cases.forEach(upsertMarker);
      wall.clustered = data.clusters.length > 0;
      data.clusters.forEach(function (k) {
        var clock = k.red ? "red" : (k.yellow ? "yellow" : "green");
        clusterLayer.addLayer(L.marker([k.lat, k.lon], {
          icon: L.divIcon({ className: "case-cluster big clock-" + clock, html: "<span>" + k.count + "</span>", iconSize: [46, 46] }),
          title: t("too_many"),
        }).on("click", function (e) { map.setView(e.latlng, map.getZoom() + 2); }));
      });
      markReady("cases");
    }).catch(function (err) { console.warn(err.message); });
  }
  function refreshOneCase(id) {
    return getJSON(cfg.urls.case + id + "?marker=1").then(function (data) {
      if (data.marker) {
        if (!wall.clustered) { upsertMarker(data.marker); }
      } else {
        removeMarker(id);
      }
      if (!$("case-card").hidden && Number($("case-card").dataset.caseId) === Number(id)) {
        openCard(id);
      }
    }).catch(function (err) { console.warn(err.message); });
  }

  // --- heat ------------------------------------------------------------------------------------
  var heatLayer;
  function buildHeat() {
    heatLayer = L.heatLayer([], { pane: "heat", radius: 22, blur: 18, minOpacity: 0.3 });
  }
  function refreshHeat() {
    if (!map.hasLayer(heatLayer)) { return; }
    remember("heat", 0.2);
    getJSON(cfg.urls.heat + "?bbox=" + bboxParam(0.2)).then(function (data) {
      heatLayer.setLatLngs(data.points);
    }).catch(function (err) { console.warn(err.message); });
  }

  // --- workers ---------------------------------------------------------------------------------
  var workerLayer;
  function workerIcon(w) {
    return L.divIcon({
      className: "worker-marker " + (w.online ? "online" : "away"),
      html: "<span>" + esc((w.name || "").slice(0, 1)) + "</span>", iconSize: [22, 22],
    });
  }
  function buildWorkers() {
    workerLayer = L.layerGroup().addTo(map);
    if (cfg.urls.workers) {
      getJSON(cfg.urls.workers).then(function (data) { data.workers.forEach(upsertWorker); })
        .catch(function (err) { console.warn(err.message); });
    }
  }
  function upsertWorker(w) {
    if (w.lat == null || w.lon == null) { return; }
    var m = wall.workers[w.id];
    if (m) { m.info = w; }
    if (!m) {
      m = L.marker([w.lat, w.lon], { icon: workerIcon(w), zIndexOffset: 1000 });
      m.info = w;
      wall.workers[w.id] = m;
      workerLayer.addLayer(m);
    } else {
      m.setLatLng([w.lat, w.lon]);
      m.setIcon(workerIcon(w));
    }
    m.bindTooltip(esc(w.name) + " · " + (w.online ? t("online") : t("away")));
  }

  // --- controls --------------------------------------------------------------------------------
  function buildControls() {
    var overlays = {};
    overlays[t("districts")] = boundaryLayers.district;
    overlays[t("streets")] = boundaryLayers.street;
    overlays[t("communities")] = boundaryLayers.community;
    overlays[t("grids")] = gridLayer;
    overlays[t("components")] = componentLayer;
    overlays[t("cases")] = caseLayer;
    overlays[t("workers")] = workerLayer;
    overlays[t("heat")] = heatLayer;
    overlays[t("forecast")] = forecastLayer;
    overlays[t("hotspots")] = hotspotLayer;
    L.control.layers(null, overlays, { collapsed: false, position: "topleft" }).addTo(map);
    map.on("overlayadd", function (e) {
      if (e.layer === heatLayer) { refreshHeat(); }
      if (e.layer === forecastLayer) { $("forecast-legend").hidden = false; }
      if (e.layer === hotspotLayer) { refreshHotspots(); }
    });
    map.on("overlayremove", function (e) {
      if (e.layer === forecastLayer) { $("forecast-legend").hidden = true; map.closeTooltip(preventionTip); }
      if (e.layer === hotspotLayer) { map.closeTooltip(preventionTip); }
      if (Object.values(boundaryLayers).indexOf(e.layer) >= 0) { refreshBoundaries(); }
    });
    var MeasureControl = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        var box = $("measure-box");
        L.DomEvent.disableClickPropagation(box);
        return box;
      },
    });
    new MeasureControl().addTo(map);
    $("measure").addEventListener("change", function (e) { setMeasure(e.target.value); });
  }

  function startClock() {
    var tick = function () { $("wall-clock").textContent = clockFmt.format(new Date()); };
    tick();
    setInterval(tick, 1000);
  }

  // --- side panel ------------------------------------------------------------------------------
  var chart;
  function refreshStats() {
    return getJSON(cfg.urls.stats).then(function (s) {
      wall.stats = s;
      ["reported", "filed", "dispatched", "handled", "closed"].forEach(function (k) {
        $("c-" + k).textContent = s.today[k];
      });
      ["green", "yellow", "red", "waiting"].forEach(function (k) { $("c-" + k).textContent = s.open[k]; });
      $("c-ontime").textContent = s.on_time_rate == null ? "–" : (s.on_time_rate * 100).toFixed(1) + "%";
      $("overdue-count").textContent = "(" + s.overdue.length + ")";
      $("overdue-list").innerHTML = s.overdue.length ? s.overdue.map(function (c) {
        return '<li><a href="#" data-id="' + c.id + '" data-lat="' + c.lat + '" data-lon="' + c.lon + '">' +
          "<b>" + esc(c.category) + "</b> <span>" + esc(c.grid_code) + "</span><br><small>" +
          esc(t("deadline")) + " " + esc(fmtTime(c.deadline)) + "</small></a></li>";
      }).join("") : "<li class=\"empty\">" + esc(t("none")) + "</li>";
      $("top-categories").innerHTML = s.top_categories.map(function (c) {
        return "<li>" + esc(c.name) + " <b>" + c.count + "</b></li>";
      }).join("") || "<li class=\"empty\">" + esc(t("none")) + "</li>";
      $("top-grids").innerHTML = s.top_grids.map(function (g) {
        return "<li>" + esc(g.name || g.code) + " <small>" + esc(g.code) + "</small> <b>" + g.count + "</b></li>";
      }).join("") || "<li class=\"empty\">" + esc(t("none")) + "</li>";
      drawChart(s.per_hour);
      markReady("stats");
    }).catch(function (err) { console.warn(err.message); });
  }
  // Live events can come in bursts: counters are re-read at most every 400 ms (the last
  // event of a burst always gets its refresh), so they follow within a second.
  var statsTimer = null, statsLast = 0;
  function refreshStatsSoon() {
    if (statsTimer) { return; }
    var wait = Math.max(50, 400 - (performance.now() - statsLast));
    statsTimer = setTimeout(function () {
      statsTimer = null;
      statsLast = performance.now();
      refreshStats();
    }, wait);
  }
  function drawChart(perHour) {
    if (chart) {
      chart.data.datasets[0].data = perHour;
      chart.update("none");
      return;
    }
    chart = new Chart($("per-hour"), {
      type: "bar",
      data: {
        labels: perHour.map(function (_, h) { return String(h); }),
        datasets: [{ label: t("per_hour"), data: perHour, backgroundColor: "#4c9be8" }],
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { ticks: { color: "#9fb3c8", maxRotation: 0, autoSkip: true, maxTicksLimit: 12 }, grid: { display: false } },
          y: { beginAtZero: true, ticks: { color: "#9fb3c8", precision: 0 }, grid: { color: "#26384a" } },
        },
      },
    });
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest("#overdue-list a");
    if (!a) { return; }
    e.preventDefault();
    map.flyTo([Number(a.dataset.lat), Number(a.dataset.lon)], 18, { duration: 0.8 });
    openCard(Number(a.dataset.id));
  });

  // --- case card -------------------------------------------------------------------------------
  function openCard(id) {
    return getJSON(cfg.urls.case + id).then(function (c) {
      var card = $("case-card");
      card.dataset.caseId = c.id;
      var photos = function (stage) {
        var list = c.photos.filter(function (p) { return p.stage === stage; });
        return list.length ? list.map(function (p) {
          return '<a href="' + esc(p.url) + '" target="_blank"><img loading="lazy" src="' + esc(p.thumb) + '" alt=""></a>';
        }).join("") : "<small>" + esc(t("no_photos")) + "</small>";
      };
      var history = c.history.map(function (h) {
        return "<li><time>" + esc(fmtTime(h.at)) + "</time> <b>" + esc(t("state." + h.to)) + "</b>" +
          (h.actor ? " · " + esc(h.actor) : "") + (h.note ? "<br><small>" + esc(h.note) + "</small>" : "") + "</li>";
      }).join("");
      $("card-body").innerHTML =
        '<h3><span class="case-dot clock-' + esc(c.clock) + " " + (c.kind === "component" ? "square" : "round") + '"></span>' +
        esc(c.category.name) + " <small>" + esc(c.code) + "</small></h3>" +
        "<dl>" +
        "<dt>" + esc(t("state")) + "</dt><dd>" + esc(t("state." + c.state)) + "</dd>" +
        "<dt>" + esc(t("category")) + "</dt><dd>" + esc(c.category.code) + " · " + esc(t(c.kind || "")) + "</dd>" +
        "<dt>" + esc(t("grid")) + "</dt><dd>" + esc(c.grid_code) + "</dd>" +
        "<dt>" + esc(t("deadline")) + "</dt><dd class=\"clock-text-" + esc(c.clock) + "\">" + esc(fmtTime(c.deadline)) + "</dd>" +
        "<dt>" + esc(t("department")) + "</dt><dd>" + esc(c.department || "–") + "</dd>" +
        "<dt>" + esc(t("worker")) + "</dt><dd>" + esc(c.worker || "–") + "</dd>" +
        "</dl>" +
        (c.description ? "<p class=\"desc\">" + esc(c.description) + "</p>" : "") +
        '<div class="photos"><div><h4>' + esc(t("photos_before")) + "</h4>" + photos("before") + "</div>" +
        "<div><h4>" + esc(t("photos_after")) + "</h4>" + photos("after") + "</div></div>" +
        "<h4>" + esc(t("history")) + "</h4><ol class=\"timeline\">" + history + "</ol>" +
        '<div id="dispatch-box"></div>';
      card.hidden = false;
      if (cfg.mayDispatch && c.state === "filed") { dispatchForm(c); }
    }).catch(function (err) { console.warn(err.message); });
  }

  var receivers = null;
  function dispatchForm(c) {
    var load = receivers ? Promise.resolve(receivers) : getJSON(cfg.urls.departments).then(function (r) { receivers = r; return r; });
    load.then(function (r) {
      // A case returned as mis-dispatched is filed again: dispatching it is a re-dispatch.
      var before = c.history.some(function (h) { return h.to === "dispatched"; });
      var label = before ? t("redispatch") : t("dispatch");
      $("dispatch-box").innerHTML =
        '<form id="dispatch-form"><h4>' + esc(label) + "</h4>" +
        "<label>" + esc(t("choose_department")) + '<select name="department_id">' +
        r.departments.map(function (d) {
          return '<option value="' + d.id + '"' + (d.id === c.department_id ? " selected" : "") + ">" + esc(d.name) + "</option>";
        }).join("") + "</select></label>" +
        "<label>" + esc(t("choose_worker")) + '<select name="worker_id"><option value="">–</option>' +
        r.workers.filter(function (w) { return c.grid_code.indexOf(w.region_code) === 0 || w.region_code.indexOf(c.grid_code.slice(0, 9)) === 0; })
          .map(function (w) {
            return '<option value="' + w.id + '"' + (w.id === c.worker_id ? " selected" : "") + ">" + esc(w.name) + "</option>";
          }).join("") + "</select></label>" +
        "<label>" + esc(t("dispatch_note")) + '<input name="note" maxlength="500"></label>' +
        '<button type="submit">' + esc(label) + '</button> <span id="dispatch-msg"></span></form>';
      $("dispatch-form").addEventListener("submit", function (e) {
        e.preventDefault();
        var form = e.target;
        var body = { department: form.department_id.value };
        if (form.worker_id.value) { body.worker = form.worker_id.value; }
        if (form.note.value) { body.note = form.note.value; }
        sendDispatch(c.id, body);
      });
    }).catch(function (err) { console.warn(err.message); });
  }
  function sendDispatch(id, body) {
    return freshToken().then(function (token) {
      return fetch(cfg.urls.dispatch.replace("{id}", id), {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify(body),
      });
    }).then(function (r) {
      return r.json().then(function (data) {
        $("dispatch-msg").textContent = r.ok ? t("dispatch_done") : (data.error ? data.error.message : r.status);
        if (r.ok) { refreshOneCase(id); refreshStatsSoon(); }
      });
    });
  }

  // --- live ------------------------------------------------------------------------------------
  function freshToken() {
    return getJSON(cfg.urls.token).then(function (d) { return d.token; });
  }
  function caseIdOf(data) {
    if (!data) { return null; }
    if (data.case && data.case.id != null) { return data.case.id; }
    if (data.case_id != null) { return data.case_id; }
    return data.id != null ? data.id : null;
  }
  function noteSeq(data) {
    if (data && typeof data.seq === "number" && data.seq > wall.lastSeq) { wall.lastSeq = data.seq; }
  }
  function setLive(on) {
    $("live-dot").className = "dot " + (on ? "on" : "off");
    $("live-state").textContent = on ? t("live") : t("offline");
  }
  function connectLive() {
    var socket = io(cfg.urls.live, {
      transports: ["websocket"], reconnectionDelay: 500, reconnectionDelayMax: 3000,
      auth: function (cb) {
        freshToken().then(function (token) {
          var auth = { token: token };
          if (wall.lastSeq > 0) { auth.since = wall.lastSeq; }
          cb(auth);
        }).catch(function () { cb({}); });
      },
    });
    wall.socket = socket;
    socket.on("connect", function () {
      setLive(true);
      if (wall.connectedBefore) { refreshStatsSoon(); }
      wall.connectedBefore = true;
    });
    socket.on("disconnect", function () { setLive(false); });
    socket.on("connect_error", function () { setLive(false); });
    socket.onAny(function (event, data) {
      noteSeq(data);
      wall.eventsSeen += 1;
      if (event.indexOf("case.") === 0) {
        var id = caseIdOf(data);
        if (id != null) { refreshOneCase(id); }
        refreshStatsSoon();
        refreshGridsSoon();
      } else if (event === "worker.position" || event === "worker.duty") {
        upsertWorker(workerOf(data));
      } else if (event === "replay.truncated") {
        refreshCases(); refreshStats();
      }
    });
  }
  function workerOf(data) {
    var known = wall.workers[data.worker_id];
    var last = known ? known.info : {};
    return {
      id: data.worker_id, name: data.name || last.name || "",
      online: data.on_duty != null ? data.on_duty : (last.online != null ? last.online : true),
      lat: data.lat != null ? data.lat : last.lat, lon: data.lon != null ? data.lon : last.lon,
    };
  }
  wall.refreshStats = refreshStats;
  wall.openCard = openCard;

  document.addEventListener("DOMContentLoaded", start);
})();
