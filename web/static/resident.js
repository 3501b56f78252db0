/* Residents' map: the map, its basemap, the facility markers and the legend that switches layers.
 *
 * The page carries no facilities: every layer's markers come in one answer of /api/markers/all
 * (compact, delta-coded columns, cached by ETag), preloaded by the page's head before any script. Markers are drawn first, smallest layer first, and the basemap after them, so a slow
 * phone shows facilities as soon as it can. The nearest list, search and popups are in
 * resident.list.js, which uses what this file puts on window.Resident. Every piece of text from
 * the data is written with textContent, never innerHTML, so a facility called "<script>" runs nothing.
 */
(function () {
  'use strict';

  var data = JSON.parse(document.getElementById('resident-data').textContent);
  var t = data.t;
  var R = window.Resident = {data: data, t: t, layers: {}, groups: {}, columns: {}, crs: 'wgs84'};

  /* Icons: simple 16×16 pictograms, one per registry style.icon (a plain dot for any other). */
  var ICONS = {
    building: 'M2 15V4l6-3 6 3v11h-4v-4H6v4zm3-9v2h2V6zm4 0v2h2V6z',
    shield: 'M8 1l6 2.2v4.3c0 3.8-2.6 6.3-6 7.5-3.4-1.2-6-3.7-6-7.5V3.2z',
    tree: 'M8 1a4.6 4.6 0 0 1 2.2 8.7V15H5.8V9.7A4.6 4.6 0 0 1 8 1z',
    car: 'M2 8l1.6-4.2h8.8L14 8v5h-2v1.5h-2V13H6v1.5H4V13H2zm2.4-.6h7.2l-.9-2.3H5.3zM4 9.5v1.5h2V9.5zm6 0v1.5h2V9.5z',
    'plus-square': 'M6 2h4v4h4v4h-4v4H6v-4H2V6h4z',
    wheelchair: 'M7 1a1.6 1.6 0 1 1 0 3.2A1.6 1.6 0 0 1 7 1zM6 5.2h2v2.6h3.6l1.9 4.6-1.4.6-1.5-3.4H6zM4.6 7.7v1.8a2.9 2.9 0 1 0 4.3 3.7h1.8A4.6 4.6 0 1 1 4.6 7.7z',
    child: 'M8 1a2 2 0 1 1 0 4 2 2 0 0 1 0-4zM4.5 6h7l-1.5 4v5H8.8v-4H7.2v4H6v-5z',
    'fire-extinguisher': 'M5.5 5h5v10h-5zM7 1.5h2V5H7zm2 .8h4v1.4H9z',
    heart: 'M8 14.2L2.3 8.5a3.4 3.4 0 0 1 5.7-4.8 3.4 3.4 0 0 1 5.7 4.8z',
    hospital: 'M3 2h3.2v4.6h3.6V2H13v12H9.8V9.4H6.2V14H3z'
  };
  R.iconSvg = function (name) {
    var d = ICONS[name];
    return '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">' +
      (d ? '<path fill="#fff" d="' + d + '"/>' : '<circle cx="8" cy="8" r="4" fill="#fff"/>') + '</svg>';
  };
  R.el = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  };
  R.fill = function (template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] === undefined ? '' : String(values[k]); });
  };
  data.layers.forEach(function (l, i) { l.index = i; R.layers[l.key] = l; });

  /* ---- coordinates: WGS-84 data, drawn in the basemap's system (GCJ-02 on AMap's tiles) ---- */

  var A = 6378245.0, EE = 0.00669342162296594323;
  function shift(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0;
    var dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) +
      (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3 +
      (20 * Math.sin(y * Math.PI) + 40 * Math.sin(y / 3 * Math.PI)) * 2 / 3 +
      (160 * Math.sin(y / 12 * Math.PI) + 320 * Math.sin(y * Math.PI / 30)) * 2 / 3;
    var dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) +
      (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3 +
      (20 * Math.sin(x * Math.PI) + 40 * Math.sin(x / 3 * Math.PI)) * 2 / 3 +
      (150 * Math.sin(x / 12 * Math.PI) + 300 * Math.sin(x / 30 * Math.PI)) * 2 / 3;
    var rad = lat / 180 * Math.PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    return [dLon * 180 / (A / sq * Math.cos(rad) * Math.PI), dLat * 180 / ((A * (1 - EE)) / (magic * sq) * Math.PI)];
  }
  /* [lat, lng] on the map for a WGS-84 lon/lat */
  R.toMap = function (lon, lat) {
    if (R.crs !== 'gcj02') { return [lat, lon]; }
    var d = shift(lon, lat);
    return [lat + d[1], lon + d[0]];
  };
  /* A feature's own [lat, lng] on the map: its coordinates in the drawing system when the API gives them. */
  R.featureLatLng = function (coords, fallback) {
    var c = coords && coords[R.crs];
    return c ? [c[1], c[0]] : R.toMap(fallback[0], fallback[1]);
  };

  /* ---- the map ---- */

  var map = R.map = L.map('map', {zoomControl: false, attributionControl: false, minZoom: 6, maxZoom: 18,
                                 tap: true, keyboard: true});
  map.fitBounds(data.view.bounds);
  L.control.zoom({position: 'topleft', zoomInTitle: t.zoom_in, zoomOutTitle: t.zoom_out}).addTo(map);
  var attribution = L.control.attribution({prefix: t.attribution_prefix}).addTo(map);
  var scale = L.control.scale({imperial: false});
  scale._updateMetric = function (maxMeters) {  // the scale bar's units in the page's language
    var meters = this._getRoundNum(maxMeters);
    var text = meters < 1000 ? meters + ' ' + t.m : (meters / 1000) + ' ' + t.km;
    this._updateScale(this._mScale, text, meters / maxMeters);
  };
  scale.addTo(map);
  map.getContainer().setAttribute('aria-label', t.map_label);
  R.panes = {results: map.createPane('results')};
  R.panes.results.style.zIndex = 450;

  /* ---- the basemap: online where one can be had, offline otherwise or when its tiles fail ---- */

  var bm = data.basemap, online = null, offline = null;
  function addOffline(reason) {
    if (offline) { return; }
    var o = bm.offline;
    offline = o.kind === 'raster' ? L.tileLayer(o.url, {maxNativeZoom: o.maxZoom, minNativeZoom: o.minZoom, maxZoom: 18,
                                                        attribution: o.attribution})
      : L.vectorBasemap({url: o.url, lang: data.lang, attribution: o.attribution, minNativeZoom: o.minZoom,
                         maxNativeZoom: o.maxZoom});
    offline.addTo(map);
    document.body.setAttribute('data-basemap', 'offline');
    if (reason) { R.notice(reason); }
  }
  function fallBack() {
    if (!online) { return; }
    map.removeLayer(online);
    online = null;
    R.setCrs('wgs84');
    addOffline(t.basemap_fallback);
  }
  if (bm.online) { R.crs = bm.online.crs; }
  /* Drawn once the first markers are (its tiles and their drawing would delay them on a slow phone). */
  function addBasemap() {
    if (!bm.online) { addOffline(null); return; }
    var loaded = 0, failed = 0, inRow = 0;
    online = L.tileLayer(bm.online.url, {subdomains: bm.online.subdomains, maxZoom: 18,
                                         attribution: bm.online.attribution});
    online.on('tileload', function () { loaded++; inRow = 0; });
    online.on('tileerror', function () {
      failed++; inRow++;
      if ((loaded === 0 && failed >= 2) || inRow >= 6) { fallBack(); }
    });
    online.addTo(map);
    if (bm.online.labels) {
      online.labels = L.tileLayer(bm.online.labels, {subdomains: bm.online.subdomains, maxZoom: 18}).addTo(map);
      online.on('remove', function () { map.removeLayer(online.labels); });
    }
    document.body.setAttribute('data-basemap', 'online');
  }

  /* What waits for the first markers: the offline map's drawing (resident.tiles.js) and the nearest list
   * (resident.list.js), fetched then so they take no bandwidth from the map and the markers; run in order. */
  var later = null;
  function loadLater() {
    if (later) { return later; }
    later = Promise.all(data.later.map(function (src) {
      return new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = src;
        s.async = false;
        s.onload = resolve;
        s.onerror = function () { reject(new Error(src)); };
        document.head.appendChild(s);
      });
    })).then(addBasemap);
    return later;
  }
  attribution.addAttribution(t.data_attribution);

  /* ---- markers: one clustered group per layer, in the layer's colour and icon ---- */

  var ClusterIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      div.setAttribute('aria-label', this.options.label);
      div.setAttribute('title', this.options.label);
      return div;
    }
  });
  /* Clusters of different layers at one place fan out around it instead of hiding each other. */
  function offset(layer) {
    var n = data.layers.length, a = 2 * Math.PI * layer.index / n;
    return [Math.round(Math.cos(a) * 12), Math.round(Math.sin(a) * 12)];
  }
  function clusterIcon(layer) {
    var d = offset(layer);
    return function (cluster) {
      var n = cluster.getChildCount();
      var label = R.fill(t.cluster_label, {layer: layer.name, n: n});
      return new ClusterIcon({
        html: '<span class="cl" style="background:' + layer.color + '">' + R.iconSvg(layer.icon) + '<b>' + n + '</b></span>',
        className: 'cluster cluster-' + layer.key, iconSize: [46, 24], iconAnchor: [23 - d[0], 12 - d[1]], label: label
      });
    };
  }
  function markerIcon(layer) {
    return L.divIcon({html: '<span class="mk" style="background:' + layer.color + '">' + R.iconSvg(layer.icon) + '</span>',
                      className: 'facility facility-' + layer.key, iconSize: [24, 24], iconAnchor: [12, 12]});
  }

  data.layers.forEach(function (layer) {
    var group = L.markerClusterGroup({
      iconCreateFunction: clusterIcon(layer), zoomToBoundsOnClick: false, showCoverageOnHover: false,
      maxClusterRadius: 45, spiderfyOnMaxZoom: true, chunkedLoading: true, removeOutsideVisibleBounds: true,
      chunkProgress: function (done, total) { if (done === total && group.whenDrawn) { group.whenDrawn(); } }
    });
    group.on('clusterclick', function (e) { if (R.clusterTapped) { R.clusterTapped(layer, e.layer, e.latlng); } });
    R.groups[layer.key] = group;
    layer.on = true;
    group.addTo(map);
  });

  /* Columns of /api/markers to markers (running sums of the delta-coded ids and positions). */
  function buildMarkers(layer) {
    var c = R.columns[layer.key], icon = markerIcon(layer), out = new Array(c.count);
    var id = 0, x = 0, y = 0, kinds = c.kinds || [];
    for (var i = 0; i < c.count; i++) {
      id += c.id[i]; x += c.x[i]; y += c.y[i];
      var lon = x / c.scale, lat = y / c.scale;
      var kind = c.kind && c.kind[i] >= 0 ? kinds[c.kind[i]] : null;
      var m = L.marker(R.toMap(lon, lat), {icon: icon, title: c.name[i] + ' · ' + layer.name, alt: c.name[i],
                                          keyboard: true, riseOnHover: true});
      m.facility = {id: id, lon: lon, lat: lat, name: c.name[i], kind: kind, synthetic: c.synthetic[i] === 1,
                    layer: layer.key};
      m.on('click', tapped);
      out[i] = m;
    }
    return out;
  }
  function tapped(e) { if (R.markerTapped) { R.markerTapped(e); } }  // resident.list.js defines it, once loaded
  /* The layer's markers into its group; resolves once they are clustered and drawn (at once when switched off). */
  function showLayer(layer) {
    var group = R.groups[layer.key];
    var count = document.querySelector('#legend [data-count="' + layer.key + '"]');
    if (count) { count.textContent = R.fill(t.count, {n: R.columns[layer.key].count}); }
    group.clearLayers();
    return new Promise(function (resolve) {
      group.whenDrawn = map.hasLayer(group) ? resolve : null;
      group.addLayers(buildMarkers(layer), true);
      if (!group.whenDrawn) { resolve(); }
    });
  }
  /* After the next frame is painted (what has been drawn so far shows). */
  function nextTask() {
    return new Promise(function (resolve) { requestAnimationFrame(function () { setTimeout(resolve, 0); }); });
  }
  R.setCrs = function (crs) {
    if (crs === R.crs) { return; }
    R.crs = crs;
    data.layers.forEach(function (layer) { if (R.columns[layer.key]) { showLayer(layer); } });
    if (R.redraw) { R.redraw(); }
  };
  /* Smallest layer first, each in a task of its own, so the first clusters are painted while the
   * larger layers are still being clustered; the rest of the page follows the first layer drawn. */
  function showAll(answer) {
    answer.layers.forEach(function (cols) { R.columns[cols.layer] = cols; });
    var order = data.layers.filter(function (l) { return R.columns[l.key]; })
      .sort(function (a, b) { return R.columns[a.key].count - R.columns[b.key].count; });
    return order.reduce(function (done, layer, i) {
      return done.then(i ? nextTask : null).then(function () { if (i === 1) { loadLater(); } return showLayer(layer); });
    }, Promise.resolve());
  }
  R.loaded = fetch(data.api.markers_all).then(function (r) { if (!r.ok) { throw new Error(r.statusText); } return r.json(); })
    .then(showAll)
    .catch(function (err) { R.notice(t.error + err.message, true); })
    .then(loadLater)
    .then(function () { document.body.setAttribute('data-markers', 'ready'); });

  /* ---- the legend is the layer switcher ---- */

  var Legend = L.Control.extend({
    options: {position: 'topright'},
    onAdd: function () {
      var box = document.getElementById('legend');
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    }
  });
  new Legend().addTo(map);
  var legend = document.getElementById('legend');
  data.layers.forEach(function (layer) {
    var input = legend.querySelector('input[value="' + layer.key + '"]');
    input.parentNode.querySelector('.swatch').innerHTML = R.iconSvg(layer.icon);
    input.addEventListener('change', function () {
      layer.on = input.checked;
      if (input.checked) { map.addLayer(R.groups[layer.key]); } else { map.removeLayer(R.groups[layer.key]); }
      if (R.layersChanged) { R.layersChanged(); }
    });
  });
  if (window.matchMedia('(min-width: 900px)').matches) { legend.setAttribute('open', ''); }
  R.activeLayers = function () { return data.layers.filter(function (l) { return l.on; }).map(function (l) { return l.key; }); };

  R.notice = function (text, isError) {
    var box = document.getElementById('map-notice');
    box.textContent = text || '';
    box.hidden = !text;
    box.className = 'map-notice' + (isError ? ' error' : '');
  };

  /* The map follows its container: the phone's results sheet opening or closing resizes it. */
  if (window.ResizeObserver) {
    new ResizeObserver(function () { map.invalidateSize({pan: false}); }).observe(map.getContainer());
  }
}());
