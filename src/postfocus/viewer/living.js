/*
 * postfocus living picture: parallax (tilt) and a focus-pull hint on top of the viewer.
 *
 * Plain ES2019, no dependency, no network access. The exported page inlines it after viewer.js; the web
 * app loads it from /viewer/living.js. It defines one global:
 *
 *   PostfocusLiving.attach(viewer, living, options) -> living picture
 *
 * living (postfocus.viewer.living.living_data):
 *   depth            Raster (8-bit grey) at the picture's size: 0 = nearest, 255 = farthest of the scene
 *   background       src of the background layer (what lies behind near edges), smaller
 *   backgroundDepth  Raster of its depth levels, same size as the background
 *   zero             depth level that stays in place (255: the background)
 *   amplitude        shift of the nearest pixels at a full tilt, as a share of the picture's width
 *   pull             {order: frame slots near to far, ms, onLoad}
 *
 * Parallax: every pixel of the shown picture moves by amplitude * width * tilt * (zero - level) / 255,
 * painted far to near (forward warp with z-order, so the near covers the far), over the background
 * layer moved by its own depth, which fills what the near pixels uncover. The tilt follows the pointer
 * over the picture, or the phone's orientation (DeviceOrientation). Off until the Tilt button or T.
 *
 * Focus pull: when the page opens, the focus glides from the nearest frame to the farthest and back
 * (neighbouring frames cross-faded), once; not with prefers-reduced-motion, not with options.pullOnLoad
 * false or pull.onLoad false; a tap, a key or any change of the picture shown stops it.
 *
 * The object returned: setParallax(on), tiltTo(x, y) (tilt in -1..1, drawn at once), playPull(),
 * stopPull(), state() -> {parallax, tilt: {x, y}, renderMs, pulling, pullPosition, pullPlayed, ready},
 * canvas (the parallax canvas), destroy(). window.postfocusLivingState mirrors state() on the page.
 */
