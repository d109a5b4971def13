/*
 * postfocus viewer add-on: the forward-model check's residual as a heat map over the picture.
 *
 * One plain ES2019 script beside viewer.js, no dependency. It defines one global:
 *
 *   PostfocusResidual.attach(viewer, data, options) -> {toggle(on), shown(), destroy()} or null
 *
 * data.residual (from postfocus.viewer.residual.residual_data):
 *   src        an RGBA PNG the size of the pictures: heat colours, transparent where the result explains
 *              the frames (residual up to 1.5x the typical error), opaque at twice the flag level
 *   level      the flag level (times the typical error), flagged: share of the picture above it,
 *   regions    [{x, y, width, height, peak}] the worst flagged regions in output pixels
 *   unverifiable  share of the picture where no frame could contradict the depth (tinted blue in src)
 * A button "Residual" (key R) lays the heat map over whatever the viewer shows (a frame, all in focus,
 * depth) and outlines the worst regions; taps still refocus underneath. The legend is a caption at the
 * foot of the picture itself, so it is in view whenever the picture is (below the status line it fell
 * under the fold of short windows). options.keyboardTarget as for
 * the viewer. The container gets data-residual="on" while it is shown.
 */
(function (root, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  if (root) root.PostfocusResidual = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  function el(tag, cls, attrs, style) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (style) Object.keys(style).forEach(function (k) { e.style[k] = style[k]; });
    return e;
  }

  // Inline styles: the add-on brings no CSS of its own (the page's CSP allows inline styles).
  var LAYER = { position: 'absolute', left: '0', top: '0', width: '100%', height: '100%', zIndex: '99990',
                pointerEvents: 'none', display: 'none' };
  var PICTURE = { display: 'block', width: '100%', height: '100%' };
  var BOX = { position: 'absolute', boxSizing: 'border-box', border: '1px dashed rgba(255, 255, 255, 0.75)',
              borderRadius: '3px' };
  var LEGEND = { position: 'absolute', left: '0', right: '0', bottom: '0', zIndex: '99991', pointerEvents: 'none',
                 textAlign: 'center', color: '#ddd', background: 'rgba(0, 0, 0, 0.6)', fontSize: '12px',
                 lineHeight: '1.35', padding: '3px 8px', display: 'none' };

  function attach(viewer, data, options) {
    var info = data && data.residual;
    if (!viewer || !info || !info.src) return null;
    options = options || {};
    var w = data.width, h = data.height;
    var layer = el('div', 'pf-residual', { 'aria-hidden': 'true' }, LAYER);
    var img = el('img', '', { alt: 'residual: where the result contradicts the frames', draggable: 'false' }, PICTURE);
    img.src = info.src;
    layer.appendChild(img);
    (info.regions || []).forEach(function (r) {
      var box = el('div', 'pf-residual-box', null, BOX);
      box.style.left = (100 * r.x / w) + '%';
      box.style.top = (100 * r.y / h) + '%';
      box.style.width = (100 * r.width / w) + '%';
      box.style.height = (100 * r.height / h) + '%';
      box.title = 'peak ' + Number(r.peak).toFixed(1) + 'x the typical error';
      layer.appendChild(box);
    });
    viewer.stage.appendChild(layer);

    var button = el('button', 'pf-btn', { type: 'button', 'aria-pressed': 'false',
      title: 'Heat map of where the result contradicts the frames (forward-model check) (R)' });
    button.appendChild(document.createTextNode('Residual '));
    var kbd = el('kbd'); kbd.textContent = 'R'; button.appendChild(kbd);
    var slider = viewer.bar.querySelector('.pf-slider');
    viewer.bar.insertBefore(button, slider || null);
    var legend = el('div', 'pf-residual-legend', null, LEGEND);
    legend.textContent = 'Residual: ' + (100 * (info.flagged || 0)).toFixed(2) + ' % above ' + info.level +
      'x the typical error (red ' + info.level + 'x, yellow ' + 2 * info.level + 'x and more)' +
      (info.unverifiable ? '; blue: unverifiable, no frame could contradict the depth (' +
        (100 * info.unverifiable).toFixed(1) + ' %)' : '');
    viewer.stage.appendChild(legend);

    var on = false;
    function toggle(value) {
      on = value == null ? !on : Boolean(value);
      layer.style.display = on ? 'block' : 'none';
      legend.style.display = on ? 'block' : 'none';
      button.setAttribute('aria-pressed', String(on));
      if (on) viewer.container.setAttribute('data-residual', 'on');
      else viewer.container.removeAttribute('data-residual');
    }
    function onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var tag = e.target && e.target.tagName ? e.target.tagName.toLowerCase() : '';
      if (tag === 'textarea' || (tag === 'input' && e.target.type !== 'range')) return;
      if (e.key === 'r' || e.key === 'R') { toggle(); e.preventDefault(); }
    }
    function onClick() { toggle(); }
    var keyTarget = options.keyboardTarget || viewer.container;
    button.addEventListener('click', onClick);
    keyTarget.addEventListener('keydown', onKey);
    toggle(false);
    return {
      toggle: toggle,
      shown: function () { return on; },
      destroy: function () {
        button.removeEventListener('click', onClick);
        keyTarget.removeEventListener('keydown', onKey);
        [layer, button, legend].forEach(function (e) { if (e.parentNode) e.parentNode.removeChild(e); });
      }
    };
  }

  return { version: 1, attach: attach };
});
