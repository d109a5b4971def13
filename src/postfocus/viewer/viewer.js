/*
 * postfocus viewer: tap to refocus a focus sweep in any browser.
 *
 * One plain ES2019 script, no build step, no dependency, no network access of
 * its own. The exported page inlines it (with data: URLs); the local web app
 * serves the same file (with http URLs). It defines one global:
 *
 *   PostfocusViewer.mount(container, data, options) -> viewer
 *
 * data (format version 1; the Python side is postfocus.viewer.export.viewer_data):
 *   width, height      tap coordinate space: the processed stack's output geometry (pixels)
 *   frames             [{index, src, name, time?}] in focus order; index = the stack's frame number (0-based); name
 *                      empty for a video's frame, which has time ('0.08 s', as the command line says it)
 *   frameCount         optional: frames in the whole sweep, also those left out (default: from frames)
 *   allInFocus         src of the all-in-focus image
 *   focusMap           Raster + {min, max}: focus position per pixel, value v -> frame number
 *                      min + v / vmax * (max - min) (vmax 255 or 65535)
 *   tapMap             optional Raster (3 channels) + {positionMin, positionMax}: the Python tap answer
 *                      for every focus-volume pixel. ch0 = slot (index into frames),
 *                      ch1 = position scaled like focusMap, ch2 = confidence in the low bits, top bit
 *                      set when the answer came from the nearest confident area (fallback); filledFrom:
 *                      the map whose fill answers a plain point ("depth map", "focus map"), when the
 *                      tap map's fallbacks are read there, not at the nearest confident area
 *   volume             optional Raster + {slices, radius}: coarse per-frame focus grid, slices stacked
 *                      vertically; used for taps only when there is no tapMap
 *   depthPreview       optional src of a depth picture (else drawn from focusMap)
 *   names              optional frame names (frames[k].name wins)
 *   order              optional {near_to_far, assumed, nearest, farthest, said}: the depth order the depth, pop and
 *                      refocus took (postfocus.products.order); the lasting page shows "said" when assumed
 *   scene              optional {first, last, depths}: the frame numbers the scene's depths span (with a margin);
 *                      the slider spans them, the 'Whole sweep' button (W) all the frames
 *   title, pop {tolerance, softness}
 * Raster: {width, height, src} (8-bit PNG, decoded through a canvas without colour conversion)
 *      or {width, height, data, dtype: "uint8"|"uint16", channels} (base64 little-endian samples);
 *      optional "sum": sum of all samples, checked after decoding.
 * src: a data: URL or any URL an <img> can load.
 *
 * The viewer returned by mount: tap(x, y), tapAnswer(x, y) (the answer without showing it), showSlot(k),
 * showFrame(frameNumber), setMode('frame'|'allInFocus'|'depth'|'pop'), toggleMode(mode), setMagnifier(on),
 * setWholeSweep(on), setPopTolerance(frames), frameLabel(frameNumber), getState(), whenReady() -> Promise,
 * destroy(), and .mode / .slot.
 * Frame numbers in the data, the state and the methods are 0-based; what people read is 1-based with the
 * file name: frameLabel(2) = 'Frame 3 of 7 (pcb_003.jpg)', as the command line names frames (a video's frame:
 * 'Frame 3 of 7 (0.08 s)'); the slider's readout says it too. getState() (also window.postfocusState,
 * read-only) = frozen {frame, slot, name, label, frames, frameCount, mode, magnifier, popPosition, ready, warnings,
 * sliderFirst, sliderLast (the frame numbers the slider spans), wholeSweep,
 * lastTap: {x, y, frame, slot, position, confidence, fallback, filledFrom, ms (from the input event), handlerMs,
 * frameMs (to the next animation frame)}}. The container gets data-frame, data-mode and data-ready.
 *
 * options: {keyboardTarget (default: the container), exposeState (default true: window.postfocusState),
 *           fadeMs (160), magnification (5), loupeSize (180 CSS px),
 *           peakingThreshold (Sobel |gx|+|gy| on 0..255; default half the 99th percentile of the all-in-focus picture's),
 *           onChange(state), maxHeight() -> CSS px available for the picture}
 */
