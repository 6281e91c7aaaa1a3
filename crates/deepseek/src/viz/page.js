// DeepSeek-Visualizer page script: draws the JSON in #viz-data (kind "model" or "run").
// Written for plain browsers, no modules and no network; layout by the inlined dagre.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('viz-data').textContent);
  var root = document.getElementById('viz');

  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function sv(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v !== 'number') return String(v);
    if (v === 0) return '0';
    var a = Math.abs(v);
    return (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : v.toPrecision(4);
  }
  function shape(t) { return '[' + t.shape.join(', ') + '] ' + t.dtype; }

  // ---------------------------------------------------------------- line charts (SVG)
  // series: [{name, color, points: [[x, y], ...], dots}]
  function lineChart(parent, name, title, series, opts) {
    opts = opts || {};
    var W = 620, H = 240, L = 64, R = 24, T = 22, B = 30;
    var box = el('div', { 'class': 'chart-box' }, parent);
    var svg = sv('svg', { 'class': 'chart', 'data-chart': name, width: W, height: H }, box);
    sv('text', { x: L, y: 14, 'font-weight': 'bold' }, svg, title);
    var pts = [];
    series.forEach(function (s) { s.points = s.points.filter(function (p) {
      return p[1] !== null && isFinite(p[1]) && (!opts.logy || p[1] > 0); });
      pts = pts.concat(s.points); });
    if (!pts.length) { sv('text', { x: L, y: H / 2 }, svg, 'no values recorded'); return svg; }
    var ty = opts.logy ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return ty(p[1]); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x1 = x0 + 1; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    var pad = (y1 - y0) * 0.05, lo = y0; y0 -= pad; y1 += pad;
    if (!opts.logy && lo >= 0 && y0 < 0) y0 = 0;
    var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (y) { return T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B); };
    var g = sv('g', { 'class': 'grid' }, svg), ax = sv('g', { 'class': 'axis' }, svg);
    for (var i = 0; i <= 4; i++) {
      var yv = y0 + (y1 - y0) * i / 4, yp = T + (1 - i / 4) * (H - T - B);
      sv('line', { x1: L, x2: W - R, y1: yp, y2: yp }, g);
      sv('text', { x: L - 4, y: yp + 4, 'text-anchor': 'end' }, ax, fmt(opts.logy ? Math.pow(10, yv) : yv));
      var xv = x0 + (x1 - x0) * i / 4, xp = sx(xv);
      sv('text', { x: xp, y: H - B + 14, 'text-anchor': 'middle' }, ax, String(Math.round(xv)));
    }
    sv('line', { x1: L, x2: L, y1: T, y2: H - B }, ax);
    sv('line', { x1: L, x2: W - R, y1: H - B, y2: H - B }, ax);
    sv('text', { x: W - R, y: H - 2, 'text-anchor': 'end' }, ax, opts.xlabel || 'step');
    series.forEach(function (s, k) {
      if (!s.points.length) return;
      if (s.dots) {
        s.points.forEach(function (p) {
          sv('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: s.color, 'data-series': s.name }, svg);
        });
      } else {
        var d = s.points.map(function (p, j) { return (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1); }).join('');
        sv('path', { 'class': 'line', d: d, stroke: s.color, 'data-series': s.name, 'data-points': s.points.length }, svg);
      }
      sv('text', { x: W - R - 4, y: T + 12 + 13 * k, 'text-anchor': 'end', style: 'fill:' + s.color }, svg, s.name);
    });
    return svg;
  }

  function histogram(parent, h, label, id) {
    var W = 200, H = 90, n = h.counts.length, max = Math.max.apply(null, h.counts) || 1;
    var box = el('div', { 'class': 'hist', 'data-node': id }, parent);
    el('div', {}, box, label);
    var svg = sv('svg', { width: W, height: H }, box);
    h.counts.forEach(function (c, i) {
      var bh = c / max * (H - 16);
      sv('rect', { x: i * W / n, y: H - 14 - bh, width: Math.max(W / n - 1, 1), height: bh }, svg);
    });
    sv('text', { x: 0, y: H - 2 }, svg, fmt(h.min));
    sv('text', { x: W, y: H - 2, 'text-anchor': 'end' }, svg, fmt(h.max));
  }

  function heat(parent, m, module, head) {
    var rows = m.length, cols = rows ? m[0].length : 0;
    var cell = Math.max(3, Math.floor(160 / Math.max(rows, cols, 1)));
    var c = el('canvas', { 'class': 'heat', width: cols * cell, height: rows * cell,
      'data-module': module, 'data-head': head, 'data-rows': rows, 'data-cols': cols }, parent);
    var ctx = c.getContext('2d'), mx = 0;
    m.forEach(function (r) { r.forEach(function (v) { if (v > mx) mx = v; }); });
    m.forEach(function (r, i) {
      r.forEach(function (v, j) {
        var t = mx > 0 ? v / mx : 0;
        ctx.fillStyle = 'rgb(' + Math.round(255 - 225 * t) + ',' + Math.round(255 - 160 * t) + ',' + Math.round(255 - 60 * t) + ')';
        ctx.fillRect(j * cell, i * cell, cell, cell);
      });
    });
  }

  // ---------------------------------------------------------------- attention heat maps
  // One heat map (query × key) per head of each recorded attention module.
  function drawAttention(list) {
    if (!list.length) return;
    el('h2', {}, root, 'Attention weights');
    list.forEach(function (a) {
      var box = el('div', { 'class': 'attn', 'data-module': a.module }, root);
      el('h3', {}, box, a.module + ' (' + a.type + '), sample ' + a.batch + ': ' + a.heads.length + ' heads, query × key');
      var hs = el('div', { 'class': 'heads' }, box);
      a.heads.forEach(function (m, h) {
        var d = el('div', { 'class': 'head' }, hs);
        heat(d, m, a.module, h);
        el('div', {}, d, 'head ' + h);
      });
    });
  }

  // The page of deepseek.viz.attention: only the heat maps.
  function renderAttention() {
    var list = data.attention || [];
    var heads = 0;
    list.forEach(function (a) { heads += a.heads.length; });
    document.getElementById('summary').textContent = list.length + ' attention modules, ' +
      heads + ' heads' + (data.tokens ? ' — ' + data.tokens.join(' ') : '');
    if (!list.length) el('p', { id: 'no-attention' }, root, 'The model ran no attention module.');
    drawAttention(list);
  }

  // ---------------------------------------------------------------- model graph
  function renderModel() {
    var nodes = data.nodes || [], modules = data.modules || [], th = data.thresholds || {};
    var byName = {};
    modules.forEach(function (m) { byName[m.name] = m; });
    var hasOps = {};
    nodes.forEach(function (n) {
      for (var m = n.module; m && byName[m]; m = byName[m].parent) hasOps[m] = true;
    });
    var collapsed = {};
    function depth(name) { var d = 0; for (var m = name; m && byName[m]; m = byName[m].parent) d++; return d; }
    if (nodes.length > 250) modules.forEach(function (m) { if (depth(m.name) >= 2) collapsed[m.name] = true; });
    // The outermost collapsed module containing `name`, or null.
    function collapsedOf(name) {
      var r = null;
      for (var m = name; m && byName[m]; m = byName[m].parent) if (collapsed[m]) r = m;
      return r;
    }
    document.getElementById('summary').textContent = nodes.length + ' ops, ' +
      modules.length + ' modules, ' + (data.params || []).length + ' parameters' +
      (data.backward ? ', gradients from a backward pass (vanishing < ' + fmt(th.vanishing) +
        ', exploding > ' + fmt(th.exploding) + ')' : '');

    el('h2', {}, root, 'Graph');
    var bar = el('div', { 'class': 'toolbar' }, root);
    var legend = el('span', { 'class': 'legend' }, bar);
    el('span', { 'class': 'vanishing' }, legend, 'vanishing gradient');
    el('span', { 'class': 'exploding' }, legend, 'exploding gradient');
    var bAll = el('button', { id: 'expand-all' }, bar, 'expand all');
    var bNone = el('button', { id: 'collapse-all' }, bar, 'collapse all');
    var wrap = el('div', { id: 'graph-wrap' }, root);
    bAll.onclick = function () { collapsed = {}; draw(); };
    bNone.onclick = function () {
      collapsed = {};
      modules.forEach(function (m) { if (!m.parent) collapsed[m.name] = true; });
      draw();
    };

    function opLabel(n) {
      var lines = [n.op + (n.module ? '  (' + n.module + ')' : '')];
      n.outputs.forEach(function (o) {
        lines.push('→ ' + shape(o) + (o.grad_norm !== null && o.grad_norm !== undefined ? '  ‖g‖ ' + fmt(o.grad_norm) : ''));
      });
      return lines;
    }
    function nodeFlag(n) {
      var f = null;
      n.outputs.forEach(function (o) { if (o.flag === 'exploding' || (o.flag && !f)) f = o.flag; });
      return f;
    }

    function draw() {
      wrap.textContent = '';
      var g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
      g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 34, marginx: 10, marginy: 10 });
      g.setDefaultEdgeLabel(function () { return {}; });
      var rep = {};
      modules.forEach(function (m) {
        if (!hasOps[m.name]) return;
        var c = collapsedOf(m.name);
        if (c && c !== m.name) return;
        if (c === m.name) {
          var lbl = [m.name + ' : ' + m.type, '(collapsed, click to expand)'];
          g.setNode('m:' + m.name, { kind: 'collapsed', module: m.name, lines: lbl,
            width: 7 * Math.max.apply(null, lbl.map(function (s) { return s.length; })) + 16, height: 36 });
        } else {
          g.setNode('m:' + m.name, { kind: 'cluster', module: m.name, title: m.name + ' : ' + m.type, paddingTop: 22 });
        }
      });
      modules.forEach(function (m) {
        if (g.hasNode('m:' + m.name) && m.parent && g.hasNode('m:' + m.parent) && !collapsedOf(m.parent))
          g.setParent('m:' + m.name, 'm:' + m.parent);
      });
      nodes.forEach(function (n) {
        var c = n.module ? collapsedOf(n.module) : null;
        if (c) { rep[n.id] = 'm:' + c; return; }
        var lines = opLabel(n);
        rep[n.id] = 'n:' + n.id;
        g.setNode(rep[n.id], { kind: 'op', node: n, lines: lines,
          width: 7 * Math.max.apply(null, lines.map(function (s) { return s.length; })) + 16,
          height: 15 * lines.length + 10 });
        if (n.module && g.hasNode('m:' + n.module)) g.setParent(rep[n.id], 'm:' + n.module);
      });
      nodes.forEach(function (n) {
        n.inputs.forEach(function (i) {
          if (i.from === null || i.from === undefined || rep[i.from] === undefined) return;
          var a = rep[i.from], b = rep[n.id];
          if (a !== b && !g.hasEdge(a, b)) g.setEdge(a, b);
        });
      });
      dagre.layout(g);
      var gg = g.graph();
      var svg = sv('svg', { id: 'graph', width: Math.ceil(gg.width || 100), height: Math.ceil(gg.height || 100) }, wrap);
      var defs = sv('defs', {}, svg);
      var mk = sv('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, defs);
      sv('path', { d: 'M0,0L10,5L0,10z', fill: '#7a8794' }, mk);
      var layerC = sv('g', {}, svg), layerE = sv('g', {}, svg), layerN = sv('g', {}, svg);
      g.nodes().forEach(function (id) {
        var v = g.node(id);
        if (!v || v.kind !== 'cluster') return;
        var c = sv('g', { 'class': 'cluster', 'data-module': v.module }, layerC);
        sv('rect', { x: v.x - v.width / 2, y: v.y - v.height / 2, width: v.width, height: v.height, rx: 6 }, c);
        var t = sv('text', { 'class': 'title', x: v.x - v.width / 2 + 6, y: v.y - v.height / 2 + 11 }, c, '▾ ' + v.title);
        t.addEventListener('click', function () { collapsed[v.module] = true; draw(); });
      });
      g.edges().forEach(function (e) {
        var pts = g.edge(e).points || [];
        var d = pts.map(function (p, j) { return (j ? 'L' : 'M') + p.x.toFixed(1) + ',' + p.y.toFixed(1); }).join('');
        sv('path', { d: d }, sv('g', { 'class': 'edge', 'data-from': e.v, 'data-to': e.w }, layerE));
      });
      g.nodes().forEach(function (id) {
        var v = g.node(id);
        if (!v || (v.kind !== 'op' && v.kind !== 'collapsed')) return;
        var cls = 'op';
        var attrs = {};
        if (v.kind === 'op') {
          var f = nodeFlag(v.node);
          if (f) cls += ' ' + f;
          if (v.node.op === 'input') cls += ' input';
          attrs = { 'data-id': v.node.id, 'data-op': v.node.op };
        } else {
          cls += ' collapsed';
          attrs = { 'data-module': v.module };
        }
        attrs['class'] = cls;
        var grp = sv('g', attrs, layerN);
        sv('rect', { x: v.x - v.width / 2, y: v.y - v.height / 2, width: v.width, height: v.height, rx: 4 }, grp);
        v.lines.forEach(function (s, k) {
          sv('text', { x: v.x - v.width / 2 + 8, y: v.y - v.height / 2 + 16 + 15 * k }, grp, s);
        });
        if (v.kind === 'collapsed') grp.addEventListener('click', function () { delete collapsed[v.module]; draw(); });
        if (v.kind === 'op') {
          var tip = v.node.op + '\ninputs: ' + v.node.inputs.map(shape).join('; ') +
            '\noutputs: ' + v.node.outputs.map(shape).join('; ');
          sv('title', {}, grp, tip);
        }
      });
    }
    // page.html#folded opens with the top-level modules collapsed.
    if (location.hash === '#folded') bNone.onclick(); else draw();

    el('h2', {}, root, 'Ops');
    var t = el('table', { id: 'ops' }, root);
    var hr = el('tr', {}, t);
    ['#', 'op', 'module', 'inputs', 'outputs', '‖grad‖', ''].forEach(function (h) { el('th', {}, hr, h); });
    nodes.forEach(function (n) {
      var f = nodeFlag(n);
      var tr = el('tr', { 'data-id': n.id, 'data-op': n.op, 'class': f || '' }, t);
      el('td', {}, tr, String(n.id));
      el('td', {}, tr, n.op);
      el('td', {}, tr, n.module || '');
      el('td', {}, tr, n.inputs.map(function (i) { return (i.name ? i.name + ' ' : '') + shape(i); }).join('; '));
      el('td', {}, tr, n.outputs.map(shape).join('; '));
      el('td', {}, tr, n.outputs.map(function (o) { return fmt(o.grad_norm); }).join('; '));
      el('td', {}, tr, f || '');
    });

    if ((data.params || []).length) {
      el('h2', {}, root, 'Parameters');
      var pt = el('table', { id: 'params' }, root);
      var ph = el('tr', {}, pt);
      ['name', 'shape', '‖grad‖', ''].forEach(function (h) { el('th', {}, ph, h); });
      data.params.forEach(function (p) {
        var tr = el('tr', { 'data-param': p.name, 'class': p.flag || '' }, pt);
        el('td', {}, tr, p.name);
        el('td', {}, tr, shape(p));
        el('td', {}, tr, fmt(p.grad_norm));
        el('td', {}, tr, p.flag || '');
      });
    }

    drawAttention(data.attention || []);

    var hists = nodes.filter(function (n) { return n.hist; });
    if (hists.length) {
      el('h2', {}, root, 'Activation histograms');
      var grid = el('div', { 'class': 'grid', id: 'histograms' }, root);
      hists.forEach(function (n) { histogram(grid, n.hist, '#' + n.id + ' ' + n.op + (n.module ? ' (' + n.module + ')' : ''), n.id); });
    }
  }

  // ---------------------------------------------------------------- training run
  function renderRun() {
    var steps = data.steps || [];
    function zip(ys) { return steps.map(function (s, i) { return [s, ys[i]]; }); }
    var loss = data.loss || [];
    var last = null;
    loss.forEach(function (v) { if (v !== null) last = v; });
    var vals = (data.val || []).map(function (p) { return p[1]; });
    document.getElementById('summary').textContent = steps.length + ' steps' +
      (last !== null ? ', last training loss ' + fmt(last) : '') +
      (vals.length ? ', best validation loss ' + fmt(Math.min.apply(null, vals)) : '') +
      (data.final_val ? ', final validation loss ' + fmt(data.final_val[1]) : '') +
      (data.dir ? ' — ' + data.dir : '');
    el('h2', {}, root, 'Loss');
    var smooth = [], m = 0, w = 1;
    zip(loss).forEach(function (p) {
      if (p[1] === null || !isFinite(p[1])) return;
      m = 0.9 * m + 0.1 * p[1]; w *= 0.9; smooth.push([p[0], m / (1 - w)]);
    });
    var ls = [{ name: 'train loss', color: '#9ab6d8', points: zip(loss) },
      { name: 'train loss (smoothed)', color: '#1f5fd1', points: smooth },
      { name: 'validation loss', color: '#d16b1f', points: (data.val || []).slice(), dots: true }];
    if (data.final_val) ls.push({ name: 'final validation', color: '#a01fd1', points: [data.final_val], dots: true });
    lineChart(root, 'loss', 'loss', ls);
    el('h2', {}, root, 'Learning rate');
    lineChart(root, 'lr', 'learning rate', [{ name: 'lr', color: '#2c8c3c', points: zip(data.lr || []) }]);
    el('h2', {}, root, 'Gradient norm');
    var gn = data.grad_norm || [];
    if (gn.some(function (v) { return v !== null; })) {
      lineChart(root, 'grad_norm', 'gradient 2-norm before clipping (log scale)',
        [{ name: 'grad norm', color: '#c0392b', points: zip(gn) }], { logy: true });
    } else {
      el('p', { id: 'no-grad-norm' }, root, 'The run did not record gradient norms.');
    }
  }

  if (data.kind === 'model') renderModel();
  else if (data.kind === 'attention') renderAttention();
  else renderRun();
  document.body.setAttribute('data-rendered', '1');
})();
