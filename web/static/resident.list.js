/* Residents' map: taps, the nearest list, "more", popups, place search, locating and the results sheet.
 *
 * Builds on window.Resident (resident.js). Distances are honest: a straight-line distance says so,
 * walking minutes are given up to an hour and beyond that the distance with a driving estimate;
 * with a road network the distance is along the roads and the route is drawn.
 */
(function () {
  'use strict';

  var R = window.Resident, data = R.data, t = R.t, map = R.map, el = R.el;
  var list = document.getElementById('results'), status = document.getElementById('panel-status');
  var hint = document.getElementById('panel-hint'), tools = document.getElementById('panel-tools');
  var sheet = document.getElementById('panel'), toggle = document.getElementById('sheet-toggle');
  var drawn = L.layerGroup().addTo(map), iso = L.layerGroup().addTo(map);
  var WALK_LIMIT_MIN = 60, MAX_K = data.max_k;
  var state = {origin: null, features: [], k: {}, query: null, cluster: null, places: null};

  /* ---- helpers ---- */

  function get(url) {
    return fetch(url, {headers: {Accept: 'application/json'}}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error((body.error && body.error.message) || r.statusText); }
        return body;
      });
    });
  }
  function qs(params) { return new URLSearchParams(params).toString(); }
  function setStatus(text, isError) {
    status.hidden = !text;
    status.textContent = text || '';
    status.className = 'status' + (isError ? ' error' : '');
  }
  function km(m) { return m < 1000 ? Math.round(m) + ' ' + t.m : (m / 1000).toFixed(m < 10000 ? 1 : 0) + ' ' + t.km; }
  function speeds() { return (state.query && state.query.speeds_m_per_min) || data.speeds; }

  /* "直线 1.2 公里 · 步行至少 15 分钟", "步行 1.4 公里 · 约 18 分钟", "约 9.7 公里 · 驾车约 20 分钟" */
  R.distanceText = function (p) {
    var by = p.by || 'straight', d = p.distance_m, s = speeds();
    if (by === 'drive') { return R.fill(t.drive_route, {d: km(d), m: p.minutes || Math.ceil(d / s.drive)}); }
    if (by === 'walk') {
      var walk = p.minutes || Math.ceil(d / s.walk);
      return walk <= WALK_LIMIT_MIN ? R.fill(t.walk_route, {d: km(d), m: walk})
        : R.fill(t.far_route, {d: (d / 1000).toFixed(d < 100000 ? 1 : 0), m: Math.ceil(d / s.drive)});
    }
    var least = Math.ceil(d / s.walk);
    return least <= WALK_LIMIT_MIN ? R.fill(t.straight_walk, {d: km(d), m: least})
      : R.fill(t.straight_far, {d: (d / 1000).toFixed(d < 100000 ? 1 : 0), m: Math.ceil(d / s.drive)});
  };

  /* Text that is in Chinese on the English page is marked so (and announced in Chinese). */
  function zhText(className, text) {
    var node = el('span', className, text);
    if (data.lang === 'en' && /[\u3400-\u9fff]/.test(text)) {
      node.lang = 'zh-CN';
      var box = el('span', className);
      box.appendChild(node);
      box.appendChild(el('span', 'in-zh', t.in_chinese));
      return box;
    }
    return node;
  }
  function hoursText(hours) {
    if (data.lang !== 'en' || !hours) { return hours; }
    var out = hours;
    t.hours_words.forEach(function (pair) { out = out.split(pair[0]).join(pair[1]); });
    return /[\u3400-\u9fff]/.test(out) ? hours : out;  // English only where every word is known
  }
  function badge(key) {
    var layer = R.layers[key], b = el('span', 'layer');
    if (!layer) { b.textContent = key; return b; }
    b.style.backgroundColor = layer.color;
    b.innerHTML = R.iconSvg(layer.icon);
    b.appendChild(document.createTextNode(' ' + layer.name));
    return b;
  }
  function navLinks(nav) {
    var box = el('div', 'nav');
    [['amap', t.amap], ['baidu', t.baidu], ['geo', t.geo]].forEach(function (pair) {
      if (!nav || !nav[pair[0]]) { return; }
      var a = el('a', 'nav-' + pair[0], pair[1]);
      a.href = nav[pair[0]];
      a.rel = 'noopener noreferrer';
      if (pair[0] !== 'geo') { a.target = '_blank'; }
      box.appendChild(a);
    });
    return box;
  }

  /* The details of a facility (popup and result row share them). */
  function details(p, box) {
    var kind = data.lang === 'en' ? p.kind_name_en : p.kind_name_zh;
    if (kind) { box.appendChild(el('span', 'kind', kind)); }
    if (p.synthetic) { box.appendChild(el('span', 'tag-synthetic', t.synthetic_tag)); }
    if (p.distance_m !== undefined && p.distance_m !== null) { box.appendChild(el('div', 'meta distance', R.distanceText(p))); }
    var district = data.lang === 'en' ? p.district_en : p.district_zh;
    if (district || p.address) {
      var addr = el('div', 'addr');
      if (district) { addr.appendChild(el('span', 'district', district + ' · ')); }
      if (p.address) { addr.appendChild(zhText('address', p.address)); }
      box.appendChild(addr);
    }
    if (p.phone) {
      var phone = el('div', 'meta phone', t.phone + ' ');
      var a = el('a', 'tel', p.phone);
      a.href = 'tel:' + p.phone.replace(/[^0-9+]/g, '');
      phone.appendChild(a);
      box.appendChild(phone);
    }
    if (p.opening_hours) {
      var hours = el('div', 'meta hours', t.hours + ' ');
      hours.appendChild(zhText('hours-text', hoursText(p.opening_hours)));
      box.appendChild(hours);
    }
    if (p.capacity !== undefined && p.capacity !== null) {
      var unit = data.lang === 'en' ? p.capacity_unit_en : p.capacity_unit_zh;
      box.appendChild(el('div', 'meta', unit ? p.capacity + ' ' + unit : t.capacity + ' ' + p.capacity));
    }
    box.appendChild(navLinks(p.navigation));
    return box;
  }
  function popupBox(p) {
    var box = el('div', 'popup');
    box.appendChild(badge(p.layer));
    box.appendChild(el('div', 'name', p.name));
    return details(p, box);
  }

  /* ---- the results sheet (phones): open, collapse, and keep the map fitted to the results ---- */

  function setSheet(open) {
    sheet.classList.toggle('collapsed', !open);
    toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    toggle.textContent = open ? t.collapse : t.expand;
    map.invalidateSize({pan: false});
  }
  toggle.addEventListener('click', function () {
    setSheet(sheet.classList.contains('collapsed'));
    fitResults();
  });
  function fitResults() {
    if (!state.origin) { return; }
    var pts = [state.origin.latlng];
    state.features.slice(0, 12).forEach(function (f) { pts.push(R.featureLatLng(f.properties.coordinates, f.geometry.coordinates)); });
    map.invalidateSize({pan: false});
    if (pts.length > 1) { map.fitBounds(L.latLngBounds(pts), {padding: [28, 28], maxZoom: 16}); } else { map.setView(pts[0], Math.max(map.getZoom(), 14)); }
  }

  /* ---- nearest ---- */

  function drawResults() {
    drawn.clearLayers();
    if (!state.origin) { return; }
    var here = R.toMap(state.origin.lon, state.origin.lat);
    if (state.query && state.query.coordinates) { here = R.featureLatLng(state.query.coordinates, [state.origin.lon, state.origin.lat]); }
    state.origin.latlng = here;
    L.marker(here, {icon: L.divIcon({className: 'here-marker', iconSize: [16, 16]}), title: state.origin.label || t.here,
                    alt: t.here, keyboard: false, interactive: false, pane: 'results'}).addTo(drawn);
    state.features.forEach(function (f) {
      var p = f.properties, layer = R.layers[p.layer], colour = layer ? layer.color : '#333';
      if (p.route && p.route.coordinates) {
        L.polyline(p.route.coordinates.map(function (c) { return R.toMap(c[0], c[1]); }),
                   {color: colour, weight: 4, opacity: 0.85, interactive: false, pane: 'results'}).addTo(drawn);
      } else {
        L.polyline([here, R.featureLatLng(p.coordinates, f.geometry.coordinates)],
                   {color: colour, weight: 2, dashArray: '5 5', interactive: false, pane: 'results'}).addTo(drawn);
      }
    });
  }
  R.redraw = function () { drawResults(); iso.clearLayers(); };

  function rowFor(f) {
    var p = f.properties, li = el('li', 'result');
    li.dataset.layer = p.layer;
    li.dataset.id = String(p.id);
    li.appendChild(badge(p.layer));
    var name = el('button', 'name show', p.name);
    name.type = 'button';
    name.setAttribute('aria-label', R.fill(t.show_on_map, {name: p.name}));
    li.appendChild(name);
    details(p, li);
    li.addEventListener('click', function (ev) {
      if (ev.target.closest('a') || (ev.target.closest('button') && !ev.target.closest('button.show'))) { return; }
      showFacility(f);
    });
    return li;
  }
  function moreButton(key) {
    var layer = R.layers[key], k = state.k[key] || 1;
    var b = el('button', 'more', R.fill(t.more, {layer: layer ? layer.name : key}));
    b.type = 'button';
    b.dataset.layer = key;
    b.disabled = k >= MAX_K;
    b.addEventListener('click', function () { more(key); });
    return b;
  }
  function renderList() {
    list.textContent = '';
    list.setAttribute('data-kind', 'nearest');
    var seen = {};
    state.features.forEach(function (f) {
      var key = f.properties.layer;
      if (seen[key]) { return; }
      seen[key] = true;
      var group = el('li', 'group');
      group.dataset.layer = key;
      var items = el('ol', 'items');
      state.features.filter(function (g) { return g.properties.layer === key; }).forEach(function (g) { items.appendChild(rowFor(g)); });
      group.appendChild(items);
      group.appendChild(moreButton(key));
      list.appendChild(group);
    });
  }

  function nearestUrl(lon, lat, crs, layers, k) {
    return data.api.nearest + '?' + qs({lon: lon.toFixed(7), lat: lat.toFixed(7), crs: crs, layer: layers, k: String(k)});
  }

  R.findNearest = function (lon, lat, crs, label) {
    var layers = R.activeLayers();
    hint.hidden = true;
    if (!layers.length) { setStatus(t.no_layers, true); list.textContent = ''; drawn.clearLayers(); return Promise.resolve(); }
    setStatus(t.loading);
    var all = layers.length === data.layers.length ? 'all' : layers.join(',');
    return get(nearestUrl(lon, lat, crs, all, 1)).then(function (fc) {
      var w = fc.query.coordinates ? fc.query.coordinates.wgs84 : [lon, lat];
      state.origin = {lon: w[0], lat: w[1], crs: crs, label: label};
      state.query = fc.query;
      state.k = {};
      layers.forEach(function (k) { state.k[k] = 1; });
      state.features = fc.features.filter(function (f) { return layers.indexOf(f.properties.layer) >= 0; });
      var where = fc.query.district ? (data.lang === 'en' ? fc.query.district.name_en : fc.query.district.name_zh) : null;
      var heading = (label ? R.fill(t.nearest_to, {place: label}) : t.nearest) + (where ? ' · ' + t.you_are_in + where : '');
      setStatus(fc.query.inside_city === false ? t.outside : heading, fc.query.inside_city === false);
      renderList();
      renderTools(fc);
      drawResults();
      iso.clearLayers();
      setSheet(true);
      fitResults();
    }).catch(function (err) { setStatus(t.error + err.message, true); });
  };

  function more(key) {
    var k = Math.min(MAX_K, (state.k[key] || 1) + 3);
    var o = state.origin;
    setStatus(t.loading);
    return get(nearestUrl(o.lon, o.lat, 'wgs84', key, k)).then(function (fc) {
      state.k[key] = k;
      state.features = state.features.filter(function (f) { return f.properties.layer !== key; }).concat(fc.features);
      renderList();
      drawResults();
      setStatus(R.fill(t.more_done, {n: fc.features.length, layer: R.layers[key].name}));
      var group = list.querySelector('li.group[data-layer="' + key + '"] .more');
      if (group) { group.focus(); }
    }).catch(function (err) { setStatus(t.error + err.message, true); });
  }

  function renderTools(fc) {
    tools.textContent = '';
    if (state.cluster) {
      var zoom = el('button', 'zoom-cluster', R.fill(t.zoom_cluster, {label: state.cluster.label}));
      zoom.type = 'button';
      zoom.addEventListener('click', function () { zoomCluster(); });
      tools.appendChild(zoom);
    }
    var net = fc.query.network;
    if (net && net.loaded) {
      var b = el('button', 'isochrone', t.isochrone);
      b.type = 'button';
      b.setAttribute('aria-pressed', 'false');
      b.addEventListener('click', function () { toggleIsochrone(b); });
      tools.appendChild(b);
      if (net.synthetic) { tools.appendChild(el('span', 'tag-synthetic', t.synthetic_network)); }
    } else {
      tools.appendChild(el('span', 'note', t.straight_note));
    }
    tools.hidden = false;
  }
  function toggleIsochrone(button) {
    if (iso.getLayers().length) { iso.clearLayers(); button.setAttribute('aria-pressed', 'false'); return; }
    var o = state.origin;
    get(data.api.isochrone + '?' + qs({lon: o.lon.toFixed(7), lat: o.lat.toFixed(7), minutes: '15', by: 'walk', crs: 'wgs84'}))
      .then(function (fc) {
        L.geoJSON(fc, {coordsToLatLng: function (c) { return L.latLng(R.toMap(c[0], c[1])); }, interactive: false,
                       style: {color: '#0b5394', weight: 2, fillColor: '#0b5394', fillOpacity: 0.12}}).addTo(iso);
        button.setAttribute('aria-pressed', 'true');
        setStatus(t.isochrone_shown);
      }).catch(function (err) { setStatus(t.error + err.message, true); });
  }

  /* ---- taps: anywhere gives the nearest list; a cluster zooms on the second tap or the button ---- */

  map.on('click', function (e) {
    state.cluster = null;
    var wgs = R.crs === 'wgs84';
    findAt(e.latlng, wgs ? 'wgs84' : R.crs);
  });
  function findAt(latlng, crs, label) { return R.findNearest(latlng.lng, latlng.lat, crs, label); }

  R.clusterTapped = function (layer, cluster, latlng) {
    if (state.cluster && state.cluster.layer === cluster) { zoomCluster(); return; }
    if (state.cluster && state.cluster.icon) { state.cluster.icon.classList.remove('selected'); }
    var icon = cluster._icon;
    if (icon) { icon.classList.add('selected'); }
    state.cluster = {layer: cluster, icon: icon, label: R.fill(t.cluster_label, {layer: layer.name, n: cluster.getChildCount()})};
    findAt(latlng, R.crs);
  };
  function zoomCluster() {
    var c = state.cluster;
    if (!c) { return; }
    state.cluster = null;
    var bounds = c.layer.getBounds(), zoom = map.getZoom();
    if (zoom >= map.getMaxZoom() || bounds.getNorthEast().equals(bounds.getSouthWest())) { c.layer.spiderfy(); return; }
    /* Into the cluster: to its extent when that is nearer than the view (the list may have zoomed in past it),
     * else one step nearer its centre. */
    if (map.getBoundsZoom(bounds, false, L.point(60, 60)) > zoom) {
      map.fitBounds(bounds, {padding: [30, 30]});
    } else {
      map.setView(c.layer.getLatLng(), zoom + 1);
    }
  }

  /* A marker's popup: what the marker knows at once, then the facility's details from the API. */
  R.markerTapped = function (e) {
    var m = e.target, f = m.facility, box = popupBox({layer: f.layer, name: f.name, synthetic: f.synthetic});
    box.appendChild(el('div', 'meta loading', t.loading));
    m.bindPopup(box, {maxWidth: 300}).openPopup();
    var shown = state.features.filter(function (g) { return g.properties.id === f.id; })[0];
    if (shown) { m.setPopupContent(popupBox(shown.properties)); return; }
    get(nearestUrl(f.lon, f.lat, 'wgs84', f.layer, 5) + '&by=straight').then(function (fc) {
      var hit = fc.features.filter(function (g) { return g.properties.id === f.id; })[0];
      if (!hit) { return; }
      var p = Object.assign({}, hit.properties);
      delete p.distance_m;
      m.setPopupContent(popupBox(p));
    }).catch(function () { /* the popup keeps what the marker knows */ });
  };

  /* A result row centres the map on its facility. */
  function showFacility(f) {
    var p = f.properties, ll = R.featureLatLng(p.coordinates, f.geometry.coordinates);
    map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
    L.popup({maxWidth: 300, offset: [0, -8]}).setLatLng(ll).setContent(popupBox(p)).openOn(map);
  }

  /* ---- search by place ---- */

  var form = document.getElementById('search-form'), box = document.getElementById('search-q');
  function searchPlaces(q, limit) {
    var c = map.getCenter();
    setStatus(t.loading);
    hint.hidden = true;
    return get(data.api.places + '?' + qs({q: q, near: c.lng.toFixed(6) + ',' + c.lat.toFixed(6), crs: R.crs,
                                          limit: String(limit), lang: data.lang})).then(function (fc) {
      state.places = {q: q, limit: limit};
      list.textContent = '';
      list.setAttribute('data-kind', 'places');
      drawn.clearLayers();
      tools.hidden = true;
      setStatus(fc.features.length ? R.fill(t.places_found, {n: fc.features.length, q: q}) : R.fill(t.none, {q: q}));
      fc.features.forEach(function (f) { list.appendChild(placeRow(f)); });
      if (fc.features.length >= limit && limit < 50) {
        var b = el('button', 'more more-places', t.more_places);
        b.type = 'button';
        b.addEventListener('click', function () { searchPlaces(q, Math.min(50, limit + 10)); });
        var li = el('li', 'group');
        li.appendChild(b);
        list.appendChild(li);
      }
      setSheet(true);
    }).catch(function (err) { setStatus(t.error + err.message, true); });
  }
  function placeRow(f) {
    var p = f.properties, li = el('li', 'place');
    li.dataset.kind = p.kind;
    var b = el('button', 'place-choose');
    b.type = 'button';
    b.appendChild(el('span', 'name', p.label));
    b.appendChild(el('span', 'kind', p.layer && R.layers[p.layer] ? R.layers[p.layer].name : p.kind_name));
    var meta = [p.district_name, p.distance_m !== null ? km(p.distance_m) : null].filter(Boolean).join(' · ');
    if (meta) { b.appendChild(el('span', 'meta', meta)); }
    if (p.synthetic) { b.appendChild(el('span', 'tag-synthetic', t.synthetic_place)); }
    b.addEventListener('click', function () { choosePlace(f); });
    li.appendChild(b);
    return li;
  }
  function choosePlace(f) {
    var p = f.properties, w = p.coordinates.wgs84;
    state.cluster = null;
    var zoom = {district: 12, town: 14, street: 15, zone: 14, village: 15}[p.kind] || 16;
    map.setView(R.featureLatLng(p.coordinates, w), zoom, {animate: false});
    return R.findNearest(w[0], w[1], 'wgs84', p.label);
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var q = box.value.trim();
    if (!q) { setStatus(t.empty_search, true); box.focus(); return; }
    searchPlaces(q, 10);
  });

  /* ---- my location, the map's centre ---- */

  document.getElementById('locate').addEventListener('click', function () {
    if (!navigator.geolocation) { setStatus(t.geo_unsupported, true); return; }
    setStatus(t.locating);
    navigator.geolocation.getCurrentPosition(function (pos) {
      state.cluster = null;
      R.findNearest(pos.coords.longitude, pos.coords.latitude, 'wgs84', t.here);  // browsers report WGS-84
    }, function (err) {
      var why = {1: t.geo_denied, 2: t.geo_unavailable, 3: t.geo_timeout}[err.code] || t.geo_unavailable;
      setStatus(t.no_geo + why, true);
    }, {enableHighAccuracy: true, timeout: 15000});
  });
  document.getElementById('centre-nearest').addEventListener('click', function () {
    state.cluster = null;
    findAt(map.getCenter(), R.crs, t.map_centre);
  });

  R.layersChanged = function () { if (state.origin) { R.findNearest(state.origin.lon, state.origin.lat, 'wgs84', state.origin.label); } };

  /* ---- what the address asked for (?q= or ?lon=&lat=), once the markers are there ---- */

  R.loaded.then(function () {
    var start = data.initial || {};
    if (start.q) { box.value = start.q; searchPlaces(start.q, 10); } else if (start.lon !== undefined && start.lon !== null) {
      R.findNearest(start.lon, start.lat, start.crs || 'wgs84', null);
    }
  });
  setSheet(!window.matchMedia('(max-width: 899px)').matches);
}());
