/*
 * postfocus web app: the Retouch tool. Paint parts of the all-in-focus picture from a source frame.
 *
 * Plain ES2019. app.js announces the workspace and the tool with DOM events ('postfocus:workspace',
 * 'postfocus:tool', 'postfocus:close'); this file adds an editor over the viewer's picture while the Retouch
 * tab is open. Strokes are kept in the picture's full-resolution pixels (pixel centres at i + 0.5), so they
 * follow the picture when it is zoomed (wheel, + and -) or panned (drag with Space held, the middle button,
 * or the Pan button). The list of strokes is the server's (GET/PUT /api/jobs/{id}/edits, postfocus.web.retouch):
 * it is stored with the processed stack, survives a restart and is replayed at full size for the downloads and
 * the page. The preview here is drawn from the viewer's pictures with the same brush as the library's
 * (postfocus.products.retouch.brush_falloff): 1 within hardness x radius, a smoothstep to 0 at the radius.
 */
(function () {
  'use strict';

  var MAX_ZOOM = 16;
  var S = null; // the open job's retouching state

  function $(id) { return document.getElementById(id); }
  function clamp(v, lo, hi) { return v < lo ? lo : (v > hi ? hi : v); }
  function jobUrl(path) { return '/api/jobs/' + S.job.id + '/' + path; }

  function api(method, url, body) {
    var opts = { method: method, headers: { Accept: 'application/json', 'X-Postfocus': '1' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (d) {
        if (!r.ok) throw new Error(d.error || ('The server answered ' + r.status + '.'));
        return d;
      });
    });
  }

  function say(text) { $('rt-status').textContent = text; }

  // Pixels (RGBA) of a picture at the editor's canvas size.
  function pixelsOf(src) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        var c = document.createElement('canvas');
        c.width = S.cw; c.height = S.ch;
        var ctx = c.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(img, 0, 0, S.cw, S.ch);
        resolve(ctx.getImageData(0, 0, S.cw, S.ch).data);
      };
      img.onerror = function () { reject(new Error('cannot load ' + src)); };
      img.src = src;
    });
  }

  function sourceSrc(source) {
    if (source === 'result') return S.data.allInFocus;
    if (typeof source === 'number') {
      var f = S.data.frames.filter(function (fr) { return fr.index === source; })[0];
      return f ? f.src : null;
    }
    return jobUrl('retouch/' + source + '.jpg');
  }

  function sourcePixels(source) {
    if (!S.pictures[source]) {
      var src = sourceSrc(source);
      S.pictures[source] = src ? pixelsOf(src) : Promise.reject(new Error('no picture for ' + source));
    }
    return S.pictures[source];
  }

  // -------------------------------------------------------------- the brush (as brush_falloff in Python)
  function falloff(d, radius, hardness) {
    var ramp = Math.max(radius * (1 - hardness), 1);
    var t = clamp((radius - d) / ramp, 0, 1);
    return t * t * (3 - 2 * t);
  }

  // Paint segment p-q of a stroke (image pixels) into mask (canvas pixels, max of the strengths): its dirty box.
  function strokeSegment(mask, p, q, radius, hardness) {
    var sx = S.cw / S.data.width, sy = S.ch / S.data.height;
    var x0 = clamp(Math.floor((Math.min(p[0], q[0]) - radius) * sx) - 1, 0, S.cw);
    var x1 = clamp(Math.ceil((Math.max(p[0], q[0]) + radius) * sx) + 1, 0, S.cw);
    var y0 = clamp(Math.floor((Math.min(p[1], q[1]) - radius) * sy) - 1, 0, S.ch);
    var y1 = clamp(Math.ceil((Math.max(p[1], q[1]) + radius) * sy) + 1, 0, S.ch);
    var dx = q[0] - p[0], dy = q[1] - p[1], len2 = dx * dx + dy * dy;
    for (var j = y0; j < y1; j++) {
      var Y = (j + 0.5) / sy;
      for (var i = x0; i < x1; i++) {
        var X = (i + 0.5) / sx;
        var t = len2 === 0 ? 0 : clamp(((X - p[0]) * dx + (Y - p[1]) * dy) / len2, 0, 1);
        var ex = X - (p[0] + t * dx), ey = Y - (p[1] + t * dy);
        var a = falloff(Math.sqrt(ex * ex + ey * ey), radius, hardness);
        var k = j * S.cw + i;
        if (a > mask[k]) mask[k] = a;
      }
    }
    return [x0, y0, x1, y1];
  }

  function strokeMask(edit) {
    var mask = new Float32Array(S.cw * S.ch), box = null, pts = edit.points;
    var segs = pts.length > 1 ? pts.length - 1 : 1;
    for (var s = 0; s < segs; s++) {
      var b = strokeSegment(mask, pts[s], pts[Math.min(s + 1, pts.length - 1)], edit.radius, edit.hardness);
      box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b;
    }
    return { mask: mask, box: box };
  }

  // out = under + (source - under) * mask * opacity over a box; exactly the source where that is 1.
  function blend(out, under, src, mask, box, opacity) {
    for (var j = box[1]; j < box[3]; j++) {
      for (var i = box[0]; i < box[2]; i++) {
        var k = j * S.cw + i, a = mask[k] * opacity;
        if (a <= 0) continue;
        var o = 4 * k;
        for (var c = 0; c < 3; c++) {
          out[o + c] = a >= 1 ? src[o + c] : Math.round(under[o + c] + (src[o + c] - under[o + c]) * a);
        }
      }
    }
  }

  function show() {
    var shown = S.before ? S.base : S.out;
    S.image.data.set(shown);
    S.ctx.putImageData(S.image, 0, 0);
    S.canvas.dataset.version = S.version || '';
    document.body.setAttribute('data-retouch', S.before ? 'before' : 'after');
  }

  // The whole list again (after undo, redo, or the server's answer on a "sharpest" stroke).
  function recomposite() {
    var edits = S.edits.slice(), from = S.from.slice();
    var sources = edits.map(function (e, k) { return strokeSource(e, from[k]); });
    return Promise.all(sources.map(function (s) { return s == null ? null : sourcePixels(s); })).then(function (pics) {
      var out = new Uint8ClampedArray(S.base);
      edits.forEach(function (e, k) {
        if (e.kind !== 'stroke' || !pics[k]) return; // masks from the command line: in the downloads, not here
        var m = strokeMask(e);
        blend(out, out, pics[k], m.mask, m.box, e.opacity);
      });
      S.out = out;
      show();
    });
  }

  function strokeSource(edit, resolved) {
    if (edit.source !== 'sharpest') return edit.source;
    return resolved && resolved.length ? resolved[0] : (edit.guess != null ? edit.guess : null);
  }

  // ------------------------------------------------------------------ server
  function accept(state) {
    S.version = state.version;
    S.from = state.from.concat(S.from.slice(state.from.length)); // strokes painted while saving keep theirs
    $('rt-count').textContent = state.edits.length ? state.edits.length + ' edit' + (state.edits.length === 1 ? '' : 's') +
      ' kept with the stack' : 'No edits: the untouched result';
    var v = S.viewer;
    if (v && v.aifLayer) v.aifLayer.src = state.edits.length ? jobUrl('retouched.jpg?preview=1&v=' + state.version)
      : S.data.allInFocus;
    if (S.residualOn) showResidual();
    updateButtons();
  }

  function save() {
    var edits = S.edits.map(function (e) {
      var c = {}; Object.keys(e).forEach(function (k) { if (k !== 'guess') c[k] = e[k]; }); return c;
    });
    S.saving = (S.saving || Promise.resolve()).then(function () {
      say('Saving\u2026');
      return api('PUT', jobUrl('edits'), { edits: edits });
    }).then(function (state) {
      accept(state);
      say('Saved. Downloads and the page show the retouched picture.');
      var changed = state.from.some(function (f, k) {
        return S.edits[k] && S.edits[k].source === 'sharpest' && f[0] !== S.edits[k].guess;
      });
      if (changed) return recomposite();
    }, function (e) { say('Not saved: ' + e.message); });
    return S.saving;
  }

  // ------------------------------------------------------------------ view: zoom and pan
  function applyView() {
    var w = S.editor.clientWidth, h = S.editor.clientHeight, z = S.zoom;
    S.tx = clamp(S.tx, w - w * z, 0);
    S.ty = clamp(S.ty, h - h * z, 0);
    S.wrap.style.transform = 'translate(' + S.tx + 'px,' + S.ty + 'px) scale(' + z + ')';
    $('rt-zoom').textContent = Math.round(z * 100) + ' %';
    S.editor.dataset.zoom = String(z);
    S.editor.dataset.tx = String(S.tx);
    S.editor.dataset.ty = String(S.ty);
  }

  function zoomAt(factor, px, py) {
    var z = clamp(S.zoom * factor, 1, MAX_ZOOM);
    S.tx = px - (px - S.tx) * z / S.zoom;
    S.ty = py - (py - S.ty) * z / S.zoom;
    S.zoom = z;
    applyView();
    cursor();
  }

  // Pointer -> full-resolution picture pixels, through the zoom and pan.
  function toImage(e) {
    var r = S.editor.getBoundingClientRect();
    var u = (e.clientX - r.left - S.tx) / S.zoom, v = (e.clientY - r.top - S.ty) / S.zoom;
    return [u / r.width * S.data.width, v / r.height * S.data.height];
  }

  function brushRadius() { // the slider is in screen pixels; strokes keep picture pixels
    var r = S.editor.getBoundingClientRect();
    return parseFloat($('rt-size').value) / 2 / S.zoom * S.data.width / r.width;
  }

  function cursor(e) {
    var c = S.cursor;
    if (e) { S.lastPointer = [e.clientX, e.clientY]; }
    if (!S.lastPointer) { c.hidden = true; return; }
    var r = S.editor.getBoundingClientRect(), d = parseFloat($('rt-size').value);
    c.hidden = S.panning || S.spaceDown;
    c.style.width = c.style.height = d + 'px';
    c.style.left = (S.lastPointer[0] - r.left - d / 2) + 'px';
    c.style.top = (S.lastPointer[1] - r.top - d / 2) + 'px';
  }

  // ------------------------------------------------------------------ painting
  function pickedSource() {
    var v = $('rt-source').value;
    return /^\d+$/.test(v) ? parseInt(v, 10) : v;
  }

  function startStroke(e) {
    var p = toImage(e), source = pickedSource();
    var edit = { kind: 'stroke', source: source, opacity: parseFloat($('rt-opacity').value),
      radius: Math.round(brushRadius() * 100) / 100, hardness: parseFloat($('rt-hardness').value),
      points: [[round2(p[0]), round2(p[1])]] };
    if (source === 'sharpest') { // a first guess for the preview (the tap answer there); the server decides
      var answer = S.viewer ? S.viewer.tapAnswer(p[0], p[1]) : null;
      edit.guess = answer ? answer.frame : S.data.frames[0].index;
    }
    var use = strokeSource(edit, null);
    S.stroke = { edit: edit, mask: new Float32Array(S.cw * S.ch), under: new Uint8ClampedArray(S.out), src: null };
    sourcePixels(use).then(function (px) {
      if (!S.stroke || S.stroke.edit !== edit) return;
      S.stroke.src = px;
      paintSegment(edit.points[0], edit.points[0]);
    }, function (err) { say(err.message); });
  }

  function round2(v) { return Math.round(v * 100) / 100; }

  function paintSegment(p, q) {
    var st = S.stroke;
    if (!st || !st.src) return;
    var box = strokeSegment(st.mask, p, q, st.edit.radius, st.edit.hardness);
    blend(S.out, st.under, st.src, st.mask, box, st.edit.opacity);
    if (!S.before) show();
  }

  function moveStroke(e) {
    var st = S.stroke, p = toImage(e), pts = st.edit.points, last = pts[pts.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) < Math.max(1, st.edit.radius / 4)) return;
    if (pts.length >= 4000) return;
    var q = [round2(p[0]), round2(p[1])];
    pts.push(q);
    paintSegment(last, q);
  }

  function endStroke() {
    var st = S.stroke;
    S.stroke = null;
    if (!st) return;
    S.edits.push(st.edit);
    S.from.push([]);
    S.redo = [];
    updateButtons();
    var done = st.src ? Promise.resolve() : recomposite();
    done.then(save);
  }

  function undo() {
    if (!S.edits.length) return;
    S.redo.push(S.edits.pop());
    S.from.pop();
    recomposite().then(save);
  }

  function redo() {
    if (!S.redo.length) return;
    S.edits.push(S.redo.pop());
    S.from.push([]);
    recomposite().then(save);
  }

  function updateButtons() {
    $('rt-undo').disabled = !S.edits.length;
    $('rt-redo').disabled = !S.redo.length;
  }

  // ------------------------------------------------------------------ residual overlay
  function showResidual() {
    var img = S.residual;
    img.hidden = false;
    say('Checking the result against the frames\u2026');
    img.onload = function () { say('Warm colours: where the result disagrees with the frames (forward-model check).'); };
    img.onerror = function () { say('The check could not be made.'); img.hidden = true; };
    img.src = jobUrl('residual.png?v=' + (S.version || 'none'));
  }

  // ------------------------------------------------------------------ the editor
  function build() {
    var stage = document.querySelector('#viewer .pf-stage');
    var ed = document.createElement('div');
    ed.className = 'rt-editor';
    ed.id = 'rt-editor';
    var wrap = document.createElement('div');
    wrap.className = 'rt-wrap';
    var canvas = document.createElement('canvas');
    canvas.id = 'rt-canvas';
    canvas.width = S.cw; canvas.height = S.ch;
    var residual = document.createElement('img');
    residual.className = 'rt-residual';
    residual.alt = '';
    residual.hidden = true;
    wrap.appendChild(canvas);
    wrap.appendChild(residual);
    ed.appendChild(wrap);
    var cur = document.createElement('div');
    cur.className = 'rt-cursor';
    cur.hidden = true;
    ed.appendChild(cur);
    stage.appendChild(ed);
    S.editor = ed; S.wrap = wrap; S.canvas = canvas; S.residual = residual; S.cursor = cur;
    S.ctx = canvas.getContext('2d', { willReadFrequently: true });
    S.image = S.ctx.createImageData(S.cw, S.ch);
    ['pointerdown', 'pointermove', 'pointerup', 'pointercancel', 'click', 'wheel', 'contextmenu'].forEach(function (t) {
      ed.addEventListener(t, function (e) { e.stopPropagation(); handle(e); }, { passive: false });
    });
    ed.addEventListener('pointerleave', function () { S.lastPointer = null; cursor(); });
  }

  function handle(e) {
    if (e.type === 'wheel') {
      e.preventDefault();
      var r = S.editor.getBoundingClientRect();
      zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
    } else if (e.type === 'contextmenu') {
      e.preventDefault();
    } else if (e.type === 'pointerdown') {
      S.editor.setPointerCapture(e.pointerId);
      if (e.button === 1 || S.spaceDown || S.panMode) {
        S.panning = { x: e.clientX, y: e.clientY, tx: S.tx, ty: S.ty };
      } else if (e.button === 0 && !S.before) {
        startStroke(e);
      }
      cursor(e);
    } else if (e.type === 'pointermove') {
      if (S.panning) {
        S.tx = S.panning.tx + e.clientX - S.panning.x;
        S.ty = S.panning.ty + e.clientY - S.panning.y;
        applyView();
      } else if (S.stroke) {
        moveStroke(e);
      }
      cursor(e);
    } else if (e.type === 'pointerup' || e.type === 'pointercancel') {
      if (S.panning) S.panning = null;
      else endStroke();
      cursor(e);
    }
  }

  function key(e) {
    if (!S || !S.active || /^(INPUT|SELECT|TEXTAREA)$/.test((e.target || {}).tagName || '')) return;
    var mod = e.ctrlKey || e.metaKey;
    if (e.type === 'keyup') {
      if (e.key === ' ') { S.spaceDown = false; cursor(); }
      return;
    }
    if (e.key === ' ') { S.spaceDown = true; e.preventDefault(); cursor(); }
    else if (mod && (e.key === 'z' || e.key === 'Z')) { e.preventDefault(); if (e.shiftKey) redo(); else undo(); }
    else if (mod && e.key === 'y') { e.preventDefault(); redo(); }
    else if (e.key === 'b' || e.key === 'B') { setBefore(!S.before); }
    else if (e.key === '+' || e.key === '=') zoomCentre(1.25);
    else if (e.key === '-') zoomCentre(0.8);
    else return;
    e.stopPropagation();
  }

  function zoomCentre(f) { zoomAt(f, S.editor.clientWidth / 2, S.editor.clientHeight / 2); }

  function setBefore(on) {
    S.before = on;
    $('rt-before').setAttribute('aria-pressed', String(on));
    $('rt-before').textContent = on ? 'Showing before (B)' : 'Before / after (B)';
    show();
  }

  function fillSources() {
    var sel = $('rt-source'), v = S.viewer;
    sel.textContent = '';
    function opt(value, text) { var o = document.createElement('option'); o.value = value; o.textContent = text; sel.appendChild(o); }
    opt('sharpest', 'Sharpest under the brush');
    S.data.frames.forEach(function (f) { opt(String(f.index), v ? v.frameLabel(f.index) : 'Frame ' + (f.index + 1)); });
    opt('pyramid', 'Other fusion (pyramid)');
    opt('result', 'Untouched result (paint to undo)');
  }

  function activate() {
    if (!S || S.active) return;
    S.active = true;
    var stage = document.querySelector('#viewer .pf-stage');
    if (!S.editor || S.editor.parentNode !== stage) build();
    S.editor.hidden = false;
    S.zoom = S.zoom || 1; S.tx = S.tx || 0; S.ty = S.ty || 0;
    applyView();
    if (!S.loaded) {
      say('Loading\u2026');
      S.loaded = Promise.all([pixelsOf(S.data.allInFocus), api('GET', jobUrl('edits'))]).then(function (r) {
        S.base = r[0];
        S.out = new Uint8ClampedArray(r[0]);
        S.edits = r[1].edits.slice();
        S.from = r[1].from.slice();
        accept(r[1]);
        $('rt-residual-row').hidden = !r[1].residual;
        return recomposite();
      }).then(function () {
        say('Paint over what should come from the chosen source. Wheel or +/- zooms, Space+drag pans.');
        S.editor.dataset.ready = '1';
      }, function (e) { say('Retouching is not available: ' + e.message); });
    }
  }

  function deactivate() {
    if (!S || !S.active) return;
    S.active = false;
    S.stroke = null;
    if (S.editor) S.editor.hidden = true;
  }

  function setupControls() {
    [['rt-size', ' px'], ['rt-hardness', ''], ['rt-opacity', '']].forEach(function (c) {
      var input = $(c[0]), out = $(c[0] + '-out');
      var upd = function () { out.textContent = input.value + c[1]; if (S) cursor(); };
      input.addEventListener('input', upd);
      upd();
    });
    $('rt-undo').addEventListener('click', function () { if (S) undo(); });
    $('rt-redo').addEventListener('click', function () { if (S) redo(); });
    $('rt-before').addEventListener('click', function () { if (S) setBefore(!S.before); });
    $('rt-zoom-in').addEventListener('click', function () { if (S) zoomCentre(1.5); });
    $('rt-zoom-out').addEventListener('click', function () { if (S) zoomCentre(1 / 1.5); });
    $('rt-zoom-fit').addEventListener('click', function () { if (S) { S.zoom = 1; S.tx = S.ty = 0; applyView(); } });
    $('rt-pan').addEventListener('click', function () {
      if (!S) return;
      S.panMode = !S.panMode;
      $('rt-pan').setAttribute('aria-pressed', String(S.panMode));
    });
    $('rt-residual').addEventListener('change', function () {
      if (!S) return;
      S.residualOn = $('rt-residual').checked;
      if (S.residualOn) showResidual(); else S.residual.hidden = true;
    });
    document.addEventListener('keydown', key, true);
    document.addEventListener('keyup', key, true);
  }

  document.addEventListener('postfocus:workspace', function (e) {
    var d = e.detail;
    var long = Math.max(d.data.width, d.data.height), edge = Math.min(1600, long);
    S = { job: d.job, data: d.data, viewer: d.viewer, active: false, pictures: {}, edits: [], from: [], redo: [],
      cw: Math.max(1, Math.round(d.data.width * edge / long)), ch: Math.max(1, Math.round(d.data.height * edge / long)),
      zoom: 1, tx: 0, ty: 0, before: false };
    fillSources();
    $('rt-residual').checked = false;
    // The viewer's "All in focus" shows the retouched picture once there are edits.
    api('GET', jobUrl('edits')).then(function (state) { if (S && S.job === d.job) accept(state); }, function () {});
  });
  document.addEventListener('postfocus:tool', function (e) {
    if (e.detail.tool === 'retouch') activate(); else deactivate();
  });
  document.addEventListener('postfocus:close', function () { deactivate(); S = null; });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', setupControls);
  else setupControls();
})();
