// camtrust officer console: vanilla JS, no frameworks, nothing fetched but this CA's /officer/api/.
// Everything shown is set with textContent or SVG attributes: no HTML is built from data.
'use strict';

const API = '/officer/api/';
const PAGE = 25;
const $ = (id) => document.getElementById(id);
const state = { role: null, offset: 0, total: 0, query: null, detail: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text != null) e.textContent = String(text);
  return e;
}

async function api(path, options) {
  const res = await fetch(API + path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options || {}));
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || (res.status + ' ' + res.statusText));
  return body;
}

function show(text, isError) {
  const m = $('message');
  m.textContent = text;
  m.className = 'message' + (isError ? ' error' : '');
  m.hidden = !text;
}

const when = (iso) => (iso ? iso.replace('T', ' ').replace('Z', ' UTC') : '—');
const whenMs = (ms) => when(new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));
function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
  if (!rows.length) tbody.append(el('tr', {}, el('td', { colspan: '8' }, 'nothing')));
}

// ---- search ----
function searchQuery(offset) {
  const q = new URLSearchParams();
  for (const input of $('search-form').querySelectorAll('input, select')) {
    let v = input.value.trim();
    if (!v) continue;
    if (input.name === 'to') { // the form's "to" day is inclusive; the API's bound is exclusive
      const d = new Date(v + 'T00:00:00Z');
      d.setUTCDate(d.getUTCDate() + 1);
      v = d.toISOString().slice(0, 10);
    }
    q.set(input.name, v);
  }
  q.set('limit', String(PAGE));
  q.set('offset', String(offset));
  return q;
}

async function search(offset) {
  state.offset = offset;
  try {
    const r = await api('search?' + searchQuery(offset).toString());
    state.total = r.total;
    const rows = r.results.map((c) => {
      const tr = el('tr', { 'data-serial': c.cert_serial },
        el('td', {}, el('strong', {}, c.device_serial)), el('td', {}, el('code', {}, c.cert_serial)),
        el('td', {}, c.profile), el('td', {}, c.station || '(renewal)'), el('td', {}, c.order == null ? '' : c.order),
        el('td', {}, c.model), el('td', {}, when(c.issued_at)),
        el('td', {}, el('span', { class: 'badge ' + c.status }, c.status)));
      tr.addEventListener('click', () => openDetail(c.cert_serial));
      return tr;
    });
    fill($('results').tBodies[0], rows);
    const last = Math.min(offset + r.results.length, r.total);
    $('search-summary').textContent = r.total ? `${offset + 1}–${last} of ${r.total} certificates` : 'No certificate matches.';
    $('prev-btn').disabled = offset === 0;
    $('next-btn').disabled = last >= r.total;
  } catch (e) {
    show('Search refused: ' + e.message, true);
  }
}

// ---- one certificate ----
const DETAIL_FIELDS = [
  ['Device serial', 'device_serial'], ['Status', 'status'], ['Revoked at', 'revoked_at'],
  ['Revocation reason', 'revocation_reason'], ['Subject', 'subject'], ['serialNumber', 'subject_serial_number'],
  ['Issuer', 'issuer'], ['Not before', 'not_before'], ['Not after', 'not_after'], ['Key', 'key_type'],
  ['Key usage', 'key_usage'], ['Extended key usage', 'ext_key_usage'], ['Subject alt. names', 'san'],
  ['Profile', 'profile'], ['Station', 'station'], ['Order', 'order'], ['Model', 'model'], ['Issued at', 'issued_at'],
  ['SHA-256', 'sha256'], ['Chain', 'chain_status'], ['Audit entry', 'audit_seq'], ['Log inclusion', 'log_inclusion'],
];

async function openDetail(serial) {
  try {
    const d = await api('cert/' + encodeURIComponent(serial));
    state.detail = d;
    $('d-serial').textContent = d.cert_serial;
    $('d-status').textContent = d.status;
    $('d-status').className = 'badge ' + d.status;
    const items = [];
    for (const [label, key] of DETAIL_FIELDS) {
      let v = d[key];
      if (key.endsWith('_at') || key.startsWith('not_')) v = when(v);
      if (key === 'audit_seq') v = v ? '#' + v + ' (cert.issue, hash-chained)' : 'not found';
      if (key === 'order' && !v) v = '(renewal)';
      items.push(el('dt', {}, label), el('dd', {}, v === '' || v == null ? '—' : v));
    }
    $('d-fields').replaceChildren(...items);
    $('d-pem').textContent = [d.pem].concat(d.chain).join('');
    $('revoke-open').hidden = state.role !== 'officer' || d.status === 'revoked';
    $('detail-view').hidden = false;
    $('detail-view').scrollIntoView({ block: 'start' });
  } catch (e) {
    show('Cannot open certificate: ' + e.message, true);
  }
}