(function (root, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  if (root) root.PostfocusLiving = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var TILT_DEGREES = 25; // a phone turned this far from where it started is a full tilt

  function clamp(v, lo, hi) { return v < lo ? lo : (v > hi ? hi : v); }
  function ease(t) { t = clamp(t, 0, 1); return t * t * (3 - 2 * t); }

  function loadImage(src) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error('cannot decode the background layer')); };
      img.src = src;
    });
  }

  function reducedMotion() {
    return typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  // Pixels of an image or canvas drawn at w x h, as 32-bit RGBA words.
  function pixelsOf(source, w, h) {
    var c = document.createElement('canvas');
    c.width = w; c.height = h;
    var ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, 0, 0, w, h);
    return new Uint32Array(ctx.getImageData(0, 0, w, h).data.buffer);
  }

  // Nearest-neighbour resample of a one-channel raster to w x h.
  function resample(r, w, h) {
    var out = new Uint8Array(w * h), ch = r.channels || 1;
    for (var y = 0; y < h; y++) {
      var sy = Math.min(r.height - 1, Math.floor((y + 0.5) * r.height / h)) * r.width;
      for (var x = 0; x < w; x++) {
        out[y * w + x] = r.data[(sy + Math.min(r.width - 1, Math.floor((x + 0.5) * r.width / w))) * ch];
      }
    }
    return out;
  }

  function Living(viewer, living, options) {
    this.viewer = viewer;
    this.living = living;
    this.options = options || {};
    this.parallax = false;
    this.tilt = { x: 0, y: 0 };
    this.target = { x: 0, y: 0 };
    this.renderMs = null;
    this.pulling = false;
    this.pullPosition = null;
    this.pullPlayed = false;
    this.ready = false;
    this._listeners = [];
    this._work = null;
    this._build();
    var self = this;
    this._loading = Promise.all([
      PostfocusViewer.decodeRaster(living.depth),
      PostfocusViewer.decodeRaster(living.backgroundDepth),
      loadImage(living.background)
    ]).then(function (parts) {
      self._depth = parts[0]; self._bgDepth = parts[1]; self._bg = parts[2];
      self.ready = true;
      self._changed();
    }, function (err) {
      viewer.warnings.push('living picture: ' + String(err && err.message || err));
      self.button.disabled = true;
    });
    viewer.whenReady().then(function () {
      var pull = living.pull || {};
      if (pull.onLoad && self.options.pullOnLoad !== false && !reducedMotion()) self.playPull();
    });
  }

  Living.prototype._on = function (target, type, fn, opts) {
    target.addEventListener(type, fn, opts || false);
    this._listeners.push([target, type, fn, opts || false]);
  };

  Living.prototype._build = function () {
    var v = this.viewer, self = this;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'pf-layer pf-living';
    this.canvas.style.zIndex = '99980'; // under the residual overlay (99990), the app's previews (99999) and its retouch mode
    this.canvas.setAttribute('aria-hidden', 'true');
    v.stage.appendChild(this.canvas);
    this.pullCanvas = document.createElement('canvas');
    this.pullCanvas.className = 'pf-layer pf-pull';
    this.pullCanvas.style.zIndex = '99985';
    this.pullCanvas.setAttribute('aria-hidden', 'true');
    v.stage.appendChild(this.pullCanvas);
    var b = document.createElement('button');
    b.className = 'pf-btn pf-tilt';
    b.type = 'button';
    b.setAttribute('aria-pressed', 'false');
    b.title = 'Tilt the picture with the pointer or by turning the phone: near things move against far ones (T)';
    b.appendChild(document.createTextNode('Tilt '));
    var k = document.createElement('kbd'); k.textContent = 'T'; b.appendChild(k);
    v.bar.insertBefore(b, v.btnLoupe ? v.btnLoupe.nextSibling : v.bar.firstChild);
    this.button = b;
    this._on(b, 'click', function () { self.stopPull(); self._askOrientation(); self.setParallax(!self.parallax); });
    this._on(v.stage, 'pointermove', function (e) { self._pointer(e); });
    this._on(v.stage, 'pointerleave', function () { self.target = { x: 0, y: 0 }; self._kick(); });
    this._on(v.stage, 'pointerdown', function () { self.stopPull(); });
    this._on(v.options.keyboardTarget || v.container, 'keydown', function (e) { self._key(e); });
    this._on(window, 'deviceorientation', function (e) { self._orientation(e); });
    this._on(window, 'resize', function () { self._work = null; self._kick(true); });
    if (typeof MutationObserver === 'function') { // a tap, the slider or a mode changed the picture shown
      this._observer = new MutationObserver(function () {
        self.stopPull(); // the viewer shows something else: the hint is over
        if (self._work) self._work.src = null;
        self._kick(true);
      });
      this._observer.observe(v.container, { attributes: true, attributeFilter: ['data-frame', 'data-mode'] });
    }
    var destroy = v.destroy;
    v.destroy = function () { self.destroy(); return destroy.apply(v, arguments); };
  };

  Living.prototype._key = function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = e.target && e.target.tagName ? e.target.tagName.toLowerCase() : '';
    this.stopPull();
    if (tag === 'textarea' || tag === 'input' && e.target !== this.viewer.slider) return;
    if (e.key === 't' || e.key === 'T') { this.setParallax(!this.parallax); e.preventDefault(); }
  };

  // ---------------------------------------------------------------- parallax
  Living.prototype.setParallax = function (on) {
    this.parallax = !!on;
    this.button.setAttribute('aria-pressed', String(this.parallax));
    this.viewer.container.classList.toggle('pf-tilting', this.parallax);
    if (!this.parallax) {
      this.canvas.style.opacity = '0';
      this.target = { x: 0, y: 0 }; this.tilt = { x: 0, y: 0 };
    } else {
      this._work = null;
      this._rest = null; // the phone's orientation now is the untilted one
      this._kick(true);
    }
    this._changed();
  };

  Living.prototype._pointer = function (e) {
    if (!this.parallax || e.pointerType === 'touch') return; // on touch screens the phone's turn tilts
    var r = this.viewer.stage.getBoundingClientRect();
    this.target = {
      x: clamp(2 * (e.clientX - r.left) / r.width - 1, -1, 1),
      y: clamp(2 * (e.clientY - r.top) / r.height - 1, -1, 1)
    };
    this._kick();
  };

  // iOS asks for permission to read the orientation, and only from a tap.
  Living.prototype._askOrientation = function () {
    var D = window.DeviceOrientationEvent;
    if (!this.parallax && D && typeof D.requestPermission === 'function') D.requestPermission().catch(function () {});
  };

  Living.prototype._orientation = function (e) {
    if (!this.parallax || e.gamma == null || e.beta == null) return;
    if (!this._rest) this._rest = { gamma: e.gamma, beta: e.beta };
    var g = (e.gamma - this._rest.gamma) / TILT_DEGREES, b = (e.beta - this._rest.beta) / TILT_DEGREES;
    // gamma turns about the phone's long side and beta about its short side: swap them in landscape.
    var angle = (window.screen && window.screen.orientation && window.screen.orientation.angle) || window.orientation || 0;
    var x = g, y = b;
    if (angle === 90) { x = b; y = -g; } else if (angle === -90 || angle === 270) { x = -b; y = g; }
    else if (angle === 180) { x = -g; y = -b; }
    this.target = { x: clamp(x, -1, 1), y: clamp(y, -1, 1) };
    this._kick();
  };

  // Ease the tilt towards its target, one step per animation frame, and draw.
  Living.prototype._kick = function (force) {
    if (force) this._force = true;
    if (this._raf || !this.parallax) return;
    var self = this;
    this._raf = requestAnimationFrame(function () {
      self._raf = null;
      var dx = self.target.x - self.tilt.x, dy = self.target.y - self.tilt.y;
      var moving = Math.abs(dx) + Math.abs(dy) > 0.002;
      if (!moving && !self._force) return;
      self._force = false;
      self.tilt = moving ? { x: self.tilt.x + 0.25 * dx, y: self.tilt.y + 0.25 * dy } : self.target;
      self._draw();
      if (moving) self._kick();
    });
  };

  Living.prototype.tiltTo = function (x, y) {
    if (!this.parallax) this.setParallax(true);
    this.target = { x: clamp(x, -1, 1), y: clamp(y, -1, 1) };
    this.tilt = { x: this.target.x, y: this.target.y };
    this._draw();
    return this.state();
  };

  // Buffers at the size the canvas is drawn: the stage's device pixels, at most the picture's own.
  Living.prototype._prepare = function () {
    var v = this.viewer, cur = v._current;
    if (!cur) return null;
    var r = v.stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    var nat = cur.naturalWidth || cur.width || r.width;
    var w = Math.max(2, Math.round(Math.min(r.width * dpr, nat)));
    var h = Math.max(2, Math.round(w * v.data.height / v.data.width));
    var work = this._work;
    if (!work || work.w !== w || work.h !== h) {
      var depth = resample(this._depth, w, h), bgDepth = resample(this._bgDepth, w, h);
      var start = new Uint32Array(256), i, key; // a counting sort of the pixels by depth, far (255) first
      for (i = 0; i < depth.length; i++) start[255 - depth[i]]++;
      for (key = 0, i = 0; key < 256; key++) { var c = start[key]; start[key] = i; i += c; }
      var order = new Uint32Array(depth.length);
      for (i = 0; i < depth.length; i++) order[start[255 - depth[i]]++] = i;
      work = this._work = {
        w: w, h: h, depth: depth, bgDepth: bgDepth, order: order, src: null, srcLayer: null,
        bg: pixelsOf(this._bg, w, h), image: new ImageData(w, h)
      };
      this.canvas.width = w; this.canvas.height = h;
    }
    if (!work.src || work.srcLayer !== cur) { work.src = pixelsOf(cur, w, h); work.srcLayer = cur; }
    return work;
  };

  Living.prototype._draw = function () {
    if (!this.ready || !this.parallax) return;
    var t0 = performance.now();
    var work = this._prepare();
    if (!work) return;
    var w = work.w, h = work.h, zero = this.living.zero == null ? 255 : this.living.zero;
    var most = (this.living.amplitude || 0.02) * w;
    var sx = new Int32Array(256), sy = new Int32Array(256), d;
    for (d = 0; d < 256; d++) { // looking from the right, the near moves left against the far
      var k = most * (zero - d) / 255;
      sx[d] = Math.round(-this.tilt.x * k);
      sy[d] = Math.round(-this.tilt.y * k);
    }
    var out = new Uint32Array(work.image.data.buffer), bg = work.bg, bgDepth = work.bgDepth;
    var x, y, p, tx, ty;
    for (y = 0; y < h; y++) { // the background layer, moved by its own depth (sampled where it lands)
      for (x = 0; x < w; x++) {
        p = y * w + x;
        d = bgDepth[p];
        tx = clamp(x - sx[d], 0, w - 1); ty = clamp(y - sy[d], 0, h - 1);
        out[p] = bg[ty * w + tx];
      }
    }
    var order = work.order, depth = work.depth, src = work.src, n = order.length;
    for (var i = 0; i < n; i++) { // the picture, far to near: the near covers the far
      p = order[i];
      d = depth[p];
      y = (p / w) | 0; x = p - y * w;
      tx = x + sx[d]; ty = y + sy[d];
      if (tx >= 0 && tx < w && ty >= 0 && ty < h) out[ty * w + tx] = src[p];
    }
    this.canvas.getContext('2d').putImageData(work.image, 0, 0);
    this.canvas.style.opacity = '1';
    this.renderMs = performance.now() - t0;
    this._changed();
  };

  // -------------------------------------------------------------- focus pull
  Living.prototype.playPull = function () {
    var v = this.viewer, order = (this.living.pull && this.living.pull.order) || [];
    var layers = order.map(function (k) { return v.frameLayers[k]; }).filter(Boolean);
    if (layers.length < 2 || this.pulling) return false;
    var c = this.pullCanvas, r = v.stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(r.width * dpr)); c.height = Math.max(1, Math.round(r.height * dpr));
    var ctx = c.getContext('2d'), ms = (this.living.pull && this.living.pull.ms) || 2400, self = this;
    var last = layers.length - 1, start = performance.now();
    this.pulling = true;
    this.pullFrames = 0;
    c.style.opacity = '1';
    function step(now) {
      if (!self.pulling) return;
      var phase = clamp((now - start) / ms, 0, 1);
      var pos = last * (phase < 0.5 ? ease(2 * phase) : ease(2 - 2 * phase)); // near -> far -> near
      var a = Math.floor(pos), t = pos - a;
      ctx.globalAlpha = 1;
      ctx.drawImage(layers[a], 0, 0, c.width, c.height);
      if (t > 0.002 && a < last) { ctx.globalAlpha = t; ctx.drawImage(layers[a + 1], 0, 0, c.width, c.height); }
      self.pullPosition = pos;
      self.pullFrames++;
      self._changed();
      if (phase < 1) self._pullRaf = requestAnimationFrame(step);
      else { self.pullPlayed = true; self.stopPull(); }
    }
    this._pullRaf = requestAnimationFrame(step);
    this._changed();
    return true;
  };

  Living.prototype.stopPull = function () {
    if (!this.pulling) return;
    this.pulling = false;
    if (this._pullRaf) cancelAnimationFrame(this._pullRaf);
    this.pullCanvas.style.opacity = '0';
    this._changed();
  };

  // ------------------------------------------------------------------ state
  Living.prototype.state = function () {
    return Object.freeze({
      ready: this.ready, parallax: this.parallax, tilt: { x: this.tilt.x, y: this.tilt.y }, renderMs: this.renderMs,
      pulling: this.pulling, pullPosition: this.pullPosition, pullPlayed: this.pullPlayed,
      pullFrames: this.pullFrames || 0
    });
  };

  Living.prototype._changed = function () {
    this.viewer.container.setAttribute('data-tilt', this.parallax ? 'on' : 'off');
    if (this.options.onChange) this.options.onChange(this.state());
  };

  Living.prototype.whenReady = function () { return this._loading.then(function () { return this; }.bind(this)); };

  Living.prototype.destroy = function () {
    this.stopPull();
    if (this._raf) cancelAnimationFrame(this._raf);
    this._listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
    this._listeners = [];
    if (this._observer) this._observer.disconnect();
    [this.canvas, this.pullCanvas, this.button].forEach(function (e) { if (e.parentNode) e.parentNode.removeChild(e); });
    if (typeof window !== 'undefined' && window.__postfocusLiving === this) window.__postfocusLiving = null;
  };

  function attach(viewer, living, options) {
    if (!viewer || !viewer.stage) throw new Error('PostfocusLiving.attach: no viewer');
    if (!living || !living.depth) throw new Error('PostfocusLiving.attach: no depth');
    var l = new Living(viewer, living, options);
    if (typeof window !== 'undefined' && (!options || options.exposeState !== false)) {
      window.__postfocusLiving = l;
      var desc = Object.getOwnPropertyDescriptor(window, 'postfocusLivingState');
      if (!desc || desc.configurable) {
        Object.defineProperty(window, 'postfocusLivingState', {
          configurable: true, enumerable: false,
          get: function () { return window.__postfocusLiving ? window.__postfocusLiving.state() : null; },
          set: function () { /* read-only */ }
        });
      }
    }
    return l;
  }

  return { version: 1, attach: attach };
});
