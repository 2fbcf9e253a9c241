// ccr-setup dashboard. Plain JavaScript, no build step. Every element is made with DOM
// calls and filled with textContent, so nothing from the ledger or the config is ever
// parsed as HTML (the Content-Security-Policy forbids inline code anyway). The one
// exception is the savings chart: SVG drawn by the proxy from numbers, parsed with
// DOMParser as an inert SVG document.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`class`, `data-*`, `title`, …) and children. */
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Formats, as `ccr-setup stats` prints them.
  const fmt = {
    usd(v) {
      const a = Math.abs(v);
      const sign = v < 0 ? '-' : '';
      if (a === 0) return '$0.00';
      return a < 1 ? `${sign}$${a.toFixed(4)}` : `${sign}$${a.toFixed(2)}`;
    },
    tokens(n) {
      if (n < 1000) return String(n);
      if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
      return `${(n / 1e6).toFixed(2)}M`;
    },
    pct(v) { return `${(v * 100).toFixed(1)}%`; },
    ms(v) {
      if (v === null || v === undefined) return '—';
      return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
    },
    time(ms) {
      const d = new Date(ms);
      const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
      if (d.toDateString() === new Date().toDateString()) return t;
      const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
      return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`;
    },
    dateTime(ms) {
      const d = new Date(ms);
      return `${d.toLocaleString()} (${d.toISOString()})`;
    },
  };

  async function api(path, method) {
    const r = await fetch(path, { method: method || 'GET', credentials: 'same-origin', headers: { accept: 'application/json' } });
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      const message = body && body.error && body.error.message;
      throw new Error(message || `${path}: HTTP ${r.status}`);
    }
    return body;
  }

  function banner(message) {
    const b = $('banner');
    b.textContent = message || '';
    b.hidden = !message;
  }

  // ---- Tabs ----------------------------------------------------------------------
  const PAGES = ['overview', 'live', 'setup'];
  function currentPage() {
    const name = location.hash.slice(1);
    return PAGES.includes(name) ? name : 'overview';
  }
  function show() {
    const name = currentPage();
    for (const p of PAGES) {
      $(`page-${p}`).hidden = p !== name;
      $(`tab-${p}`).classList.toggle('active', p === name);
    }
    if (name === 'overview') loadOverview();
    if (name === 'setup') loadSetup(false);
  }

  // ---- Overview ------------------------------------------------------------------
  /** A figure the tests can read: its raw value rides along as data-value. */
  function figure(tag, key, value, text, cls) {
    return el(tag, { class: cls, 'data-key': key, 'data-value': JSON.stringify(value) }, text);
  }

  function windowCard(w, o) {
    const t = w.totals;
    const kv = el('dl', { class: 'kv' });
    const row = (label, node) => kv.append(el('dt', {}, label), node);
    row('Requests', figure('dd', 'requests', t.requests, t.requests.toLocaleString()));
    row('Local share', figure('dd', 'local_share', t.local_share,
      `${fmt.pct(t.local_share)} · ${t.local_requests} local / ${t.cloud_requests} cloud`));
    row('Cloud spend', figure('dd', 'cloud_cost_usd', t.cloud_cost_usd, fmt.usd(t.cloud_cost_usd)));
    row('Would have cost', figure('dd', 'would_have_cost_usd', t.would_have_cost_usd,
      fmt.usd(t.would_have_cost_usd)));
    if (o.local_per_hour_usd > 0) {
      row('Local cost', figure('dd', 'local_cost_usd', t.local_cost_usd, fmt.usd(t.local_cost_usd)));
    }
    row('Local failures', figure('dd', 'local_failure_rate', t.local_failure_rate,
      `${fmt.pct(t.local_failure_rate)} (${t.local_failures} of ${t.local_attempts})`));
    if (t.context_edited_requests > 0) {
      row('Context cleared', figure('dd', 'context_cleared_blocks', t.context_cleared_blocks,
        `${t.context_cleared_blocks} old tool results in ${t.context_edited_requests} requests`));
    }
    const share = el('div', { class: 'share', title: `local share ${fmt.pct(t.local_share)}` }, el('span'));
    share.firstChild.style.width = `${Math.round(t.local_share * 1000) / 10}%`;
    return el('div', { class: 'card window', 'data-window': w.id },
      el('h3', {}, w.label),
      figure('div', 'savings_usd', t.savings_usd, fmt.usd(t.savings_usd),
        t.savings_usd < 0 ? 'hero negative' : 'hero'),
      el('div', { class: 'hero-label' }, `saved against ${o.compare_to}`),
      share,
      kv);
  }

  function providerRow(p) {
    const cell = (key, value, text) => figure('td', key, value, text, 'num');
    return el('tr', { 'data-provider': p.provider },
      el('td', { class: 'model' }, p.provider),
      el('td', {}, el('span', { class: `tag ${p.local ? 'local' : 'cloud'}` }, p.local ? 'local' : 'cloud')),
      cell('requests', p.requests, p.requests.toLocaleString()),
      cell('median_ttft_ms', p.median_ttft_ms, fmt.ms(p.median_ttft_ms)),
      cell('tokens_per_second', p.tokens_per_second,
        p.tokens_per_second === null ? '—' : p.tokens_per_second.toFixed(1)),
      cell('failure_rate', p.failure_rate, `${fmt.pct(p.failure_rate)} (${p.failures})`),
      cell('fallbacks', p.fallbacks, String(p.fallbacks)),
      el('td', { class: 'num muted', title: 'the ledger does not record tool-call repairs' }, '—'));
  }

  function clientRow(g) {
    const t = g.totals;
    const cell = (key, value, text) => figure('td', key, value, text, 'num');
    return el('tr', { 'data-client': g.key },
      el('td', { class: 'model' }, g.key),
      cell('requests', t.requests, t.requests.toLocaleString()),
      cell('tokens', t.input_tokens, `${t.input_tokens.toLocaleString()} / ${t.output_tokens.toLocaleString()}`),
      cell('cloud_cost_usd', t.cloud_cost_usd, fmt.usd(t.cloud_cost_usd)),
      cell('savings_usd', t.savings_usd, fmt.usd(t.savings_usd)));
  }

  function renderChart(svgText) {
    const doc = new DOMParser().parseFromString(svgText, 'image/svg+xml');
    const svg = doc.documentElement;
    const box = $('chart');
    if (svg.nodeName !== 'svg') {
      box.replaceChildren(el('p', { class: 'empty' }, 'The chart could not be drawn.'));
      return;
    }
    box.replaceChildren(document.importNode(svg, true));
  }

  function renderOverview(o) {
    $('windows').replaceChildren(...o.windows.map((w) => windowCard(w, o)));
    renderChart(o.savings_chart_svg);
    const best = o.daily_savings.reduce((a, d) => Math.max(a, d.savings_usd), 0);
    $('chart-note').textContent = `last 30 days · best day ${fmt.usd(best)}`;
    $('providers').tBodies[0].replaceChildren(...o.providers.map(providerRow));
    $('providers-empty').hidden = o.providers.length > 0;
    $('clients-card').hidden = o.clients.length === 0;
    $('clients').tBodies[0].replaceChildren(...o.clients.map(clientRow));
    const p = o.compare_to_price;
    const ledger = o.ledger.enabled
      ? (o.ledger.problem ? ` The ledger has a problem: ${o.ledger.problem}.` : '')
        + (o.ledger.dropped ? ` ${o.ledger.dropped} row(s) could not be recorded.` : '')
      : ' The ledger is off (LEDGER: false): nothing new is recorded.';
    const unpriced = o.unpriced_models.length
      ? ` No price for ${o.unpriced_models.join(', ')} (counted as $0; add it under Pricing).` : '';
    $('overview-foot').replaceChildren(
      `“Would have cost” prices each answered local request at ${o.compare_to} `
      + `($${p.input} / $${p.output} per million tokens in / out); savings subtract the local cost. `
      + 'The same figures as ',
      el('code', {}, 'ccr-setup stats --since 24h|7d|30d'),
      `. Updated ${fmt.time(o.now_ms)}.${ledger}${unpriced}`);
  }

  let overviewBusy = false;
  async function loadOverview() {
    if (overviewBusy) return;
    overviewBusy = true;
    try {
      renderOverview(await api('/ui/api/overview'));
      banner('');
    } catch (e) {
      banner(`Cannot load the overview: ${e.message}`);
    } finally {
      overviewBusy = false;
    }
  }
  let overviewTimer = null;
  function overviewSoon() {
    if (currentPage() !== 'overview' || overviewTimer) return;
    overviewTimer = setTimeout(() => { overviewTimer = null; loadOverview(); }, 1500);
  }

  // ---- Live ----------------------------------------------------------------------
  const MAX_ROWS = 200;
  let rows = []; // newest first
  let selectedKey = null;
  const keyOf = (r) => `${r.started_at_ms}|${r.provider}|${r.model}|${r.duration_ms}|${r.outcome}`;

  function statusTag(r) {
    switch (r.outcome) {
      case 'ok': return el('span', { class: 'tag ok' }, `ok ${r.http_status}`);
      case 'client_cancelled': return el('span', { class: 'tag' }, 'cancelled');
      case 'rejected': return el('span', { class: 'tag warn' }, `rejected ${r.http_status}`);
      default: return el('span', { class: 'tag fail' }, `error ${r.http_status}`);
    }
  }

  function reasonOf(r) {
    const parts = [];
    if (r.fallback_from) parts.push(`fallback from ${r.fallback_from}`);
    if (r.error_kind) parts.push(r.error_kind);
    return parts.join(' · ');
  }

  function whereTag(r) {
    if (r.local === null) return el('span', { class: 'tag' }, 'refused');
    return el('span', { class: `tag ${r.local ? 'local' : 'cloud'}` }, r.local ? 'local' : 'cloud');
  }

  function liveRow(r, fresh) {
    const est = r.tokens_estimated ? '~' : '';
    const target = r.provider === '-' ? '—' : `${r.provider},${r.model}`;
    const tr = el('tr', { class: fresh ? 'fresh' : undefined, 'data-key': keyOf(r), 'data-outcome': r.outcome },
      el('td', {}, fmt.time(r.started_at_ms)),
      el('td', {}, r.scenario),
      el('td', { class: 'model' }, target),
      el('td', {}, whereTag(r)),
      el('td', { class: 'num', title: r.tokens_estimated ? 'estimated by the proxy' : undefined },
        `${est}${fmt.tokens(r.input_tokens)} / ${est}${fmt.tokens(r.output_tokens)}`),
      el('td', { class: 'num' }, fmt.tokens(r.cache_read_tokens)),
      el('td', { class: 'num' }, fmt.ms(r.duration_ms)),
      el('td', {}, statusTag(r)),
      el('td', { class: 'reason', title: reasonOf(r) }, reasonOf(r)));
    if (keyOf(r) === selectedKey) tr.classList.add('selected');
    tr.addEventListener('click', () => showDetail(r, tr));
    return tr;
  }

  function renderLive(freshKey) {
    $('live-table').tBodies[0].replaceChildren(...rows.map((r) => liveRow(r, keyOf(r) === freshKey)));
    $('live-empty').hidden = rows.length > 0;
  }

  function addRows(incoming) {
    const seen = new Set(rows.map(keyOf));
    for (const r of incoming) if (!seen.has(keyOf(r))) rows.push(r);
    rows.sort((a, b) => b.started_at_ms - a.started_at_ms);
    rows = rows.slice(0, MAX_ROWS);
  }

  function showDetail(r, tr) {
    selectedKey = keyOf(r);
    for (const other of document.querySelectorAll('#live-table tr.selected')) other.classList.remove('selected');
    tr.classList.add('selected');
    const genMs = r.stream && r.ttft_ms !== null ? r.duration_ms - r.ttft_ms : null;
    const facts = [
      ['Started', fmt.dateTime(r.started_at_ms)],
      ['Session', r.session_id || '—'],
      ['Routing rule', r.scenario],
      ['Provider', r.provider],
      ['Model', r.model],
      ['Where', r.local === null ? 'refused before routing' : (r.local ? 'local' : 'cloud')],
      ['Fallback from', r.fallback_from || '—'],
      ['Streamed', r.stream ? 'yes' : 'no'],
      ['Input tokens', `${r.input_tokens.toLocaleString()}${r.tokens_estimated ? ' (estimated by the proxy)' : ''}`],
      ['Output tokens', r.output_tokens.toLocaleString()],
      ['Cache read / write', `${r.cache_read_tokens.toLocaleString()} / ${r.cache_write_tokens.toLocaleString()}`],
      ['Time to first token', fmt.ms(r.ttft_ms)],
      ['Duration', fmt.ms(r.duration_ms)],
      ['Tokens/s', genMs > 0 && r.output_tokens > 0 ? (r.output_tokens * 1000 / genMs).toFixed(1) : '—'],
      ['Outcome', r.outcome],
      ['Failure', r.error_kind || '—'],
      ['HTTP status', String(r.http_status)],
    ];
    $('detail-list').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('detail').hidden = false;
  }

  async function loadRecent() {
    try {
      addRows(await api('/ui/api/recent'));
      renderLive(null);
    } catch (e) {
      banner(`Cannot load recent requests: ${e.message}`);
    }
  }

  function setLive(connected, text) {
    $('live-status').textContent = text;
    $('live-status').className = connected ? 'pill ok' : 'pill warn';
    $('live-dot').classList.toggle('on', connected);
  }

  function connectLive() {
    const events = new EventSource('/ui/events');
    events.addEventListener('ready', () => {
      setLive(true, 'live');
      loadRecent(); // after subscribing, so nothing finishes unseen in between
    });
    events.addEventListener('request', (e) => {
      const r = JSON.parse(e.data);
      addRows([r]);
      renderLive(keyOf(r));
      overviewSoon();
    });
    events.addEventListener('lagged', (e) => {
      const { skipped } = JSON.parse(e.data);
      setLive(true, `live (${skipped} skipped while this tab was busy)`);
    });
    events.addEventListener('error', () => setLive(false, 'reconnecting…'));
  }

  // ---- Setup ---------------------------------------------------------------------
  const MARK = { ok: '✓', warn: '!', fail: '✗' };
  const worst = (statuses) => (statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'ok');

  function renderSetup(s) {
    const byId = Object.fromEntries(s.checks.map((c) => [c.id, c]));
    const o = s.ollama;
    const loaded = o.loaded;
    const ctx = loaded && loaded.context_length;
    const ollamaFacts = [
      ['Server', o.url],
      ['Version', o.version || `not answering: ${o.error}`],
      ['Run by', o.owner || '—'],
      ['Model', o.model],
      ['Loaded', loaded ? loaded.name : (o.loaded_note || '—')],
      ['Effective context', ctx ? `${ctx.toLocaleString()} tokens` : '—'],
      ['Configured context', `${o.configured_context.toLocaleString()} tokens`],
    ];
    $('ollama').replaceChildren(...ollamaFacts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-key': k }, v)]));
    const ollamaStatus = worst(['ollama.server', 'ollama.model', 'ollama.context']
      .map((id) => byId[id] && byId[id].status).filter(Boolean));
    $('ollama-pill').textContent = ollamaStatus;
    $('ollama-pill').className = `pill ${ollamaStatus}`;

    const c = s.config;
    $('config-path').textContent = c.path;
    const problems = c.problems.map((p) => el('li', {},
      el('div', {}, el('strong', { class: 'mono' }, p.path), ` ${p.message}`),
      el('div', { class: 'fix' }, `fix: ${p.fix}`)));
    if (c.error) problems.unshift(el('li', {}, c.error));
    $('problems').replaceChildren(...problems);
    $('config-json').textContent = c.redacted ? JSON.stringify(c.redacted, null, 2) : '(not readable)';
    const configStatus = byId['config.valid'] ? byId['config.valid'].status : (c.problems.length ? 'fail' : 'ok');
    $('config-pill').textContent = c.problems.length ? `${c.problems.length} problem(s)` : (configStatus === 'ok' ? 'valid' : configStatus);
    $('config-pill').className = `pill ${configStatus}`;

    $('checks').replaceChildren(...s.checks.map((k) => el('li', { class: k.status, 'data-check': k.id, 'data-status': k.status },
      el('span', { class: 'mark', title: k.status }, MARK[k.status] || '?'),
      el('span', { class: 'id' }, k.id),
      el('div', { class: 'body' },
        el('div', {}, k.summary),
        k.detail && k.status !== 'ok' ? el('div', { class: 'detail-text' }, k.detail) : null,
        k.fix ? el('div', { class: 'fix' }, k.fix) : null))));
    const count = (st) => s.checks.filter((k) => k.status === st).length;
    $('checks-summary').textContent =
      `${s.checks.length} checks: ${count('ok')} ok, ${count('warn')} warning(s), ${count('fail')} failure(s)`;
    $('setup-note').replaceChildren(
      `Checked at ${fmt.time(s.checked_at_ms)} in ${fmt.ms(s.duration_ms)}: the same checks as `,
      el('code', {}, 'ccr-setup doctor'), '.');
  }

  let setupBusy = false;
  let setupAt = 0;
  async function loadSetup(force) {
    if (setupBusy || (!force && Date.now() - setupAt < 15000)) return;
    setupBusy = true;
    $('setup-note').textContent = 'Running the checks…';
    try {
      renderSetup(await api('/ui/api/setup', force ? 'POST' : 'GET'));
      setupAt = Date.now();
      banner('');
    } catch (e) {
      banner(`Cannot run the checks: ${e.message}`);
    } finally {
      setupBusy = false;
    }
  }

  // ---- Start ---------------------------------------------------------------------
  $('detail-close').addEventListener('click', () => {
    $('detail').hidden = true;
    selectedKey = null;
    for (const tr of document.querySelectorAll('#live-table tr.selected')) tr.classList.remove('selected');
  });
  $('recheck').addEventListener('click', () => loadSetup(true));
  window.addEventListener('hashchange', show);
  setInterval(() => { if (currentPage() === 'overview' && !document.hidden) loadOverview(); }, 30000);
  show();
  connectLive();
})();
