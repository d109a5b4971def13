/*
 * postfocus web app: drop a focus sweep, watch it being processed, then work on it.
 *
 * Plain ES2019, no build step, no external resources. The picture itself is the
 * shared viewer (/viewer/viewer.js, PostfocusViewer.mount); this file adds the
 * upload, the progress, the gallery and the tools around it, all through the
 * JSON API of postfocus.web.app.
 */
(function () {
  'use strict';

  var F_STOPS = [1.4, 2, 2.8, 4, 5.6, 8, 11, 16, 22];
  var POLL_MS = 500;

  var info = { max_upload_bytes: Infinity, max_upload_text: '' };
  var current = null; // {id, job, viewer, data, tool, range, aperture, timers}
  var galleryTimer = null;
  var pollTimer = null;

  function $(id) { return document.getElementById(id); }

  // URL of a job's sub-resource, e.g. jobUrl(job, 'frames/3'). Built from the id: the job's "self" link
  // ends in '/', and appending '/frames/' to it made '//frames/' (a 404).
  function jobUrl(job, path) { return '/api/jobs/' + job.id + '/' + path; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // Headers of every request to the API. The server refuses changes (POST, DELETE) without
  // X-Postfocus: 1, which another web site cannot send.
  function apiHeaders() {
    return { Accept: 'application/json', 'X-Postfocus': '1' };
  }

  function api(method, url, body) {
    var opts = { method: method, headers: apiHeaders() };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var err = new Error(data.error || ('The server answered ' + r.status + '.'));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function toast(text) {
    var t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 6000);
  }

  function message(text, kind) {
    var box = $('messages');
    var m = el('div', kind || 'error', text);
    m.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    var close = el('button', 'close', '\u00d7');
    close.type = 'button';
    close.title = 'Dismiss';
    close.addEventListener('click', function () { m.remove(); });
    m.appendChild(close);
    box.appendChild(m);
  }

  function formatBytes(n) {
    if (n < 1024) return n + ' bytes';
    if (n < 1024 * 1024) return (n / 1024).toFixed(0) + ' KB';
    var mb = n / 1024 / 1024;
    return mb.toFixed(mb < 10 ? 2 : 1) + ' MB';
  }

  function formatDate(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function stateText(job) {
    if (job.state === 'queued') return 'Waiting for its turn';
    if (job.state === 'running') return (job.progress && job.progress.message) || 'Processing';
    if (job.state === 'failed') return job.error || 'Failed';
    if (job.state === 'done') return 'Ready';
    return job.state;
  }

  function fraction(job) {
    if (job.state === 'done') return 1;
    var p = job.progress;
    return p && typeof p.fraction === 'number' ? p.fraction : 0;
  }

  // ------------------------------------------------------------------ upload
  function upload(files) {
    files = Array.prototype.slice.call(files || []);
    if (!files.length) return;
    var total = files.reduce(function (s, f) { return s + f.size; }, 0);
    if (total > info.max_upload_bytes) {
      message('These files are ' + formatBytes(total) + ', more than this server accepts (' +
        info.max_upload_text + '). Send fewer or smaller files, or start the server with a larger --max-upload-mb.');
      return;
    }
    var form = new FormData();
    files.forEach(function (f) { form.append('files', f, f.name); });
    var label = files.length === 1 ? files[0].name : files.length + ' files';
    var card = el('div', 'upload-card');
    var title = el('p', 'upload-title', 'Uploading ' + label + ' (' + formatBytes(total) + ')');
    var bar = el('div', 'bar');
    var fill = el('div', 'bar-fill');
    bar.appendChild(fill);
    card.appendChild(title);
    card.appendChild(bar);
    $('uploads').appendChild(card);

    var xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/jobs');
    var headers = apiHeaders();
    Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) fill.style.width = (100 * e.loaded / e.total).toFixed(1) + '%';
    };
    xhr.onload = function () {
      card.remove();
      var data = {};
      try { data = JSON.parse(xhr.responseText); } catch (err) { /* not JSON */ }
      if (xhr.status === 201 && data.id) {
        refreshGallery();
        if (!current && location.hash.indexOf('#/job/') !== 0) location.hash = '#/job/' + data.id;
        else toast(label + ' uploaded; it is being processed.');
      } else {
        message('Upload refused: ' + (data.error || ('the server answered ' + xhr.status + '.')));
      }
    };
    xhr.onerror = function () {
      card.remove();
      message(label + ': the upload did not reach the server (is it still running?).');
    };
    xhr.send(form);
  }

  function setupDrop() {
    var drop = $('drop'), input = $('file-input');
    $('pick').addEventListener('click', function (e) { e.stopPropagation(); input.click(); });
    drop.addEventListener('click', function () { input.click(); });
    drop.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); }
    });
    input.addEventListener('change', function () { upload(input.files); input.value = ''; });
    ['dragenter', 'dragover'].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add('over'); });
    });
    ['dragleave', 'drop'].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.remove('over'); });
    });
    drop.addEventListener('drop', function (e) { upload(e.dataTransfer && e.dataTransfer.files); });
    // A drop anywhere else must not make the browser open the file instead.
    window.addEventListener('dragover', function (e) { e.preventDefault(); });
    window.addEventListener('drop', function (e) { e.preventDefault(); });
  }

  // ----------------------------------------------------------------- gallery
  function galleryCard(job) {
    var card = el('article', 'card state-' + job.state);
    card.dataset.id = job.id;
    var link = el('a', 'card-link');
    link.href = '#/job/' + job.id;
    var pic = el('div', 'card-pic');
    if (job.state === 'done') {
      var img = el('img');
      img.alt = job.title;
      img.loading = 'lazy';
      img.src = job.links.thumb;
      pic.appendChild(img);
    } else {
      pic.appendChild(el('span', 'card-state', job.state === 'failed' ? 'failed' : 'working\u2026'));
    }
    link.appendChild(pic);
    link.appendChild(el('h3', 'card-title', job.title || 'focus sweep'));
    card.appendChild(link);
    var inputs = job.inputs || [];
    var what = inputs.length === 1 && inputs[0].kind === 'video' ? 'video' : inputs.length + ' photos';
    card.appendChild(el('p', 'card-meta', what + ' \u00b7 ' + formatDate(job.created)));
    if (job.state === 'queued' || job.state === 'running') {
      var bar = el('div', 'bar');
      var fill = el('div', 'bar-fill');
      fill.style.width = (100 * fraction(job)).toFixed(1) + '%';
      bar.appendChild(fill);
      card.appendChild(bar);
      card.appendChild(el('p', 'card-status', stateText(job)));
    } else if (job.state === 'failed') {
      card.appendChild(el('p', 'card-error', job.error || 'Failed.'));
      var actions = el('p', 'card-actions');
      var retry = el('button', 'button small', 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', function () {
        api('POST', jobUrl(job, 'retry')).then(refreshGallery, function (e) { message(e.message); });
      });
      var del = el('button', 'button small danger', 'Delete');
      del.type = 'button';
      del.addEventListener('click', function () { deleteJob(job, refreshGallery); });
      actions.appendChild(retry);
      actions.appendChild(del);
      card.appendChild(actions);
    }
    return card;
  }

  function refreshGallery() {
    clearTimeout(galleryTimer);
    return api('GET', '/api/jobs').then(function (data) {
      var box = $('gallery');
      box.textContent = '';
      data.jobs.forEach(function (job) { box.appendChild(galleryCard(job)); });
      $('gallery-empty').hidden = data.jobs.length > 0;
      var busy = data.jobs.some(function (j) { return j.state === 'queued' || j.state === 'running'; });
      if (busy && !$('view-home').hidden) galleryTimer = setTimeout(refreshGallery, 1000);
    }, function (e) {
      message('Cannot list earlier results: ' + e.message);
    });
  }

  function deleteJob(job, then) {
    if (!window.confirm('Delete "' + (job.title || 'this result') + '" and its files?')) return;
    api('DELETE', '/api/jobs/' + job.id).then(then, function (e) { message(e.message); });
  }

  // --------------------------------------------------------------- job view
  // Other tools' scripts (retouch.js) follow the workspace through these events.
  function announce(name, detail) { document.dispatchEvent(new CustomEvent('postfocus:' + name, { detail: detail })); }

  function closeJob() {
    clearTimeout(pollTimer);
    announce('close', {});
    if (current) {
      Object.keys(current.timers).forEach(function (k) { clearTimeout(current.timers[k]); });
      if (current.viewer) current.viewer.destroy();
      if (current.previewBlob) URL.revokeObjectURL(current.previewBlob);
    }
    current = null;
  }

  function openJob(id) {
    closeJob();
    current = { id: id, job: null, viewer: null, data: null, tool: 'refocus', timers: {},
      range: { from: 0, to: 0, next: 'from' }, rangeKey: null, aperture: { x: null, y: null }, lastTap: null };
    $('job-title').textContent = '';
    $('job-info').textContent = '';
    $('job-error').hidden = true;
    $('job-warnings').hidden = true;
    $('workspace').hidden = true;
    $('job-progress').hidden = false;
    $('job-progress-text').textContent = 'Loading\u2026';
    $('job-progress-bar').style.width = '0%';
    $('viewer').textContent = '';
    poll(id);
  }

  function poll(id) {
    api('GET', '/api/jobs/' + id).then(function (job) {
      if (!current || current.id !== id) return;
      current.job = job;
      $('job-title').textContent = job.title || 'focus sweep';
      document.title = (job.title || 'focus sweep') + ' \u2013 postfocus';
      var inputs = job.inputs || [];
      var what = inputs.length === 1 && inputs[0].kind === 'video' ? 'a video' : inputs.length + ' photos';
      var text = 'From ' + what + ', ' + formatDate(job.created);
      if (job.result) {
        text += ' \u00b7 ' + job.result.width + '\u00d7' + job.result.height + ' \u00b7 ' +
          job.result.used.length + ' of ' + job.result.frames + ' frames used';
      }
      $('job-info').textContent = text;
      if (job.state === 'queued' || job.state === 'running') {
        $('job-progress').hidden = false;
        $('job-progress-text').textContent = stateText(job);
        $('job-progress-bar').style.width = (100 * fraction(job)).toFixed(1) + '%';
        pollTimer = setTimeout(function () { poll(id); }, POLL_MS);
      } else if (job.state === 'failed') {
        $('job-progress').hidden = true;
        showJobError(job);
      } else if (job.state === 'done') {
        $('job-progress').hidden = true;
        var warnings = (job.result && job.result.warnings) || [];
        if (warnings.length) {
          $('job-warnings').textContent = 'Note: ' + warnings.join(' \u2022 ');
          $('job-warnings').hidden = false;
        }
        startWorkspace(job);
      }
    }, function (e) {
      if (!current || current.id !== id) return;
      $('job-progress').hidden = true;
      var box = $('job-error');
      box.textContent = e.status === 404 ? 'There is no such result (it may have been deleted).' : e.message;
      box.hidden = false;
    });
  }

  function showJobError(job) {
    var box = $('job-error');
    box.textContent = '';
    box.appendChild(el('p', '', 'This stack could not be processed: ' + (job.error || 'unknown error')));
    var p = el('p');
    var retry = el('button', 'button', 'Retry');
    retry.type = 'button';
    retry.id = 'retry-job';
    retry.addEventListener('click', function () {
      api('POST', jobUrl(job, 'retry')).then(function () { openJob(job.id); },
        function (e) { message(e.message); });
    });
    var del = el('button', 'button danger', 'Delete');
    del.type = 'button';
    del.addEventListener('click', function () { deleteJob(job, function () { location.hash = '#/'; }); });
    p.appendChild(retry);
    p.appendChild(document.createTextNode(' '));
    p.appendChild(del);
    box.appendChild(p);
    box.hidden = false;
  }

  function startWorkspace(job) {
    var id = job.id;
    api('GET', job.links.viewer).then(function (data) {
      if (!current || current.id !== id) return;
      current.data = data;
      $('workspace').hidden = false;
      if (typeof PostfocusViewer === 'undefined') {
        $('viewer').textContent = 'The viewer did not load.';
        return;
      }
      current.viewer = PostfocusViewer.mount($('viewer'), data, {
        onChange: onViewerChange,
        maxHeight: pictureHeight
      });
      setupTools(job, data);
      if (window.PostfocusLiving && data.living) { // parallax (the Tilt button); the focus-pull hint is the page's
        current.living = PostfocusLiving.attach(current.viewer, data.living, { pullOnLoad: false });
      }
      current.viewer.whenReady().then(function () {
        announce('workspace', { job: job, data: data, viewer: current.viewer }); // retouch.js
        document.body.setAttribute('data-workspace', 'ready');
      });
    }, function (e) {
      var box = $('job-error');
      box.textContent = 'Cannot open this result: ' + e.message;
      box.hidden = false;
    });
  }

  // The picture as tall as the window allows below the page's head, with the viewer's own bar and status
  // line under it still in view. On wide screens the tools sit beside it (app.css), on narrow ones below.
  function pictureHeight() {
    var box = $('viewer'), below = 0;
    Array.prototype.forEach.call(box.querySelectorAll('.pf-bar, .pf-status'), function (e) {
      below += e.offsetHeight;
    });
    var top = box.getBoundingClientRect().top + window.scrollY;
    return Math.max(200, window.innerHeight - top - below - 12); // 12: more than main's bottom padding (app.css)
  }

  // ------------------------------------------------------------------ tools
  function setupTools(job, data) {
    var links = job.links, s = current.viewer.getState();
    current.range.from = s.sliderFirst; // the ends of what the focus slider spans: the scene's frames (app22)
    current.range.to = s.sliderLast;
    spanRange(s, true);
    current.aperture = { x: Math.floor(data.width / 2), y: Math.floor(data.height / 2) };
    $('pop-tolerance').value = String((data.pop && data.pop.tolerance != null) ? data.pop.tolerance : 1);
    setPopTolerance();
    $('dl-image').href = links.image + '?download=1';
    $('dl-page').href = links.page;
    $('dl-depth').href = links.depth + '?download=1';
    showOrder(job.result && job.result.order);
    updateRangeText();
    updateFrameLink();
    selectTool('refocus');
  }

  // Which frame the depth's tools take as the nearest, and how to change it when it was assumed (the command line
  // says it too, once): one line beside the aperture, the colour pop and the depth map (fixes23).
  function showOrder(order) {
    Array.prototype.forEach.call(document.querySelectorAll('.order-said'), function (p) {
      p.textContent = '';
      // (the command's option kept on one line: it broke after its '--'; only the sentence's closing one, not a
      // photo's name that holds the words: review21)
      var option = /(--order (?:near-to-far|far-to-near)(?=\)\.$))/;
      String(order && order.said || '').split(option).forEach(function (part, k) {
        var node = k % 2 ? document.createElement('code') : document.createTextNode(part);
        if (k % 2) node.textContent = part;
        p.appendChild(node);
      });
      p.hidden = !(order && order.said);
    });
  }

  // The From/To sliders span what the focus slider spans (the frames the scene lies in, or every frame with
  // Whole sweep, key W: the viewer's sliderFirst/sliderLast), widened to the ends already chosen, so a frame
  // picked over the whole sweep stays reachable after W. Set again when that span changes or an end lies outside.
  function spanRange(state, force) {
    var r = current.range, from = $('range-from'), to = $('range-to');
    var key = state.sliderFirst + ':' + state.sliderLast;
    var lo = Math.min(state.sliderFirst, r.from, r.to), hi = Math.max(state.sliderLast, r.from, r.to);
    if (!force && key === current.rangeKey && lo >= +from.min && hi <= +from.max) return;
    current.rangeKey = key;
    [from, to].forEach(function (s) { s.min = String(lo); s.max = String(hi); });
    from.value = String(r.from);
    to.value = String(r.to);
  }

  function selectTool(tool) {
    if (!current) return;
    current.tool = tool;
    Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (t) {
      t.setAttribute('aria-selected', String(t.dataset.tool === tool));
    });
    Array.prototype.forEach.call(document.querySelectorAll('.panel'), function (p) {
      p.hidden = p.dataset.panel !== tool;
    });
    var v = current.viewer;
    if (v) {
      if (tool === 'pop' && v.mode !== 'pop') v.setMode('pop');
      else if (tool !== 'pop' && v.mode === 'pop') v.setMode('frame');
    }
    hidePreview();
    announce('tool', { tool: tool });
    if (tool === 'range') { current.range.next = 'from'; updateRangeText(); showRange(); }
    if (tool === 'aperture') showAperture();
    if (tool === 'pop') updatePopLink();
  }

  function onViewerChange(state) {
    if (!current) return;
    var tap = state.lastTap;
    var fresh = tap && (!current.lastTap || tap.x !== current.lastTap.x || tap.y !== current.lastTap.y ||
      tap.ms !== current.lastTap.ms);
    current.lastTap = tap;
    current.state = state;
    if (current.rangeKey != null) spanRange(state); // (null while the viewer is made, before setupTools)
    updateFrameLink();
    if (current.tool === 'pop') updatePopLink();
    if (!fresh) return;
    if (current.tool === 'range') {
      var r = current.range;
      r[r.next] = tap.frame;
      if (r.next === 'from') { r.next = 'to'; } else { r.next = 'from'; }
      if (r.from > r.to && r.next === 'from') { var t = r.from; r.from = r.to; r.to = t; }
      spanRange(state);
      $('range-from').value = String(r.from);
      $('range-to').value = String(r.to);
      updateRangeText();
      if (r.next === 'from') showRange();
    } else if (current.tool === 'aperture') {
      current.aperture = { x: Math.round(tap.x), y: Math.round(tap.y) };
      showAperture();
    }
  }

  function updateFrameLink() {
    if (!current || !current.job || !current.state) return;
    var f = current.state.frame;
    if (f == null) return;
    $('dl-frame').href = jobUrl(current.job, 'frames/' + f + '?download=1');
    $('dl-frame').textContent = 'Download ' + lowerFirst(current.state.label) + ', full size';
  }

  function updatePopLink() {
    var s = current && current.state;
    var position = s && s.popPosition != null ? s.popPosition : (s ? s.frame : 0);
    var tol = popTolerance();
    $('dl-pop').href = current.job.links.pop + '?position=' + encodeURIComponent(position.toFixed(2)) +
      '&tolerance=' + tol + '&download=1';
    if (current.viewer && current.viewer.mode === 'pop' && current.viewer.popCoverage != null) {
      $('pop-text').textContent = keptColourText(current.viewer.popCoverage, tol) + '.';
    }
  }

  function popTolerance() { return parseFloat($('pop-tolerance').value); }

  // What postfocus pop says of the share of the picture that kept its colour (postfocus.cli.pop.kept_colour_text),
  // with the app's control for its --tolerance.
  var LARGE_SHARE = 0.6; // postfocus.cli.pop.LARGE_SHARE
  function keptColourText(share, tol) {
    var text = 'Kept colour on ' + (100 * share).toFixed(0) + ' % of the picture';
    if (share > LARGE_SHARE && tol > 0) {
      text += ': most of it lies within ' + tol + ' frame' + (tol === 1 ? '' : 's') + ' of that depth; ' +
        'a smaller tolerance (e.g. ' + tol / 2 + ') keeps the colour to the subject';
    }
    return text;
  }

  function setPopTolerance() {
    var tol = popTolerance();
    $('pop-tolerance-out').textContent = tol + (tol === 1 ? ' frame' : ' frames');
    if (current && current.viewer) current.viewer.setPopTolerance(tol); // redraws the pop when it is shown
    if (current && current.job) updatePopLink();
  }

  // Frame numbers for people: counted from 1, with the file name ('frames 2 to 5 of 7 (pcb_002.jpg to
  // pcb_005.jpg)'). The API, the sliders' values and the viewer's state count from 0.
  function lowerFirst(text) { return text.charAt(0).toLowerCase() + text.slice(1); }

  function rangeWords(lo, hi) {
    var v = current.viewer;
    if (lo === hi) return lowerFirst(v.frameLabel(lo));
    var names = [lo, hi].map(function (n) {
      var k = v.frameNumbers.indexOf(n);
      return k >= 0 ? v.frames[k].name : '';
    });
    return 'frames ' + (lo + 1) + ' to ' + (hi + 1) + ' of ' + v.frameCount +
      (names[0] && names[1] ? ' (' + names[0] + ' to ' + names[1] + ')' : '');
  }

  function updateRangeText() {
    var r = current.range;
    [['range-from', r.from], ['range-to', r.to]].forEach(function (end) {
      $(end[0] + '-out').textContent = String(end[1] + 1);
      $(end[0]).setAttribute('aria-valuetext', current.viewer.frameLabel(end[1]));
    });
    var lo = Math.min(r.from, r.to), hi = Math.max(r.from, r.to);
    $('range-text').textContent = 'Merge of ' + rangeWords(lo, hi) + '. ' +
      (r.next === 'from' ? 'Next tap sets the near end.' : 'Now tap the far end.');
  }

  // Results of the range and aperture tools are shown over the viewer's picture, at the same size, so a
  // tap still reaches the viewer underneath (it picks the range ends or the aperture's subject).
  function overlay() {
    var stage = document.querySelector('#viewer .pf-stage');
    if (!current.overlay) {
      var box = el('div', 'app-overlay');
      box.id = 'preview';
      var img = el('img');
      img.id = 'preview-img';
      img.alt = '';
      box.appendChild(img);
      var busy = el('div', 'busy', 'Working\u2026');
      busy.id = 'preview-busy';
      busy.hidden = true;
      box.appendChild(busy);
      current.overlay = box;
    }
    if (stage && current.overlay.parentNode !== stage) stage.appendChild(current.overlay);
    return current.overlay;
  }

  function hidePreview() {
    if (current && current.overlay) {
      current.overlay.hidden = true;
      current.overlay.dataset.want = '';
    }
  }

  function showPreview(url, caption, captionBox, withResponse) {
    var box = overlay(), img = box.querySelector('img'), busy = box.querySelector('.busy');
    box.hidden = false;
    box.dataset.want = url;
    if (box.dataset.shown === url) {
      captionBox.textContent = withResponse ? box.dataset.caption || caption : caption;
      return;
    }
    busy.hidden = false;
    box.classList.add('loading');
    if (withResponse) return fetchPreview(url, caption, captionBox, withResponse);
    var probe = new Image();
    probe.onload = function () {
      if (box.dataset.want !== url) return;
      img.src = url;
      img.alt = caption;
      busy.hidden = true;
      box.classList.remove('loading');
      box.dataset.shown = url;
      box.dataset.caption = caption;
      captionBox.textContent = caption;
    };
    probe.onerror = function () {
      if (box.dataset.want !== url) return;
      busy.hidden = true;
      box.classList.remove('loading');
      // Ask again to read the server's message.
      fetch(url).then(function (r) { return r.json(); }).then(function (d) {
        captionBox.textContent = d.error || 'Could not make this picture.';
      }, function () { captionBox.textContent = 'Could not make this picture.'; });
    };
    probe.src = url;
  }

  // As showPreview's image probe, fetched: withResponse(response, caption) adds what the answer's headers say.
  function fetchPreview(url, caption, captionBox, withResponse) {
    var box = overlay(), img = box.querySelector('img'), busy = box.querySelector('.busy');
    function done() { busy.hidden = true; box.classList.remove('loading'); }
    fetch(url).then(function (r) {
      if (!r.ok) {
        return r.json().then(function (d) { throw new Error(d.error || ''); });
      }
      var said = withResponse(r, caption);
      return r.blob().then(function (blob) {
        if (box.dataset.want !== url) return;
        if (current.previewBlob) URL.revokeObjectURL(current.previewBlob);
        current.previewBlob = URL.createObjectURL(blob);
        img.src = current.previewBlob;
        img.alt = said;
        done();
        box.dataset.shown = url;
        box.dataset.caption = said;
        captionBox.textContent = said;
      });
    }).catch(function (e) {
      if (box.dataset.want !== url) return;
      done();
      captionBox.textContent = (e && e.message) || 'Could not make this picture.';
    });
  }

  function showRange() {
    var r = current.range;
    var lo = Math.min(r.from, r.to), hi = Math.max(r.from, r.to);
    var url = current.job.links.merge + '?start=' + lo + '&end=' + hi;
    $('dl-range').href = url + '&download=1';
    clearTimeout(current.timers.range);
    current.timers.range = setTimeout(function () {
      showPreview(url, 'Showing ' + rangeWords(lo, hi) + ' merged. ' +
        (current.range.next === 'from' ? 'Tap the near end to start again.' : 'Now tap the far end.'),
        $('range-text'));
    }, 250);
  }

  function apertureUrl(full) {
    var f = F_STOPS[parseInt($('aperture-f').value, 10)];
    var a = current.aperture;
    return current.job.links.aperture + '?x=' + a.x + '&y=' + a.y + '&f=' + f + (full ? '&full=1' : '');
  }

  function showAperture() {
    var f = F_STOPS[parseInt($('aperture-f').value, 10)];
    $('aperture-f-out').textContent = 'f/' + f;
    var a = current.aperture;
    $('dl-aperture').href = apertureUrl(true) + '&download=1';
    clearTimeout(current.timers.aperture);
    current.timers.aperture = setTimeout(function () {
      showPreview(apertureUrl(false), 'Showing f/' + f + ', focused at ' + a.x + ', ' + a.y +
        '. Tap the subject to keep sharp; the download is full size.', $('aperture-text'), lensCaption);
    }, 200);
  }

  // The render's X-Postfocus-Lens header (postfocus.web.lens): how much it blurs, said under the picture.
  function lensCaption(response, caption) {
    var lens;
    try { lens = JSON.parse(response.headers.get('X-Postfocus-Lens') || 'null'); } catch (e) { lens = null; }
    if (!lens || !lens.note) return caption;
    var cut = caption.indexOf('. ');
    return caption.slice(0, cut) + ': ' + lens.note + caption.slice(cut);
  }

  function setupToolControls() {
    Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (t) {
      t.addEventListener('click', function () { selectTool(t.dataset.tool); });
    });
    ['range-from', 'range-to'].forEach(function (name) {
      $(name).addEventListener('input', function () {
        if (!current) return;
        current.range[name === 'range-from' ? 'from' : 'to'] = parseInt($(name).value, 10);
        current.range.next = 'from';
        updateRangeText();
        showRange();
      });
    });
    $('aperture-f').addEventListener('input', function () { if (current) showAperture(); });
    $('pop-tolerance').addEventListener('input', setPopTolerance);
    $('delete-job').addEventListener('click', function () {
      if (current && current.job) deleteJob(current.job, function () { location.hash = '#/'; });
    });
    Array.prototype.forEach.call(document.querySelectorAll('a.button[download]'), function (a) {
      a.addEventListener('click', function (e) {
        if (a.getAttribute('href') === '#') e.preventDefault();
      });
    });
  }

  // ----------------------------------------------------------------- routing
  function route() {
    var m = /^#\/job\/([0-9a-f-]{36})$/.exec(location.hash);
    var home = !m;
    $('view-home').hidden = !home;
    $('view-job').hidden = home;
    document.body.setAttribute('data-view', home ? 'home' : 'job');
    if (m) {
      if (!current || current.id !== m[1]) openJob(m[1]);
    } else {
      closeJob();
      document.title = 'postfocus';
      refreshGallery();
      if (location.hash === '#/gallery') $('gallery-title').scrollIntoView();
    }
  }

  function start() {
    setupDrop();
    setupToolControls();
    api('GET', '/api/info').then(function (data) {
      info = data;
      $('limit-text').textContent = 'Up to ' + data.max_upload_text + ' per upload.';
    }).catch(function () { /* keep the defaults */ }).then(function () {
      window.addEventListener('hashchange', route);
      route();
      document.body.setAttribute('data-app', 'ready');
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