(function (root, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  if (root) root.PostfocusViewer = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var MIN_CONFIDENCE = 0.25; // postfocus.products.refocus.MIN_CONFIDENCE
  var MODES = ['frame', 'allInFocus', 'depth', 'pop'];

  // ---------------------------------------------------------------- helpers
  function el(tag, cls, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function clamp(v, lo, hi) { return v < lo ? lo : (v > hi ? hi : v); }

  // Python's round(): halves go to the even neighbour.
  function roundHalfEven(v) {
    var f = Math.floor(v);
    var d = v - f;
    if (d < 0.5) return f;
    if (d > 0.5) return f + 1;
    return (f % 2 === 0) ? f : f + 1;
  }

  function base64ToBytes(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function dataUrlToBlob(src) {
    var comma = src.indexOf(',');
    var head = src.slice(5, comma);
    var mime = head.split(';')[0] || 'application/octet-stream';
    var body = src.slice(comma + 1);
    var bytes = /;base64$/i.test(head) ? base64ToBytes(body) : new TextEncoder().encode(decodeURIComponent(body));
    return new Blob([bytes], { type: mime });
  }

  function loadImage(src) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error('cannot decode image ' + String(src).slice(0, 60))); };
      img.src = src;
    });
  }

  // Pixels of an image exactly as stored (no colour management, no premultiplication).
  function imagePixels(src, width, height) {
    var bitmapOptions = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };
    var source;
    if (typeof createImageBitmap === 'function' && /^data:/i.test(src)) {
      source = createImageBitmap(dataUrlToBlob(src), bitmapOptions).catch(function () { return loadImage(src); });
    } else {
      source = loadImage(src).then(function (img) {
        if (typeof createImageBitmap !== 'function') return img;
        return createImageBitmap(img, bitmapOptions).catch(function () { return img; });
      });
    }
    return source.then(function (image) {
      var w = width || image.naturalWidth || image.width;
      var h = height || image.naturalHeight || image.height;
      var c = el('canvas');
      c.width = w; c.height = h;
      var ctx = c.getContext('2d', { willReadFrequently: true });
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(image, 0, 0, w, h);
      var pixels = ctx.getImageData(0, 0, w, h).data;
      if (image.close) image.close();
      return pixels;
    });
  }

  // Decode a Raster into {width, height, channels, vmax, data: Uint8Array|Uint16Array}.
  function decodeRaster(r) {
    var channels = r.channels || 1;
    var done;
    if (r.data) {
      var bytes = base64ToBytes(r.data);
      if (r.dtype === 'uint16') {
        var view = new DataView(bytes.buffer);
        var n16 = bytes.length >> 1;
        var out16 = new Uint16Array(n16);
        for (var i = 0; i < n16; i++) out16[i] = view.getUint16(2 * i, true);
        done = Promise.resolve({ data: out16, vmax: 65535 });
      } else {
        done = Promise.resolve({ data: bytes, vmax: 255 });
      }
    } else {
      done = imagePixels(r.src, r.width, r.height).then(function (rgba) {
        var n = r.width * r.height;
        var out = new Uint8Array(n * channels);
        for (var p = 0, q = 0; p < n; p++) {
          for (var c = 0; c < channels; c++) out[q++] = rgba[4 * p + c];
        }
        return { data: out, vmax: 255 };
      });
    }
    return done.then(function (d) {
      var raster = { width: r.width, height: r.height, channels: channels, vmax: d.vmax, data: d.data, exact: true };
      if (typeof r.sum === 'number') {
        var s = 0;
        for (var i = 0; i < d.data.length; i++) s += d.data[i];
        raster.exact = (s === r.sum);
        if (!raster.exact && typeof console !== 'undefined') {
          console.warn('postfocus: a map was altered while decoding (sum ' + s + ', expected ' + r.sum + ')');
        }
      }
      return raster;
    });
  }

  // --------------------------------------------- tap logic (postfocus.products.refocus)
  // Lookup in the precomputed tap map: the answer of postfocus.products.refocus.tap at (x, y).
  function tapFromMap(tm, meta, frames, width, height, x, y) {
    var g = meta.grid; // cut maps: the uncut maps' grid, as postfocus.maps.StackMaps.map_grid (grid10)
    var cx = g ? roundHalfEven((x + g.origin[0]) * g.scale[0]) - g.mapOrigin[0] : roundHalfEven(x * (tm.width / width));
    var cy = g ? roundHalfEven((y + g.origin[1]) * g.scale[1]) - g.mapOrigin[1] : roundHalfEven(y * (tm.height / height));
    cx = clamp(cx, 0, tm.width - 1); cy = clamp(cy, 0, tm.height - 1);
    var p = (cy * tm.width + cx) * tm.channels;
    var slot = Math.min(tm.data[p], frames.length - 1);
    var half = (tm.vmax + 1) / 2;
    var c = tm.data[p + 2];
    var lo = meta.positionMin, hi = meta.positionMax;
    return {
      x: x, y: y, slot: slot, frame: frames[slot].index,
      position: lo + tm.data[p + 1] / tm.vmax * (hi - lo),
      confidence: (c % half) / (half - 1),
      fallback: c >= half,
      filledFrom: c >= half ? (meta.filledFrom || '') : '',
      mapX: cx, mapY: cy
    };
  }

  function windowScores(vol, n, h, w, cx, cy, r) {
    var y0 = Math.max(0, cy - r), y1 = Math.min(h, cy + r + 1);
    var x0 = Math.max(0, cx - r), x1 = Math.min(w, cx + r + 1);
    var count = (y1 - y0) * (x1 - x0);
    var out = new Float64Array(n);
    for (var k = 0; k < n; k++) {
      var s = 0, base = k * h * w;
      for (var yy = y0; yy < y1; yy++) {
        var row = base + yy * w;
        for (var xx = x0; xx < x1; xx++) s += vol[row + xx];
      }
      out[k] = s / count;
    }
    return out;
  }

  function scoreConfidence(scores) {
    var peak = -Infinity;
    for (var i = 0; i < scores.length; i++) if (scores[i] > peak) peak = scores[i];
    if (!(peak > 0)) return 0;
    var sorted = Array.prototype.slice.call(scores).sort(function (a, b) { return a - b; });
    var m = sorted.length >> 1;
    var median = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    return clamp(1.5 * (1 - median / peak), 0, 1);
  }

  function argmax(a) {
    var k = 0;
    for (var i = 1; i < a.length; i++) if (a[i] > a[k]) k = i;
    return k;
  }

  // Port of postfocus.products.refocus.sharpest_frame over a focus grid (no confidence map).
  function sharpestFrame(vol, n, h, w, frameNumbers, x, y, scaleX, scaleY, radius) {
    var cx = clamp(roundHalfEven(x * scaleX), 0, w - 1);
    var cy = clamp(roundHalfEven(y * scaleY), 0, h - 1);
    var scores = windowScores(vol, n, h, w, cx, cy, radius);
    var conf = scoreConfidence(scores);
    var sx = cx, sy = cy, fallback = false;
    if (conf < MIN_CONFIDENCE) {
      var best = null;
      for (var ring = radius * 2; ring < Math.max(h, w); ring += radius * 2) {
        for (var dy = -ring; dy <= ring; dy += radius) {
          var dxs = [];
          if (Math.abs(dy) !== ring) dxs = [-ring, ring];
          else for (var d = -ring; d <= ring; d += radius) dxs.push(d);
          for (var j = 0; j < dxs.length; j++) {
            var dx = dxs[j], px = cx + dx, py = cy + dy;
            if (px < 0 || px >= w || py < 0 || py >= h) continue;
            var s = windowScores(vol, n, h, w, px, py, radius);
            var c = scoreConfidence(s);
            if (c >= MIN_CONFIDENCE && (best === null || dx * dx + dy * dy < best.d2)) {
              best = { d2: dx * dx + dy * dy, px: px, py: py, scores: s, conf: c };
            }
          }
        }
        if (best !== null) break;
      }
      if (best !== null) {
        sx = best.px; sy = best.py; scores = best.scores; conf = best.conf; fallback = true;
      }
    }
    var k = argmax(scores);
    var position = k;
    if (k > 0 && k < n - 1) {
      var ym = Math.log(Math.max(scores[k - 1], 1e-12));
      var y0 = Math.log(Math.max(scores[k], 1e-12));
      var yp = Math.log(Math.max(scores[k + 1], 1e-12));
      var denom = ym - 2 * y0 + yp;
      if (denom < -1e-9) position = k + clamp(0.5 * (ym - yp) / denom, -0.5, 0.5);
    }
    var i0 = Math.floor(position), i1 = Math.min(i0 + 1, n - 1), t = position - i0;
    var framePos = frameNumbers[i0] + t * (frameNumbers[i1] - frameNumbers[i0]);
    return {
      x: x, y: y, slot: k, frame: frameNumbers[k], position: framePos, confidence: conf,
      fallback: fallback, filledFrom: '', sourceX: sx / scaleX, sourceY: sy / scaleY
    };
  }

  // ------------------------------------------------------ image processing
  // Guided filter (He et al.) with box means from integral images; all Float32Array (w*h).
  function boxMean(src, w, h, r) {
    var W = w + 1, I = new Float64Array(W * (h + 1)), out = new Float32Array(w * h);
    for (var y = 0; y < h; y++) {
      var run = 0;
      for (var x = 0; x < w; x++) {
        run += src[y * w + x];
        I[(y + 1) * W + x + 1] = I[y * W + x + 1] + run;
      }
    }
    for (var yy = 0; yy < h; yy++) {
      var y0 = Math.max(0, yy - r), y1 = Math.min(h, yy + r + 1);
      for (var xx = 0; xx < w; xx++) {
        var x0 = Math.max(0, xx - r), x1 = Math.min(w, xx + r + 1);
        var s = I[y1 * W + x1] - I[y0 * W + x1] - I[y1 * W + x0] + I[y0 * W + x0];
        out[yy * w + xx] = s / ((y1 - y0) * (x1 - x0));
      }
    }
    return out;
  }

  function guidedFilter(guide, src, w, h, r, eps) {
    var n = w * h, i;
    var gp = new Float32Array(n), gg = new Float32Array(n);
    for (i = 0; i < n; i++) { gp[i] = guide[i] * src[i]; gg[i] = guide[i] * guide[i]; }
    var mg = boxMean(guide, w, h, r), mp = boxMean(src, w, h, r);
    var mgp = boxMean(gp, w, h, r), mgg = boxMean(gg, w, h, r);
    var a = new Float32Array(n), b = new Float32Array(n);
    for (i = 0; i < n; i++) {
      var cov = mgp[i] - mg[i] * mp[i], vr = mgg[i] - mg[i] * mg[i];
      a[i] = cov / (vr + eps);
      b[i] = mp[i] - a[i] * mg[i];
    }
    var ma = boxMean(a, w, h, r), mb = boxMean(b, w, h, r);
    var out = new Float32Array(n);
    for (i = 0; i < n; i++) out[i] = clamp(ma[i] * guide[i] + mb[i], 0, 1);
    return out;
  }

  // Slots [first, last] of the frames inside data.scene {first, last} (frame numbers), or null when the scene
  // fills SCENE_FILLS of the frames or more (or is not given): then the slider spans them all, as a button to
  // add a frame or two would only be in the way.
  var SCENE_FILLS = 0.75;
  function sceneSlots(frameNumbers, scene) {
    if (!scene || scene.first == null || scene.last == null || frameNumbers.length < 3) return null;
    var a = -1, b = -1;
    for (var k = 0; k < frameNumbers.length; k++) {
      if (frameNumbers[k] >= scene.first && frameNumbers[k] <= scene.last) { if (a < 0) a = k; b = k; }
    }
    if (a < 0 || b <= a || b - a + 1 >= SCENE_FILLS * frameNumbers.length) return null;
    return [a, b];
  }

  // ---------------------------------------------------------------- viewer
  function Viewer(container, data, options) {
    this.container = container;
    this.data = data;
    this.options = options || {};
    this.fadeMs = this.options.fadeMs == null ? 160 : this.options.fadeMs;
    this.magnification = this.options.magnification || 5;
    this.loupeSize = this.options.loupeSize || 180;
    this.peakingThreshold = this.options.peakingThreshold || null; // null: from the all-in-focus picture
    this.frames = data.frames.map(function (f, k) {
      return { index: f.index == null ? k : f.index, src: f.src, name: f.name || (data.names && data.names[k]) || '',
               time: f.time || '' };
    });
    this.frameNumbers = this.frames.map(function (f) { return f.index; });
    // Frames of the whole sweep, also those left out (people count 1..frameCount; frame numbers are 0-based).
    var last = this.frameNumbers.reduce(function (m, n) { return Math.max(m, n); }, -1);
    this.frameCount = Math.max(data.frameCount || 0, this.frames.length, last + 1);
    this.scene = sceneSlots(this.frameNumbers, data.scene);
    this.wholeSweep = !this.scene;
    this.slot = 0;
    this.mode = 'frame';
    this.magnifier = false;
    this.lastTap = null;
    this.popPosition = null;
    this.ready = false;
    this.warnings = [];
    this._z = 10;
    this._current = null;
    this._listeners = [];
    this._build();
    this._bind();
    this._layout();
    var near = this.frames.length ? (this.scene ? this.scene[0] : 0) : -1;
    if (near >= 0) this._showSlot(near, true);
    this._loading = this._load();
  }

  Viewer.prototype._on = function (target, type, fn, opts) {
    target.addEventListener(type, fn, opts || false);
    this._listeners.push([target, type, fn, opts || false]);
  };

  Viewer.prototype._build = function () {
    var c = this.container, data = this.data, self = this;
    c.classList.add('pf-viewer');
    if (!c.hasAttribute('tabindex')) c.setAttribute('tabindex', '0');
    this.stage = el('div', 'pf-stage', { role: 'img', 'aria-label': 'Focus sweep: click or tap to bring a point into focus' });
    this.layers = el('div', 'pf-layers');
    this.stage.appendChild(this.layers);
    this.frameLayers = this.frames.map(function (f, k) {
      var img = el('img', 'pf-layer', { alt: self.frameLabel(f.index), draggable: 'false' });
      img.decoding = 'async';
      img.src = f.src;
      img.dataset.slot = String(k);
      self.layers.appendChild(img);
      return img;
    });
    this.aifLayer = null;
    if (data.allInFocus) {
      this.aifLayer = el('img', 'pf-layer', { alt: 'all in focus', draggable: 'false' });
      this.aifLayer.src = data.allInFocus;
      this.layers.appendChild(this.aifLayer);
    }
    this.depthLayer = null;
    if (data.depthPreview) {
      this.depthLayer = el('img', 'pf-layer', { alt: 'depth: warm is near, cool is far', draggable: 'false' });
      this.depthLayer.src = data.depthPreview;
      this.layers.appendChild(this.depthLayer);
    }
    this.popLayer = el('canvas', 'pf-layer');
    this.layers.appendChild(this.popLayer);
    this.marker = el('div', 'pf-marker');
    this.stage.appendChild(this.marker);
    this.loupe = el('canvas', 'pf-loupe');
    this.stage.appendChild(this.loupe);
    c.appendChild(this.stage);

    var bar = el('div', 'pf-bar');
    function button(label, key, title) {
      var b = el('button', 'pf-btn', { type: 'button', 'aria-pressed': 'false', title: title + ' (' + key + ')' });
      b.innerHTML = '';
      b.appendChild(document.createTextNode(label + ' '));
      var k = el('kbd'); k.textContent = key; b.appendChild(k);
      bar.appendChild(b);
      return b;
    }
    this.btnAif = button('All in focus', 'A', 'Show the all-in-focus picture');
    this.btnDepth = button('Depth', 'D', 'Show the depth map: warm is near, cool is far');
    this.btnPop = button('Colour pop', 'P', 'Keep colour at the tapped depth, the rest grey');
    this.btnLoupe = button('Magnifier', 'M', '5x magnifier with focus peaking');
    var sliderBox = el('label', 'pf-slider');
    this.sliderLabel = el('span', 'pf-slider-label');
    this.slider = el('input', '', { type: 'range', min: '0', max: String(Math.max(0, this.frames.length - 1)), step: '1', value: '0', 'aria-label': 'Focus: frame' });
    sliderBox.appendChild(el('span', 'pf-near')).textContent = 'near';
    sliderBox.appendChild(this.slider);
    sliderBox.appendChild(el('span', 'pf-far')).textContent = 'far';
    sliderBox.appendChild(this.sliderLabel);
    bar.appendChild(sliderBox);
    this.btnSweep = null;
    if (this.scene) { // the slider spans the scene's frames; this button (W) widens it to the whole sweep
      this.btnSweep = button('Whole sweep', 'W', 'Let the slider step through every frame of the sweep, not only ' +
        'the frames the scene lies in');
    }
    this._sliderSpan();
    c.appendChild(bar);
    this.bar = bar;
    this.status = el('div', 'pf-status', { 'aria-live': 'polite' });
    c.appendChild(this.status);
    if (!this.data.focusMap) this.btnPop.disabled = true;
    if (!this.data.depthPreview && !this.data.focusMap) this.btnDepth.disabled = true;
    if (!this.data.allInFocus) { this.btnAif.disabled = true; this.btnPop.disabled = true; }
  };

  Viewer.prototype._bind = function () {
    var self = this;
    this._on(this.btnAif, 'click', function () { self.toggleMode('allInFocus'); });
    this._on(this.btnDepth, 'click', function () { self.toggleMode('depth'); });
    this._on(this.btnPop, 'click', function () { self.toggleMode('pop'); });
    this._on(this.btnLoupe, 'click', function () { self.setMagnifier(!self.magnifier); });
    this._on(this.slider, 'input', function () { self.showSlot(parseInt(self.slider.value, 10)); });
    if (this.btnSweep) this._on(this.btnSweep, 'click', function () { self.setWholeSweep(!self.wholeSweep); });
    var keyTarget = this.options.keyboardTarget || this.container;
    this._on(keyTarget, 'keydown', function (e) { self._key(e); });
    this._on(window, 'resize', function () { self._layout(); });
    if (typeof ResizeObserver === 'function') { // the container can change size on its own (a web app's panels)
      var lastWidth = -1;
      this._resizeObserver = new ResizeObserver(function () {
        var cw = self.container.clientWidth;
        if (cw !== lastWidth) { lastWidth = cw; self._layout(); }
      });
      this._resizeObserver.observe(this.container);
    }
    var st = this.stage;
    this._on(st, 'pointerdown', function (e) { self._pointerDown(e); });
    this._on(st, 'pointermove', function (e) { self._pointerMove(e); });
    this._on(st, 'pointerup', function (e) { self._pointerUp(e); });
    this._on(st, 'pointercancel', function () { self._down = null; if (self._touchLoupe) self._hideLoupe(); });
    this._on(st, 'pointerleave', function (e) { if (e.pointerType === 'mouse') self._hideLoupe(); });
    this._on(st, 'contextmenu', function () { self._down = null; });
  };

  // Layout: the picture as large as fits the width and the window height.
  Viewer.prototype._layout = function () {
    var aspect = this.data.width / this.data.height;
    var width = this.container.clientWidth || 800;
    var maxH = this.options.maxHeight ? this.options.maxHeight()
      : Math.max(160, window.innerHeight - this.bar.offsetHeight - this.status.offsetHeight - 24);
    var w = Math.min(width, maxH * aspect);
    this.stage.style.width = Math.floor(w) + 'px';
    this.stage.style.height = Math.floor(w / aspect) + 'px';
  };

  Viewer.prototype._load = function () {
    var self = this, data = this.data;
    var jobs = [];
    if (data.tapMap) {
      jobs.push(decodeRaster(data.tapMap).then(function (r) {
        self.tapRaster = r;
        if (!r.exact) self.warnings.push('tap map altered while decoding');
      }));
    }
    if (data.volume && !data.tapMap) {
      jobs.push(decodeRaster(data.volume).then(function (r) {
        var n = data.volume.slices, w = r.width, h = r.height / n;
        var vol = new Float32Array(w * r.height);
        for (var i = 0; i < vol.length; i++) vol[i] = r.data[i * r.channels];
        self.volumeGrid = { data: vol, n: n, w: w, h: h, radius: data.volume.radius || 1 };
      }));
    }
    if (data.focusMap) {
      jobs.push(decodeRaster(data.focusMap).then(function (r) {
        var fm = data.focusMap, n = r.width * r.height;
        var out = new Float32Array(n), lo = fm.min, span = fm.max - fm.min;
        for (var i = 0; i < n; i++) out[i] = lo + r.data[i * r.channels] / r.vmax * span;
        self.focusMap = { data: out, width: r.width, height: r.height };
      }));
    }
    // Warm the decoder so that the first taps do not wait for JPEG decoding.
    var imgs = this.frameLayers.slice();
    if (this.aifLayer) imgs.push(this.aifLayer);
    var warm = imgs.reduce(function (p, img) {
      return p.then(function () { return img.decode ? img.decode().catch(function () {}) : null; });
    }, Promise.resolve());
    jobs.push(warm);
    return Promise.all(jobs).then(function () {
      self.ready = true;
      self._changed();
    }, function (err) {
      self.warnings.push(String(err && err.message || err));
      self.ready = true;
      self._changed();
    });
  };

  // ------------------------------------------------------------- display
  Viewer.prototype._display = function (layer, instant) {
    var prev = this._current;
    if (prev === layer) return;
    this._current = layer;
    layer.style.zIndex = String(++this._z);
    layer.style.opacity = '1';
    layer.classList.add('pf-on');
    var ms = instant ? 0 : this.fadeMs;
    // Fade the new picture in over the previous one (no forced layout: the Web Animations API).
    if (ms && layer.animate) layer.animate([{ opacity: 0 }, { opacity: 1 }], { duration: ms, easing: 'ease-out' });
    var self = this;
    if (prev) {
      clearTimeout(prev._pfTimer);
      var hide = function () {
        if (self._current !== prev) {
          prev.style.opacity = '0';
          prev.classList.remove('pf-on');
        }
      };
      if (ms) prev._pfTimer = setTimeout(hide, ms + 30); else hide();
    }
    if (this.magnifier && this._loupeAt) this._drawLoupe(this._loupeAt.x, this._loupeAt.y);
  };

  Viewer.prototype._showSlot = function (slot, instant) {
    if (!this.frames.length) return;
    this.slot = clamp(slot | 0, 0, this.frames.length - 1);
    this.mode = 'frame';
    this._display(this.frameLayers[this.slot], instant);
    this._changed();
  };

  Viewer.prototype.showSlot = function (slot) { this._showSlot(slot, false); };

  Viewer.prototype.showFrame = function (frameNumber) {
    var k = this.frameNumbers.indexOf(frameNumber);
    if (k < 0) throw new Error('frame ' + frameNumber + ' is not in this sweep');
    this._showSlot(k, false);
  };

  Viewer.prototype.setMode = function (mode) {
    if (MODES.indexOf(mode) < 0) throw new Error('unknown mode ' + mode);
    if (mode === 'frame') return this._showSlot(this.slot, false);
    if (mode === 'allInFocus' && this.aifLayer) {
      this.mode = mode; this._display(this.aifLayer); this._changed();
    } else if (mode === 'depth') {
      var layer = this.depthLayer || this._depthCanvas();
      if (!layer) return;
      this.mode = mode; this._display(layer); this._changed();
    } else if (mode === 'pop') {
      if (!this.focusMap || !this.aifLayer) return;
      if (this.popPosition == null) {
        this.popPosition = this.lastTap ? this.lastTap.position : this.frameNumbers[this.slot];
      }
      this.mode = mode;
      this._renderPop();
      this._display(this.popLayer);
      this._changed();
    }
  };

  Viewer.prototype.toggleMode = function (mode) {
    this.setMode(this.mode === mode ? 'frame' : mode);
  };

  Viewer.prototype._depthCanvas = function () {
    if (!this.focusMap) return null;
    if (this._depthC) return this._depthC;
    var fm = this.focusMap, c = el('canvas', 'pf-layer');
    c.width = fm.width; c.height = fm.height;
    var ctx = c.getContext('2d'), img = ctx.createImageData(fm.width, fm.height);
    var lo = this.frameNumbers[0], hi = this.frameNumbers[this.frameNumbers.length - 1], span = (hi - lo) || 1;
    for (var i = 0; i < fm.data.length; i++) {
      var v = 255 - Math.round(clamp((fm.data[i] - lo) / span, 0, 1) * 255);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    this.layers.appendChild(c);
    this._depthC = c;
    return c;
  };

  // Colour pop: focus map near the tapped position keeps colour (soft ramp, edge-aware), the rest grey.
  Viewer.prototype._renderPop = function () {
    var t0 = performance.now();
    var aif = this.aifLayer, fm = this.focusMap;
    var W = aif.naturalWidth, H = aif.naturalHeight;
    if (!W || !H) return;
    var pop = this.data.pop || {};
    var tol = pop.tolerance == null ? 1 : pop.tolerance, soft = Math.max(pop.softness == null ? 0.75 : pop.softness, 1e-3);
    if (!this._popBase) {
      // Colour and grey versions of the all-in-focus picture, and its grey at focus-map size (the guide).
      var colour = el('canvas'); colour.width = W; colour.height = H;
      var cctx = colour.getContext('2d');
      cctx.drawImage(aif, 0, 0);
      var px = cctx.getImageData(0, 0, W, H), d = px.data;
      var grey = el('canvas'); grey.width = W; grey.height = H;
      for (var i = 0; i < d.length; i += 4) {
        var l = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        d[i] = d[i + 1] = d[i + 2] = l;
      }
      grey.getContext('2d').putImageData(px, 0, 0);
      var small = el('canvas'); small.width = fm.width; small.height = fm.height;
      var sctx = small.getContext('2d');
      sctx.imageSmoothingQuality = 'high';
      sctx.drawImage(grey, 0, 0, fm.width, fm.height);
      var sd = sctx.getImageData(0, 0, fm.width, fm.height).data;
      var guide = new Float32Array(fm.width * fm.height);
      for (var j = 0; j < guide.length; j++) guide[j] = sd[4 * j] / 255;
      this._popBase = { colour: colour, grey: grey, guide: guide };
    }
    var base = this._popBase, n = fm.width * fm.height, pos = this.popPosition;
    var mask = new Float32Array(n);
    for (var k = 0; k < n; k++) mask[k] = clamp(1 - (Math.abs(fm.data[k] - pos) - tol) / soft, 0, 1);
    var r = Math.max(2, Math.round(0.004 * Math.max(fm.width, fm.height)));
    var t1 = performance.now();
    mask = guidedFilter(base.guide, mask, fm.width, fm.height, r, 1e-3);
    var t2 = performance.now();
    if (!base.mask) {
      base.mask = el('canvas'); base.mask.width = fm.width; base.mask.height = fm.height;
      base.tmp = el('canvas'); base.tmp.width = W; base.tmp.height = H;
    }
    var mc = base.mask, mctx = mc.getContext('2d'), mimg = mctx.createImageData(fm.width, fm.height);
    for (var m = 0; m < n; m++) mimg.data[4 * m + 3] = Math.round(mask[m] * 255);
    mctx.putImageData(mimg, 0, 0);
    // colour where the mask is, over the grey picture
    var tmp = base.tmp, tctx = tmp.getContext('2d');
    tctx.globalCompositeOperation = 'copy';
    tctx.drawImage(base.colour, 0, 0);
    tctx.globalCompositeOperation = 'destination-in';
    tctx.imageSmoothingQuality = 'high';
    tctx.drawImage(mc, 0, 0, W, H);
    var out = this.popLayer;
    if (out.width !== W) out.width = W;
    if (out.height !== H) out.height = H;
    var octx = out.getContext('2d');
    octx.globalCompositeOperation = 'copy';
    octx.drawImage(base.grey, 0, 0);
    octx.globalCompositeOperation = 'source-over';
    octx.drawImage(tmp, 0, 0);
    this.popMs = performance.now() - t0;
    this.popTimings = { mask: t1 - t0, guided: t2 - t1, compose: performance.now() - t2 };
    var coloured = 0;
    for (var q = 0; q < n; q++) coloured += mask[q];
    this.popCoverage = coloured / n;
  };

  // ------------------------------------------------------------------- taps
  Viewer.prototype.tapAnswer = function (x, y) {
    var w = this.data.width, h = this.data.height;
    x = clamp(x, 0, w - 1); y = clamp(y, 0, h - 1);
    if (this.tapRaster) return tapFromMap(this.tapRaster, this.data.tapMap, this.frames, w, h, x, y);
    if (this.volumeGrid) {
      var g = this.volumeGrid;
      return sharpestFrame(g.data, g.n, g.h, g.w, this.frameNumbers, x, y, g.w / w, g.h / h, g.radius);
    }
    return null;
  };

  // Tap at output pixel (x, y): refocus there (or choose the colour-pop subject in pop mode).
  Viewer.prototype.tap = function (x, y, eventTime) {
    var start = performance.now();
    var t0 = eventTime == null ? start : eventTime;
    var answer = this.tapAnswer(x, y);
    if (!answer) return null;
    if (this.mode === 'pop') {
      this.popPosition = answer.position;
      this.slot = answer.slot;
      this._renderPop();
      this._display(this.popLayer);
    } else {
      this.slot = answer.slot;
      this.mode = 'frame';
      this._display(this.frameLayers[answer.slot]);
    }
    var end = performance.now();
    answer.handlerMs = end - start; // the page's own work: lookup and display switch
    answer.ms = end - t0; // from the input event (includes the browser's queueing)
    this.lastTap = answer;
    this._mark(x, y);
    this._changed();
    var self = this;
    requestAnimationFrame(function () {
      if (self.lastTap === answer) { answer.frameMs = performance.now() - t0; self._changed(); }
    });
    return answer;
  };

  Viewer.prototype._mark = function (x, y) {
    var m = this.marker;
    m.style.left = (100 * x / this.data.width) + '%';
    m.style.top = (100 * y / this.data.height) + '%';
    if (m.animate) {
      m.animate([{ opacity: 0.95, transform: 'scale(0.4)' }, { opacity: 0, transform: 'scale(1.3)' }],
        { duration: 700, easing: 'ease-out' });
    }
  };

  Viewer.prototype._toImage = function (e) {
    var r = this.stage.getBoundingClientRect();
    return {
      x: (e.clientX - r.left) / r.width * this.data.width,
      y: (e.clientY - r.top) / r.height * this.data.height,
      cssX: e.clientX - r.left, cssY: e.clientY - r.top
    };
  };

  Viewer.prototype._pointerDown = function (e) {
    if (e.button != null && e.button > 0) return;
    this._down = { id: e.pointerId, x: e.clientX, y: e.clientY, t: performance.now(), type: e.pointerType };
    if (this.magnifier && e.pointerType !== 'mouse') {
      this._touchLoupe = true;
      var p = this._toImage(e);
      this._drawLoupe(p.cssX, p.cssY);
    }
    if (this.stage.setPointerCapture) { try { this.stage.setPointerCapture(e.pointerId); } catch (err) { /* ignore */ } }
  };

  Viewer.prototype._pointerMove = function (e) {
    if (!this.magnifier) return;
    if (e.pointerType === 'mouse' || (this._down && this._down.id === e.pointerId)) {
      var p = this._toImage(e);
      this._drawLoupe(p.cssX, p.cssY);
    }
  };

  Viewer.prototype._pointerUp = function (e) {
    var d = this._down;
    this._down = null;
    if (this._touchLoupe) { this._touchLoupe = false; this._hideLoupe(); }
    if (!d || d.id !== e.pointerId) return;
    var moved = Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y);
    var slop = d.type === 'mouse' ? 6 : 24;
    if (moved > slop && !(this.magnifier && d.type !== 'mouse')) return; // a drag, not a tap
    var p = this._toImage(e);
    // event.timeStamp shares performance.now()'s clock: latency counts from the input event.
    var t0 = (typeof e.timeStamp === 'number' && e.timeStamp > 0 && e.timeStamp <= performance.now()) ? e.timeStamp : null;
    this.tap(p.x, p.y, t0);
  };

  // --------------------------------------------------------------- loupe
  Viewer.prototype.setMagnifier = function (on) {
    this.magnifier = !!on;
    this.container.classList.toggle('pf-magnifying', this.magnifier);
    if (!this.magnifier) this._hideLoupe();
    else if (this._loupeAt) this._drawLoupe(this._loupeAt.x, this._loupeAt.y);
    else {
      var r = this.stage.getBoundingClientRect();
      this._drawLoupe(r.width / 2, r.height / 2);
    }
    this._changed();
  };

  Viewer.prototype._hideLoupe = function () {
    this.loupe.style.display = 'none';
  };

  // Focus peaking marks edges at least half as strong as the strongest edges of the scene (the all-in-focus
  // picture's 99th percentile), so it adapts to the scene and the picture size.
  Viewer.prototype._peakThreshold = function () {
    if (this.peakingThreshold) return this.peakingThreshold;
    var src = this.aifLayer || this.frameLayers[0];
    var w = src && src.naturalWidth, h = src && src.naturalHeight;
    if (!w || !h) return 320;
    var c = el('canvas'); c.width = w; c.height = h;
    var ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(src, 0, 0);
    var d = ctx.getImageData(0, 0, w, h).data, lum = new Float32Array(w * h), i;
    for (i = 0; i < w * h; i++) lum[i] = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
    var hist = new Uint32Array(2041), count = 0;
    for (var y = 1; y < h - 1; y += 2) {
      for (var x = 1; x < w - 1; x++) {
        var p = y * w + x;
        var gx = (lum[p - w + 1] + 2 * lum[p + 1] + lum[p + w + 1]) - (lum[p - w - 1] + 2 * lum[p - 1] + lum[p + w - 1]);
        var gy = (lum[p + w - 1] + 2 * lum[p + w] + lum[p + w + 1]) - (lum[p - w - 1] + 2 * lum[p - w] + lum[p - w + 1]);
        hist[Math.min(2040, Math.round(Math.abs(gx) + Math.abs(gy)))]++;
        count++;
      }
    }
    var target = 0.99 * count, acc = 0, p99 = 2040;
    for (i = 0; i < hist.length; i++) { acc += hist[i]; if (acc >= target) { p99 = i; break; } }
    this.peakingThreshold = Math.max(40, 0.5 * p99);
    return this.peakingThreshold;
  };

  // Draw the magnifier centred on stage point (cssX, cssY): 5x of the shown picture with focus peaking.
  Viewer.prototype._drawLoupe = function (cssX, cssY) {
    this._loupeAt = { x: cssX, y: cssY };
    var src = this._current;
    if (!src) return;
    var sw = src.naturalWidth || src.width, sh = src.naturalHeight || src.height;
    if (!sw || !sh) return;
    var rect = this.stage.getBoundingClientRect();
    var size = this.loupeSize, dpr = window.devicePixelRatio || 1;
    var scale = sw / rect.width; // source pixels per CSS pixel
    var regionCss = size / this.magnification;
    var rw = Math.max(4, Math.round(regionCss * scale)), rh = rw;
    var sx = Math.round(cssX * scale - rw / 2), sy = Math.round(cssY * (sh / rect.height) - rh / 2);
    var work = this._loupeWork || (this._loupeWork = el('canvas'));
    work.width = rw; work.height = rh;
    var wctx = work.getContext('2d', { willReadFrequently: true });
    wctx.fillStyle = '#000';
    wctx.fillRect(0, 0, rw, rh);
    wctx.drawImage(src, sx, sy, rw, rh, 0, 0, rw, rh);
    var img = wctx.getImageData(0, 0, rw, rh), d = img.data;
    var lum = new Float32Array(rw * rh), i;
    for (i = 0; i < rw * rh; i++) lum[i] = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
    var thr = this._peakThreshold(), peaks = 0;
    for (var y = 1; y < rh - 1; y++) {
      for (var x = 1; x < rw - 1; x++) {
        var p = y * rw + x;
        var gx = (lum[p - rw + 1] + 2 * lum[p + 1] + lum[p + rw + 1]) - (lum[p - rw - 1] + 2 * lum[p - 1] + lum[p + rw - 1]);
        var gy = (lum[p + rw - 1] + 2 * lum[p + rw] + lum[p + rw + 1]) - (lum[p - rw - 1] + 2 * lum[p - rw] + lum[p - rw + 1]);
        if (Math.abs(gx) + Math.abs(gy) > thr) {
          d[4 * p] = 0.3 * d[4 * p] + 178; d[4 * p + 1] = 0.3 * d[4 * p + 1] + 20; d[4 * p + 2] = 0.3 * d[4 * p + 2] + 150;
          peaks++;
        }
      }
    }
    wctx.putImageData(img, 0, 0);
    var L = this.loupe;
    L.style.display = 'block';
    L.style.width = size + 'px';
    L.style.height = size + 'px';
    var lift = this._touchLoupe ? size * 0.75 : 0; // keep it clear of a finger
    L.style.left = (cssX - size / 2) + 'px';
    L.style.top = (cssY - size / 2 - lift) + 'px';
    var px = Math.round(size * dpr);
    if (L.width !== px) { L.width = px; L.height = px; }
    var lctx = L.getContext('2d');
    lctx.imageSmoothingEnabled = true;
    lctx.drawImage(work, 0, 0, rw, rh, 0, 0, px, px);
    this.loupePeaks = peaks / Math.max(1, (rw - 2) * (rh - 2));
  };

  // ------------------------------------------------------------ keyboard
  Viewer.prototype._key = function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : '';
    if (tag === 'textarea' || (tag === 'input' && t !== this.slider)) return;
    var k = e.key;
    if (k === 'ArrowLeft' || k === 'ArrowDown' || k === 'ArrowRight' || k === 'ArrowUp') {
      if (t === this.slider) return; // the slider moves itself and reports an input event
      var step = (k === 'ArrowLeft' || k === 'ArrowDown') ? -1 : 1;
      var span = this._span();
      this.showSlot(clamp(this.slot + step, Math.min(span[0], this.slot), Math.max(span[1], this.slot)));
    } else if (k === 'Home') { this.showSlot(this._span()[0]); }
    else if (k === 'End') { this.showSlot(this._span()[1]); }
    else if ((k === 'w' || k === 'W') && this.btnSweep) { this.setWholeSweep(!this.wholeSweep); }
    else if (k === 'a' || k === 'A') { this.toggleMode('allInFocus'); }
    else if (k === 'd' || k === 'D') { this.toggleMode('depth'); }
    else if (k === 'p' || k === 'P') { this.toggleMode('pop'); }
    else if (k === 'm' || k === 'M') { this.setMagnifier(!this.magnifier); }
    else if (k === 'Escape') { this.setMagnifier(false); this.setMode('frame'); }
    else return;
    e.preventDefault();
  };

  // --------------------------------------------------------------- state
  // What people read for frame number n (0-based, as in the data): 'Frame n+1 of N (file name)'.
  Viewer.prototype.frameLabel = function (frameNumber) {
    var k = this.frameNumbers.indexOf(frameNumber);
    var name = k >= 0 ? this.frames[k].name || this.frames[k].time : '';  // (a video's frame: its time)
    return 'Frame ' + (frameNumber + 1) + ' of ' + this.frameCount + (name ? ' (' + name + ')' : '');
  };

  Viewer.prototype.getState = function () {
    var f = this.frames[this.slot];
    return Object.freeze({
      frame: f ? f.index : null,
      slot: this.slot,
      name: f ? f.name : null,
      frames: this.frames.length,
      frameCount: this.frameCount,
      label: f ? this.frameLabel(f.index) : null,
      mode: this.mode,
      magnifier: this.magnifier,
      popPosition: this.popPosition,
      sliderFirst: this.frames.length ? this.frames[this._span()[0]].index : null,
      sliderLast: this.frames.length ? this.frames[this._span()[1]].index : null,
      wholeSweep: this.wholeSweep,
      ready: this.ready,
      lastTap: this.lastTap ? Object.freeze(Object.assign({}, this.lastTap)) : null,
      warnings: this.warnings.slice()
    });
  };

  Viewer.prototype._changed = function () {
    var s = this.getState(), c = this.container;
    if (s.frame != null) c.setAttribute('data-frame', String(s.frame));
    c.setAttribute('data-mode', s.mode);
    c.setAttribute('data-ready', s.ready ? 'true' : 'false');
    var span = this._span();
    if (!this.wholeSweep && (this.slot < span[0] || this.slot > span[1])) { // a tap found a frame beyond the
      this.wholeSweep = true; // scene's span: the slider widens to show it honestly
      this._sliderSpan();
      s = this.getState();
    }
    if (String(this.slot) !== this.slider.value) this.slider.value = String(this.slot);
    this.sliderLabel.textContent = s.label || '';  // 'Frame 3 of 7 (pcb_003.jpg)', as the command line names it
    if (s.label) this.slider.setAttribute('aria-valuetext', s.label);
    this.btnAif.setAttribute('aria-pressed', String(this.mode === 'allInFocus'));
    this.btnDepth.setAttribute('aria-pressed', String(this.mode === 'depth'));
    this.btnPop.setAttribute('aria-pressed', String(this.mode === 'pop'));
    this.btnLoupe.setAttribute('aria-pressed', String(this.magnifier));
    if (this.btnSweep) this.btnSweep.setAttribute('aria-pressed', String(this.wholeSweep));
    this.status.textContent = this._describe(s);
    if (this.options.onChange) this.options.onChange(s);
  };

  Viewer.prototype._describe = function (s) {
    if (!s.ready) return 'Loading\u2026';
    var text;
    if (s.mode === 'allInFocus') text = 'All in focus.';
    else if (s.mode === 'depth') text = 'Depth: warm is near, cool is far.';
    else if (s.mode === 'pop') text = 'Colour pop: tap the subject that keeps its colour.';
    else text = (s.label || 'No frames') + '.';
    var t = s.lastTap;
    if (t && (s.mode === 'frame' || s.mode === 'pop') && t.slot === s.slot) {
      if (t.fallback && t.filledFrom) {  // (as postfocus.products.refocus.Tap.describe says it: no window measured it)
        text += ' Sharpest at the tapped point; too little texture there, so the ' + t.filledFrom +
          ', filled in from the textured areas around, decided';
      } else {
        text += ' Sharpest at the tapped point (confidence ' + t.confidence.toFixed(2) + ')';
        if (t.fallback) text += '; too little texture there, the nearest detailed area decided';
      }
      text += '.';
    } else if (s.mode === 'frame') {
      text += ' Click or tap to bring a point into focus.';
    }
    if (s.warnings.length) text += ' Warning: ' + s.warnings.join('; ');
    return text;
  };

  // The slots the slider spans: the scene's (data.scene) unless the whole sweep is asked for.
  Viewer.prototype._span = function () {
    return this.wholeSweep || !this.scene ? [0, Math.max(0, this.frames.length - 1)] : this.scene;
  };

  Viewer.prototype._sliderSpan = function () {
    var span = this._span();
    this.slider.min = String(span[0]);
    this.slider.max = String(span[1]);
    this.slider.value = String(this.slot);
  };

  // Whole sweep on: the slider steps through every frame; off: through the scene's frames (the frame shown moves
  // into them when it lay outside).
  Viewer.prototype.setWholeSweep = function (on) {
    if (!this.scene) return;
    this.wholeSweep = !!on;
    this._sliderSpan();
    var span = this._span();
    if (this.slot < span[0] || this.slot > span[1]) this._showSlot(clamp(this.slot, span[0], span[1]), false);
    else this._changed();
  };

  // Colour pop's depth tolerance in frames either side of the subject (data.pop.tolerance); redrawn when shown.
  Viewer.prototype.setPopTolerance = function (frames) {
    var t = Number(frames);
    if (!isFinite(t) || t < 0) throw new Error('pop tolerance must be a number of frames >= 0');
    this.data.pop = Object.assign({}, this.data.pop || {}, { tolerance: t });
    if (this.mode === 'pop') { this._renderPop(); this._changed(); }
  };

  Viewer.prototype.whenReady = function () { return this._loading.then(function () { return this; }.bind(this)); };

  Viewer.prototype.destroy = function () {
    this._listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
    this._listeners = [];
    if (this._resizeObserver) this._resizeObserver.disconnect();
    while (this.container.firstChild) this.container.removeChild(this.container.firstChild);
    this.container.classList.remove('pf-viewer', 'pf-magnifying');
    if (typeof window !== 'undefined' && window.__postfocusViewer === this) {
      window.__postfocusViewer = null;
    }
  };

  function mount(container, data, options) {
    if (typeof container === 'string') container = document.querySelector(container);
    if (!container) throw new Error('PostfocusViewer.mount: no container');
    if (!data || !data.frames || !data.width || !data.height) throw new Error('PostfocusViewer.mount: data needs width, height and frames');
    var viewer = new Viewer(container, data, options);
    var expose = !options || options.exposeState !== false;
    if (expose && typeof window !== 'undefined') {
      window.__postfocusViewer = viewer;
      var desc = Object.getOwnPropertyDescriptor(window, 'postfocusState');
      if (!desc || desc.configurable) {
        Object.defineProperty(window, 'postfocusState', {
          configurable: true,
          enumerable: false,
          get: function () { return window.__postfocusViewer ? window.__postfocusViewer.getState() : null; },
          set: function () { /* read-only */ }
        });
      }
    }
    return viewer;
  }

  return {
    version: 1,
    mount: mount,
    // For tests and the web app: the tap logic on its own.
    decodeRaster: decodeRaster,
    sharpestFrame: sharpestFrame,
    roundHalfEven: roundHalfEven
  };
});
