/* Residents' map: markers, nearest-on-click, "use my location" and search.
 *
 * Folium has already made the map and one marker-cluster group per layer
 * (their global names are in the embedded JSON). Every piece of text from the
 * data is written with textContent or createTextNode, never innerHTML, so a
 * facility called "<script>…" shows as text and runs nothing.
 */
(function () {
  'use strict';

  var data = JSON.parse(document.getElementById('resident-data').textContent);
  var t = data.t;
  var map = window[data.map];
  var layersByKey = {};
  data.layers.forEach(function (l) { layersByKey[l.key] = l; });
  var resultsLayer = L.layerGroup().addTo(map);
  var list = document.getElementById('results');
  var status = document.getElementById('panel-status');
  var hint = document.getElementById('panel-hint');

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function syntheticTag() { return el('span', 'tag-synthetic', t.synthetic_tag); }

  function layerBadge(key) {
    var layer = layersByKey[key];
    var badge = el('span', 'layer', layer ? layer.name : key);
    if (layer) { badge.style.backgroundColor = layer.color; }
    return badge;
  }

  function formatDistance(m) {
    if (m < 1000) { return Math.round(m) + ' ' + t.m; }
    return (m / 1000).toFixed(m < 10000 ? 1 : 0) + ' ' + t.km;
  }

  function setStatus(text, isError) {
    status.hidden = !text;
    status.textContent = text || '';
    status.className = 'status' + (isError ? ' error' : '');
  }

  /* ---- facility markers ---- */

  /* p: [id, lon, lat, name, kind, synthetic, address (search results only)] */
  function popupFor(layerKey, p) {
    var box = el('div', 'popup');
    box.appendChild(layerBadge(layerKey));
    var kinds = layersByKey[layerKey].kinds || {};
    if (p[4] && kinds[p[4]]) { box.appendChild(document.createTextNode(' ' + kinds[p[4]])); }
    box.appendChild(el('div', 'name', p[3]));
    if (p[6]) { box.appendChild(el('div', 'addr', p[6])); }
    if (p[5]) { box.appendChild(syntheticTag()); }
    return box;
  }

  data.layers.forEach(function (layer) {
    var cluster = window[layer.cluster];
    var points = data.points[layer.key] || [];
    var markers = points.map(function (p) {
      var marker = L.circleMarker([p[2], p[1]], {
        radius: 7, color: '#ffffff', weight: 1.5, fillColor: layer.color, fillOpacity: 0.9,
        bubblingMouseEvents: false
      });
      marker.bindPopup(function () { return popupFor(layer.key, p); });
      marker.options.facilityId = p[0];
      return marker;
    });
    cluster.addLayers(markers);
  });

  /* ---- nearest ---- */

  function displayLatLng(coords) {
    var c = coords[data.crs] || coords.wgs84;
    return [c[1], c[0]];
  }

  function navLinks(nav) {
    var box = el('div', 'nav');
    [['amap', t.amap], ['baidu', t.baidu], ['geo', t.geo]].forEach(function (pair) {
      if (!nav[pair[0]]) { return; }
      var a = el('a', 'nav-' + pair[0], pair[1]);
      a.href = nav[pair[0]];
      a.rel = 'noopener noreferrer';
      if (pair[0] !== 'geo') { a.target = '_blank'; }
      box.appendChild(a);
    });
    return box;
  }

  function resultItem(f, walkSpeed) {
    var p = f.properties;
    var li = el('li', 'result');
    li.dataset.layer = p.layer;
    li.dataset.id = String(p.id);
    li.appendChild(layerBadge(p.layer));
    li.appendChild(el('span', 'name', p.name));
    if (p.synthetic) { li.appendChild(syntheticTag()); }
    if (p.distance_m !== undefined) {
      li.appendChild(el('div', 'meta distance',
        formatDistance(p.distance_m) + ' · ' + t.walk.replace('{m}', Math.ceil(p.distance_m / walkSpeed))));
    }
    var district = data.lang === 'en' ? p.district_en : p.district_zh;
    var addr = [district, p.address].filter(Boolean).join(' · ');
    if (addr) { li.appendChild(el('div', 'addr', addr)); }
    var extra = [];
    if (p.phone) { extra.push(t.phone + ' ' + p.phone); }
    if (p.opening_hours) { extra.push(t.hours + ' ' + p.opening_hours); }
    if (p.capacity !== undefined && p.capacity !== null) {
      var unit = data.lang === 'en' ? p.capacity_unit_en : p.capacity_unit_zh;
      extra.push(unit ? p.capacity + ' ' + unit : t.capacity + ' ' + p.capacity);
    }
    if (extra.length) { li.appendChild(el('div', 'meta', extra.join(' · '))); }
    li.appendChild(navLinks(p.navigation));
    return li;
  }

  function showHere(query) {
    var icon = L.divIcon({className: 'here-marker', iconSize: [14, 14]});
    L.marker(displayLatLng(query.coordinates), {icon: icon, title: t.here, interactive: false})
      .addTo(resultsLayer);
  }

  function get(url) {
    return fetch(url, {headers: {Accept: 'application/json'}}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error((body.error && body.error.message) || r.statusText); }
        return body;
      });
    });
  }

  function findNearest(lon, lat, crs) {
    hint.hidden = true;
    setStatus(t.loading);
    var url = data.api.nearest + '?' + new URLSearchParams({
      lon: lon.toFixed(7), lat: lat.toFixed(7), crs: crs, layer: 'all', k: '1', by: 'straight'
    }).toString();
    return get(url).then(function (fc) {
      resultsLayer.clearLayers();
      list.textContent = '';
      showHere(fc.query);
      var heading = t.nearest;
      if (fc.query.district) {
        heading += ' · ' + t.you_are_in + (data.lang === 'en' ? fc.query.district.name_en : fc.query.district.name_zh);
      }
      setStatus(fc.query.inside_city ? heading : t.outside, !fc.query.inside_city);
      fc.features.forEach(function (f) {
        list.appendChild(resultItem(f, fc.query.speeds_m_per_min.walk));
        var layer = layersByKey[f.properties.layer];
        L.polyline([displayLatLng(fc.query.coordinates), displayLatLng(f.properties.coordinates)],
          {color: layer ? layer.color : '#333', weight: 2, dashArray: '4 4', interactive: false})
          .addTo(resultsLayer);
      });
      list.setAttribute('data-kind', 'nearest');
    }).catch(function (err) { setStatus(t.error + err.message, true); });
  }

  map.on('click', function (e) {
    // the click is in the basemap's system: GCJ-02 on AMap tiles, WGS-84 otherwise
    findNearest(e.latlng.lng, e.latlng.lat, data.crs);
  });

  document.getElementById('locate').addEventListener('click', function () {
    if (!navigator.geolocation) { setStatus(t.no_geo + 'geolocation', true); return; }
    setStatus(t.loading);
    navigator.geolocation.getCurrentPosition(function (pos) {
      // browsers report WGS-84
      findNearest(pos.coords.longitude, pos.coords.latitude, 'wgs84').then(function () {
        map.setView([pos.coords.latitude, pos.coords.longitude], Math.max(map.getZoom(), 14));
      });
    }, function (err) { setStatus(t.no_geo + err.message, true); }, {enableHighAccuracy: true, timeout: 15000});
  });

  /* ---- search ---- */

  document.getElementById('search-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var q = document.getElementById('search-q').value.trim();
    if (!q) { return; }
    hint.hidden = true;
    setStatus(t.loading);
    get(data.api.search + '?' + new URLSearchParams({q: q, limit: '20'}).toString()).then(function (fc) {
      resultsLayer.clearLayers();
      list.textContent = '';
      list.setAttribute('data-kind', 'search');
      setStatus(fc.features.length ? t.results + ' (' + fc.features.length + ')' : t.none);
      fc.features.forEach(function (f) {
        var li = resultItem(f);
        li.addEventListener('click', function (ev) {
          if (ev.target.tagName === 'A') { return; }
          var ll = displayLatLng(f.properties.coordinates);
          resultsLayer.clearLayers();
          L.circleMarker(ll, {radius: 10, color: '#000', weight: 2, fillOpacity: 0})
            .bindPopup(popupFor(f.properties.layer, [f.properties.id, ll[1], ll[0], f.properties.name,
              f.properties.kind, f.properties.synthetic, f.properties.address]))
            .addTo(resultsLayer).openPopup();
          map.setView(ll, Math.max(map.getZoom(), 15));
        });
        list.appendChild(li);
      });
    }).catch(function (err) { setStatus(t.error + err.message, true); });
  });
}());