// ---- revocation, with a typed confirmation ----
function openRevoke() {
  const d = state.detail;
  $('r-serial').textContent = d.cert_serial;
  $('r-device').textContent = d.device_serial;
  $('r-confirm').value = '';
  $('r-error').textContent = '';
  $('r-submit').disabled = true;
  $('revoke-dialog').showModal();
  $('r-confirm').focus();
}

async function submitRevoke(ev) {
  ev.preventDefault();
  const d = state.detail;
  if ($('r-confirm').value.trim().toLowerCase() !== d.cert_serial) return;
  $('r-submit').disabled = true;
  try {
    const r = await api('revoke', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ serial: d.cert_serial, reason: $('r-reason').value }),
    });
    $('revoke-dialog').close();
    const plural = (n) => (n === 1 ? '' : 's');
    const sameKey = r.same_key ? `, and ${r.same_key} other certificate${plural(r.same_key)} of the same key` : '';
    show(`Revoked ${r.revoked} certificate${plural(r.revoked)} (${r.reason})${sameKey}.`, false);
    await Promise.all([openDetail(d.cert_serial), search(state.offset), report()]);
  } catch (e) {
    $('r-error').textContent = e.message;
  }
}

// ---- report: totals, chart, tables ----
const COLORS = ['#1f5fbf', '#d9822b', '#2e9e5b', '#a23b72', '#6b5bd2', '#c23b22', '#3a8fa3', '#8c7a2b'];

function drawChart(days) {
  const box = $('chart');
  if (!days.length) { box.replaceChildren(el('p', { class: 'summary' }, 'No issuance in this period.')); return; }
  const dayList = [...new Set(days.map((d) => d.day))].sort().slice(-60);
  const stations = [...new Set(days.map((d) => d.station || '(renewal)'))].sort();
  const count = new Map(days.map((d) => [d.day + '|' + (d.station || '(renewal)'), d.issued]));
  const totals = dayList.map((day) => stations.reduce((s, st) => s + (count.get(day + '|' + st) || 0), 0));
  const step = Math.max(1, Math.ceil(Math.max(1, ...totals) / 4));
  const max = step * 4; // gridlines on whole numbers
  const W = 900, H = 260, L = 44, B = 40, T = 12, R = 150;
  const bw = (W - L - R) / dayList.length;
  const y = (v) => H - B - (v / max) * (H - B - T);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'issuance per station per day' });
  for (let i = 0; i <= 4; i++) {
    const v = step * i;
    g.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#e3e7ee' }),
      svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, v));
  }
  dayList.forEach((day, i) => {
    let base = 0;
    stations.forEach((st, k) => {
      const n = count.get(day + '|' + st) || 0;
      if (!n) return;
      const w = Math.max(1, Math.min(bw * 0.7, 48));
      const rect = svg('rect', { x: L + i * bw + (bw - w) / 2, width: w, y: y(base + n),
        height: y(base) - y(base + n), fill: COLORS[k % COLORS.length] });
      rect.append(svg('title', {}, `${day} ${st}: ${n}`));
      g.append(rect);
      base += n;
    });
    if (dayList.length <= 12 || i % Math.ceil(dayList.length / 12) === 0)
      g.append(svg('text', { x: L + i * bw + bw / 2, y: H - B + 16, 'text-anchor': 'middle' }, day.slice(5)));
  });
  g.append(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#8a94a6' }));
  stations.forEach((st, k) => {
    g.append(svg('rect', { x: W - R + 16, y: T + k * 18, width: 12, height: 12, fill: COLORS[k % COLORS.length] }),
      svg('text', { x: W - R + 34, y: T + k * 18 + 10 }, st));
  });
  box.replaceChildren(g);
}

async function report() {
  try {
    const r = await api('report');
    const t = r.totals[0] || {};
    const total = (n, label) => el('div', { class: 'total' }, el('b', {}, n), el('span', {}, label));
    // Refusals one client repeats are audited as one counted entry ("N refused from ..."): requests and entries differ.
    const entries = (n) => `in ${n} audit ${n === 1 ? 'entry' : 'entries'}`;
    $('totals').replaceChildren(total(t.issued, 'certificates issued'), total(t.revoked, 'revoked'),
      total(t.denials, `denied requests ${entries(t.denial_entries)}`), total(t.revocation_actions, 'revocation actions'));
    drawChart(r.days);
    // Over a long history the report is each section's first rows, not all of them: say which were cut.
    const limited = (r.limited || []).map((l) => `${l.section} (${l.shown})`);
    if (limited.length)
      $('chart').append(el('p', { class: 'summary', id: 'limited' }, `Only the first rows are shown of: ${limited.join(', ')}.`));
    fill($('stations').tBodies[0], r.stations.map((s) =>
      el('tr', {}, el('td', {}, s.station), el('td', {}, s.issued), el('td', {}, s.revoked),
        // Past its budget a station's refusals are counted, not audited one by one: an officer should look at it.
        el('td', { title: `denied requests ${entries(s.denied_entries)}` }, s.denied,
          ...(s.over_budget ? [' ', el('span', { class: 'badge superseded', 'data-over-budget': s.over_budget },
            `${s.over_budget} past its budget`)] : [])))));
    fill($('orders').tBodies[0], r.orders.map((o) =>
      el('tr', {}, el('td', {}, o.order), el('td', {}, o.station), el('td', {}, o.model), el('td', {}, o.state),
        el('td', {}, `${o.issued} / ${o.serials}`), el('td', {}, o.revoked))));
    const events = (list, ...more) => list.slice(0, 15).map((e) =>
      el('tr', {}, el('td', {}, when(e.time)), el('td', {}, e.actor), el('td', {}, e.action + ' ' + e.subject),
        el('td', { class: 'wrap' }, e.detail), ...more.map((key) => el('td', {}, e[key]))));
    fill($('denials').tBodies[0], events(r.denials, 'requests'));
    fill($('revocations').tBodies[0], events(r.revocations));
  } catch (e) {
    show('Report refused: ' + e.message, true);
  }
}

