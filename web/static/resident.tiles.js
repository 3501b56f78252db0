/* Offline basemap for Leaflet: Mapbox Vector Tiles drawn on canvas tiles with the device's own fonts.
 *
 * The app serves the city's roads, district outlines and place names as vector tiles
 * (/tiles/basemap/z/x/y.mvt), and may serve an operator's MBTiles/PMTiles archive; this file
 * decodes them (a small protocol-buffers reader) and draws them. Labels are drawn with
 * canvas fillText in the page's own font stack, so Chinese and Latin text both work with no
 * glyph server and no font download. Layer names follow the OpenMapTiles schema, so an
 * operator's OpenMapTiles archive draws with the same style.
 */
(function () {
  'use strict';

  /* ---- protocol buffers: just what Mapbox Vector Tiles use ---- */

  function Reader(bytes) { this.b = bytes; this.pos = 0; }
  Reader.prototype.varint = function () {
    var b = this.b, val = 0, shift = 0, byte;
    do {
      byte = b[this.pos++];
      val += (byte & 0x7f) * Math.pow(2, shift);
      shift += 7;
    } while (byte >= 0x80 && shift < 70);
    return val;
  };
  Reader.prototype.svarint = function () {
    var n = this.varint();
    return n % 2 === 1 ? (n + 1) / -2 : n / 2;
  };
  Reader.prototype.bytes = function () {
    var len = this.varint(), start = this.pos;
    this.pos += len;
    return this.b.subarray(start, start + len);
  };
  Reader.prototype.skip = function (wire) {
    if (wire === 0) { this.varint(); } else if (wire === 1) { this.pos += 8; } else if (wire === 2) {
      this.pos += this.varint();
    } else if (wire === 5) { this.pos += 4; } else { throw new Error('bad wire type ' + wire); }
  };
  Reader.prototype.each = function (fn) {  // fn(field, wire) reads or skips each field
    while (this.pos < this.b.length) {
      var key = this.varint();
      fn(key >> 3, key & 7);
    }
  };
  var utf8 = new TextDecoder('utf-8');

  function readValue(bytes) {
    var r = new Reader(bytes), v = null;
    r.each(function (f, w) {
      var view;
      if (f === 1) { v = utf8.decode(r.bytes()); } else if (f === 2) {
        view = new DataView(r.b.buffer, r.b.byteOffset + r.pos, 4); v = view.getFloat32(0, true); r.pos += 4;
      } else if (f === 3) {
        view = new DataView(r.b.buffer, r.b.byteOffset + r.pos, 8); v = view.getFloat64(0, true); r.pos += 8;
      } else if (f === 4 || f === 5) { v = r.varint(); } else if (f === 6) { v = r.svarint(); } else if (f === 7) {
        v = r.varint() !== 0;
      } else { r.skip(w); }
    });
    return v;
  }

  function packed(bytes) {
    var r = new Reader(bytes), out = [];
    while (r.pos < bytes.length) { out.push(r.varint()); }
    return out;
  }

  /* Geometry commands to parts: arrays of [x, y] in tile units (points, lines or rings). */
  function geometry(cmds) {
    var parts = [], part = null, x = 0, y = 0, i = 0;
    while (i < cmds.length) {
      var id = cmds[i] & 7, count = cmds[i] >> 3;
      i++;
      if (id === 7) { if (part && part.length) { part.push(part[0]); } continue; }
      for (var k = 0; k < count; k++) {
        var dx = cmds[i++], dy = cmds[i++];
        x += dx % 2 === 1 ? (dx + 1) / -2 : dx / 2;
        y += dy % 2 === 1 ? (dy + 1) / -2 : dy / 2;
        if (id === 1) { part = []; parts.push(part); }
        part.push([x, y]);
      }
    }
    return parts;
  }

  function readLayer(bytes) {
    var r = new Reader(bytes), layer = {name: '', extent: 4096, keys: [], values: [], features: []};
    var raw = [];
    r.each(function (f, w) {
      if (f === 1) { layer.name = utf8.decode(r.bytes()); } else if (f === 2) { raw.push(r.bytes()); } else if (f === 3) {
        layer.keys.push(utf8.decode(r.bytes()));
      } else if (f === 4) { layer.values.push(readValue(r.bytes())); } else if (f === 5) { layer.extent = r.varint(); } else {
        r.skip(w);
      }
    });
    layer.features = raw.map(function (fb) {
      var fr = new Reader(fb), feat = {type: 0, props: {}, parts: []}, tags = [], cmds = [];
      fr.each(function (f, w) {
        if (f === 2) { tags = packed(fr.bytes()); } else if (f === 3) { feat.type = fr.varint(); } else if (f === 4) {
          cmds = packed(fr.bytes());
        } else { fr.skip(w); }
      });
      for (var t = 0; t + 1 < tags.length; t += 2) { feat.props[layer.keys[tags[t]]] = layer.values[tags[t + 1]]; }
      feat.parts = geometry(cmds);
      return feat;
    });
    return layer;
  }

  function decodeTile(buffer) {
    var r = new Reader(new Uint8Array(buffer)), layers = {};
    r.each(function (f, w) {
      if (f === 3) { var l = readLayer(r.bytes()); layers[l.name] = l; } else { r.skip(w); }
    });
    return layers;
  }

  /* ---- the style ---- */

  var FONT = 'system-ui, -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  var ROADS = {  // class: [from zoom, fill, casing, width at z14 (px)]
    primary: [0, '#f2b04f', '#b97a1e', 6], secondary: [0, '#f7d57f', '#c39b3a', 5], tertiary: [0, '#ffffff', '#a9a9a9', 4],
    minor: [12, '#ffffff', '#bdbdbd', 3], path: [14, '#8d8d8d', null, 1], motorway: [0, '#e98a5a', '#a8552e', 7],
    trunk: [0, '#f2b04f', '#b97a1e', 6], service: [14, '#ffffff', '#c8c8c8', 2], track: [14, '#a0896b', null, 1]
  };
  var PLACE_FONT = {district: ['bold', 15, '#2b2b2b'], city: ['bold', 15, '#2b2b2b'], street: ['', 13, '#2f2f2f'],
    town: ['', 13, '#2f2f2f'], zone: ['', 13, '#2f2f2f'], suburb: ['', 12, '#3a3a3a'], village: ['', 12, '#454545'],
    hamlet: ['', 11, '#555555']};

  function roadWidth(spec, z) { return Math.max(0.6, spec[3] * Math.pow(1.35, z - 14)); }

  function path(ctx, parts, s, close) {
    ctx.beginPath();
    parts.forEach(function (p) {
      p.forEach(function (pt, i) { if (i === 0) { ctx.moveTo(pt[0] * s, pt[1] * s); } else { ctx.lineTo(pt[0] * s, pt[1] * s); } });
      if (close) { ctx.closePath(); }
    });
  }

  function fill(ctx, layer, s, colour, filter) {
    if (!layer) { return; }
    ctx.fillStyle = colour;
    layer.features.forEach(function (f) { if (f.type === 3 && (!filter || filter(f.props))) { path(ctx, f.parts, s, true); ctx.fill('evenodd'); } });
  }

  function stroke(ctx, layer, s, colour, width, dash, filter) {
    if (!layer) { return; }
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.setLineDash(dash || []);
    layer.features.forEach(function (f) {
      if (f.type === 1 || (filter && !filter(f.props))) { return; }
      path(ctx, f.parts, s, f.type === 3); ctx.stroke();
    });
    ctx.setLineDash([]);
  }

  function drawRoads(ctx, layer, s, z) {
    if (!layer) { return; }
    var classes = Object.keys(ROADS).filter(function (c) { return z >= ROADS[c][0]; });
    ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    [true, false].forEach(function (casing) {
      classes.slice().reverse().forEach(function (c) {
        var spec = ROADS[c], w = roadWidth(spec, z);
        if (casing && (!spec[2] || z < 12)) { return; }
        stroke(ctx, layer, s, casing ? spec[2] : spec[1], casing ? w + 2 : w, c === 'path' || c === 'track' ? [3, 3] : null,
          function (p) { return (ROADS[p.class] ? p.class : 'minor') === c; });
      });
    });
  }

  function label(ctx, text, x, y, font, colour, italic) {
    ctx.font = (italic ? 'italic ' : '') + font[0] + ' ' + font[1] + 'px ' + FONT;
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.lineWidth = 3; ctx.strokeStyle = 'rgba(255,255,255,0.92)'; ctx.strokeText(text, x, y);
    ctx.fillStyle = colour; ctx.fillText(text, x, y);
  }

  function nameOf(props, lang) {
    if (lang === 'en') { return props.name_en || props['name:en'] || props.name || ''; }
    return props['name:zh'] || props.name || props.name_en || '';
  }

  function drawLabels(ctx, layers, s, lang) {
    var roadNames = layers.transportation_name;
    if (roadNames) {
      roadNames.features.forEach(function (f) {
        var p = f.parts[0] && f.parts[0][Math.floor(f.parts[0].length / 2)];
        if (p) { label(ctx, nameOf(f.props, lang), p[0] * s, p[1] * s, ['', 11, '#555555']); }
      });
    }
    var places = layers.place;
    if (!places) { return; }
    places.features.forEach(function (f) {
      var font = PLACE_FONT[f.props.class] || PLACE_FONT.village, p = f.parts[0] && f.parts[0][0];
      if (!p) { return; }
      if (f.props.class === 'village' || f.props.class === 'hamlet') {
        ctx.fillStyle = '#6b6b6b'; ctx.beginPath(); ctx.arc(p[0] * s, p[1] * s, 2, 0, 2 * Math.PI); ctx.fill();
        label(ctx, nameOf(f.props, lang), p[0] * s, p[1] * s - 10, font, font[2], f.props.synthetic);
      } else {
        label(ctx, nameOf(f.props, lang), p[0] * s, p[1] * s, font, font[2], f.props.synthetic);
      }
    });
  }

  function draw(canvas, layers, z, lang) {
    var ctx = canvas.getContext('2d'), size = canvas.width, any = layers.transportation || layers.district || layers.place;
    var extent = (any || {extent: 4096}).extent, s = size / extent;
    ctx.fillStyle = '#e4e7ea'; ctx.fillRect(0, 0, size, size);      // outside the city
    fill(ctx, layers.district, s, '#f6f3ec');                          // the city's land
    fill(ctx, layers.landcover, s, '#dcebcf');
    fill(ctx, layers.park, s, '#d3e8c4');
    fill(ctx, layers.water, s, '#a9cfe0');
    stroke(ctx, layers.waterway, s, '#8fbfd6', 1.5);
    drawRoads(ctx, layers.transportation, s, z);
    stroke(ctx, layers.district, s, '#7b6f8c', 1.5, [6, 4]);
    stroke(ctx, layers.boundary, s, '#7b6f8c', 1.2, [6, 4], function (p) { return !p.admin_level || p.admin_level <= 6; });
    drawLabels(ctx, layers, s, lang);
  }

  /* ---- the Leaflet layer ---- */

  L.VectorBasemap = L.GridLayer.extend({
    options: {url: '', lang: 'zh', maxNativeZoom: 19},
    createTile: function (coords, done) {
      var tile = document.createElement('canvas'), ratio = Math.min(window.devicePixelRatio || 1, 2);
      var size = this.getTileSize();
      tile.width = size.x * ratio; tile.height = size.y * ratio;
      tile.setAttribute('role', 'presentation');
      var url = L.Util.template(this.options.url, {z: coords.z, x: coords.x, y: coords.y});
      var lang = this.options.lang;
      fetch(url).then(function (r) {
        if (r.status === 404 || r.status === 204) { return new ArrayBuffer(0); }
        if (!r.ok) { throw new Error('tile ' + r.status); }
        return r.arrayBuffer();
      }).then(function (buf) {
        draw(tile, decodeTile(buf), coords.z, lang);
        done(null, tile);
      }).catch(function (err) { done(err, tile); });
      return tile;
    }
  });
  L.vectorBasemap = function (options) { return new L.VectorBasemap(options); };
  L.VectorBasemap.decode = decodeTile;
}());