// ---- the issuance log: newest checkpoint, its witnesses, their reports ----
function ago(s) {
  if (s == null) return '—';
  if (s < 120) return `${Math.max(0, s)} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

async function logView() {
  let r;
  try {
    r = await api('checkpoint');
  } catch (e) {
    $('cp-summary').textContent = 'No checkpoint: ' + e.message;
    return;
  }
  $('cp-summary').textContent = `Newest checkpoint #${r.checkpoint}: ${r.tree_size} certificates, ` +
    `${r.audit_entries} audit entries, signed ${whenMs(r.time_ms)} (${ago(r.age_s)}).`;
  const short = r.witnessed < r.witnesses_required;
  const witnessed = $('cp-witnessed');
  witnessed.textContent = r.witnesses_required ?
    `Cosigned by ${r.witnessed} of the ${r.witnesses_required} witnesses required` +
      (short ? ': NOT WITNESSED (a log shown to the witnesses may not be the one shown here).' : '.') : '';
  witnessed.className = short ? 'badge revoked' : '';
  witnessed.dataset.ok = short ? 'false' : 'true';
  const limit = Math.round(r.witness_max_age_s / 60);
  fill($('witnesses').tBodies[0], r.witnesses.map((w) => {
    let badge = el('span', { class: 'badge valid' }, 'ok');
    if (w.reported) badge = el('span', { class: 'badge revoked' }, `reported ${w.reported} inconsistenc${w.reported === 1 ? 'y' : 'ies'}`);
    else if (w.stale) badge = el('span', { class: 'badge superseded' },
      w.newest_time == null ? 'never cosigned' : `no cosignature for over ${limit} min`);
    return el('tr', { 'data-witness': w.name, 'data-flag': w.reported ? 'reported' : w.stale ? 'stale' : 'ok' },
      el('td', {}, w.name), el('td', {}, w.cosigned ? 'cosigned ' + ago(w.age_s) : 'not cosigned'),
      el('td', {}, ago(w.newest_age_s)), el('td', {}, badge));
  }));
  fill($('log-reports').tBodies[0], r.reports.map((x) =>
    el('tr', { 'data-kind': x.kind }, el('td', {}, whenMs(x.received * 1000)),
      el('td', {}, x.witness || '(not a configured witness)'), el('td', {}, el('span', { class: 'badge revoked' }, x.kind)),
      el('td', {}, `${x.kept_size} → ${x.served_size}`), el('td', { class: 'wrap' }, x.reason))));
}

async function start() {
  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); show(''); search(0); });
  $('search-form').addEventListener('reset', () => setTimeout(() => search(0), 0));
  $('prev-btn').addEventListener('click', () => search(Math.max(0, state.offset - PAGE)));
  $('next-btn').addEventListener('click', () => search(state.offset + PAGE));
  $('detail-close').addEventListener('click', () => { $('detail-view').hidden = true; });
  $('revoke-open').addEventListener('click', openRevoke);
  $('r-cancel').addEventListener('click', () => $('revoke-dialog').close());
  $('r-confirm').addEventListener('input', () => {
    $('r-submit').disabled = $('r-confirm').value.trim().toLowerCase() !== state.detail.cert_serial;
  });
  $('revoke-form').addEventListener('submit', submitRevoke);
  try {
    const me = await api('me');
    state.role = me.role;
    $('who').replaceChildren(document.createTextNode(me.name), el('span', { class: 'role' }, me.role));
    document.body.dataset.role = me.role;
  } catch (e) {
    $('who').textContent = 'not signed in';
    show('Access refused: ' + e.message, true);
    return;
  }
  await Promise.all([search(0), report(), logView()]);
  document.body.dataset.ready = 'yes';
}

document.addEventListener('DOMContentLoaded', start);
