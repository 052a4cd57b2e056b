// app.js — the front desk's page: plain JavaScript, no build step, no library.
// Every call goes to this workstation's own server (/api/...), with the page token in
// X-Frontdesk-Token. The open view and the status line are refreshed every POLL_MS.
'use strict';

const POLL_MS = 1000;
const TOKEN = document.querySelector('meta[name="fd-token"]').content;
const $ = (id) => document.getElementById(id);

let view = 'today';
let user = null;
const last = {}; // the JSON each list was last drawn from, to redraw only what changed

// ---- talking to the server -----------------------------------------------------------------

async function api(method, path, body) {
  const opts = { method, headers: { 'X-Frontdesk-Token': TOKEN }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch('/api' + path, opts);
  let data = {};
  try { data = await res.json(); } catch (e) { data = { error: 'bad answer from the server' }; }
  if (!res.ok) {
    const err = new Error(data.error || ('HTTP ' + res.status));
    err.status = res.status;
    throw err;
  }
  return data;
}

function flash(msg, ok) {
  const f = $('flash');
  f.textContent = msg;
  f.className = ok ? 'flash ok' : 'flash';
  f.hidden = false;
  clearTimeout(flash.t);
  flash.t = setTimeout(() => { f.hidden = true; }, ok ? 2500 : 6000);
}

// Run a write; show its error (and ask to sign in on 401).
async function write(method, path, body, done) {
  try {
    const r = await api(method, path, body);
    if (done) flash(done, true);
    await refresh(true);
    return r;
  } catch (e) {
    flash(e.status === 401 ? 'Sign in first (name and PIN, top right).' : e.message);
    return null;
  }
}

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function badge(text, cls) { return el('span', { class: 'badge ' + (cls || text) }, text); }

function when(ms) {
  if (!ms) return 'never';
  const d = new Date(ms);
  return d.toLocaleDateString() + ' ' + d.toLocaleTimeString();
}

function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function isoDate(d) {
  const z = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + z(d.getMonth() + 1) + '-' + z(d.getDate());
}

// Did the data change since it was last drawn? (Also: do not redraw under a typing user.)
function changed(name, data, box) {
  const s = JSON.stringify(data);
  if (last[name] === s) return false;
  const a = document.activeElement;
  if (box && a && box.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA')) return false;
  last[name] = s;
  return true;
}

// ---- status line and sign-in ------------------------------------------------------------------

async function refreshStatus() {
  const st = $('status');
  let s;
  try {
    s = await api('GET', '/status');
  } catch (e) {
    st.textContent = 'This workstation\'s server does not answer: ' + e.message;
    st.className = 'status bad';
    return;
  }
  $('office').textContent = s.office + ' — ' + s.device;
  const peers = s.peers.filter((p) => p.device_id);
  const parts = peers.map((p) => (p.connected ? '● ' : '○ ') + p.name + ' (' +
    (p.connected ? 'connected, ' : '') + 'last sync ' + ago(p.last_seen) + ')');
  let text = peers.length ? 'Workstations: ' + parts.join(', ') : 'No other workstation seen yet';
  if (!s.node) text = 'Not syncing (no node)';
  text += s.unsynced > 0
    ? ' · ' + s.unsynced + ' change' + (s.unsynced === 1 ? '' : 's') + ' saved only here'
    : ' · all changes are on another workstation too';
  st.textContent = text;
  st.className = 'status' + (s.unsynced > 0 ? (s.connected ? ' warn' : ' bad') : '');
  $('review-count').textContent = s.conflicts ? '(' + s.conflicts + ')' : '';
  setUser(s.user);
}

function setUser(u) {
  user = u;
  $('who').textContent = u ? 'Signed in: ' + u : '';
  $('signin-form').hidden = !!u;
  $('signout').hidden = !u;
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const r = await api('POST', '/signin', { name: $('signin-name').value, pin: $('signin-pin').value });
    $('signin-pin').value = '';
    setUser(r.user);
    flash('Signed in as ' + r.user, true);
  } catch (e) {
    $('signin-pin').value = '';
    flash(e.message);
  }
});

$('signout').addEventListener('click', async () => {
  try { await api('POST', '/signout', {}); } catch (e) { /* signed out anyway */ }
  setUser(null);
});

// ---- Today ------------------------------------------------------------------------------------

function todayDate() {
  if (!$('today-date').value) $('today-date').value = isoDate(new Date());
  return $('today-date').value;
}

async function refreshToday() {
  const d = await api('GET', '/today?date=' + encodeURIComponent(todayDate()));
  const rows = $('today-rows');
  if (!changed('today', d, rows)) return;
  rows.replaceChildren();
  for (const a of d.appts) {
    const actions = el('td');
    if (a.status === 'booked') {
      actions.append(el('button', { type: 'button', onclick: () =>
        write('POST', '/appts/' + a.id + '/checkin', {}, 'Checked in: ' + (a.patient_name || a.patient)) }, 'Check in'));
    }
    if (a.status === 'arrived') {
      actions.append(el('button', { type: 'button', onclick: () =>
        write('POST', '/appts/' + a.id + '/done', {}, 'Done: ' + (a.patient_name || a.patient)) }, 'Done'));
    }
    if (a.status === 'booked' || a.status === 'arrived') {
      actions.append(' ', el('button', { type: 'button', onclick: () => {
        if (confirm('Cancel ' + (a.patient_name || a.patient) + ' at ' + a.time + '?'))
          write('POST', '/appts/' + a.id + '/cancel', {}, 'Cancelled');
      } }, 'Cancel'));
    }
    const st = el('td', {}, badge(a.status || '?'));
    if (a.conflict) st.append(' ', badge('review', 'conflict'));
    rows.append(el('tr', { class: a.status, 'data-id': a.id },
      el('td', {}, a.time.slice(0, 2) + ':' + a.time.slice(2)),
      el('td', {}, a.patient_name || ('(' + a.patient + ')')),
      el('td', {}, a.provider), el('td', {}, a.reason), st, actions));
  }
  $('today-empty').hidden = d.appts.length > 0;
}

function shiftDay(n) {
  const d = new Date(todayDate() + 'T12:00:00');
  d.setDate(d.getDate() + n);
  $('today-date').value = isoDate(d);
  refresh(true);
}
$('today-prev').addEventListener('click', () => shiftDay(-1));
$('today-next').addEventListener('click', () => shiftDay(1));
$('today-now').addEventListener('click', () => { $('today-date').value = isoDate(new Date()); refresh(true); });
$('today-date').addEventListener('change', () => refresh(true));

// A patient field (booking, a call, a refill) offers matches as a name is typed; the value
// picked is the patient's id.
function patientLookup(inputId, listId) {
  let timer = null;
  $(inputId).addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = $(inputId).value.trim();
      if (q.length < 2) return;
      try {
        const r = await api('GET', '/patients?q=' + encodeURIComponent(q));
        $(listId).replaceChildren(...r.patients.map((p) =>
          el('option', { value: p.id }, p.name + (p.dob ? ' (' + p.dob + ')' : ''))));
      } catch (e) { /* the next keystroke tries again */ }
    }, 200);
  });
}
patientLookup('book-patient', 'book-patients');
patientLookup('msg-patient', 'msg-patients');
patientLookup('rf-patient', 'rf-patients');

$('book-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await write('POST', '/appts', {
    date: todayDate(), time: $('book-time').value.replace(':', ''),
    patient: $('book-patient').value.trim(), provider: $('book-provider').value,
    reason: $('book-reason').value,
  }, 'Booked');
  if (r) { $('book-patient').value = ''; $('book-reason').value = ''; }
});

// ---- Patients -----------------------------------------------------------------------------------

let editing = null; // the id of the patient in the form, or '' for a new one

async function refreshPatients() {
  const q = $('pt-q').value.trim(), dob = $('pt-dob').value;
  const rows = $('pt-rows');
  if (!q && !dob) {
    rows.replaceChildren();
    last.patients = '';
    $('pt-count').textContent = 'Search by name or date of birth.';
    return;
  }
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (dob) params.set('dob', dob);
  const r = await api('GET', '/patients?' + params);
  $('pt-count').textContent = r.total + ' found' + (r.total > r.patients.length ? ', first ' + r.patients.length + ' shown' : '') +
    ' (' + r.took_ms.toFixed(1) + ' ms)';
  if (!changed('patients', r.patients, rows)) return;
  rows.replaceChildren(...r.patients.map((p) => el('tr', { class: 'clickable', onclick: () => openPatient(p) },
    el('td', {}, p.name), el('td', {}, p.dob), el('td', {}, p.phone),
    el('td', {}, p.allergies.join(', ')), el('td', { class: 'muted' }, p.id))));
}

function openPatient(p) {
  editing = p ? p.id : '';
  $('pt-form-title').textContent = p ? 'Patient ' + p.id : 'New patient';
  $('pt-name').value = p ? p.name : '';
  $('pt-form-dob').value = p ? p.dob : '';
  $('pt-phone').value = p ? p.phone : '';
  $('pt-allergies').value = p ? p.allergies.join(', ') : '';
  $('pt-form').hidden = false;
  $('pt-name').focus();
}

$('pt-new').addEventListener('click', () => openPatient(null));
$('pt-cancel').addEventListener('click', () => { $('pt-form').hidden = true; });
let ptTimer = null;
for (const id of ['pt-q', 'pt-dob']) {
  $(id).addEventListener('input', () => { clearTimeout(ptTimer); ptTimer = setTimeout(() => refresh(true), 150); });
}

$('pt-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const body = {
    name: $('pt-name').value, dob: $('pt-form-dob').value, phone: $('pt-phone').value,
    allergies: $('pt-allergies').value.split(',').map((s) => s.trim()).filter((s) => s),
  };
  const r = await write('POST', editing ? '/patients/' + editing : '/patients', body, 'Saved');
  if (r) {
    $('pt-form').hidden = true;
    if (!editing) $('pt-q').value = r.patient.name;
    refresh(true);
  }
});

// ---- Messages -----------------------------------------------------------------------------------

async function refreshMessages() {
  const r = await api('GET', '/messages?status=' + ($('msg-closed').checked ? 'all' : 'open'));
  const box = $('msg-list');
  if (!changed('messages', r, box)) return;
  box.replaceChildren(...r.messages.map((m) => {
    const note = el('input', { placeholder: 'add a note' });
    const thread = el('ol', {}, ...m.thread.map((t) =>
      el('li', {}, t.text, ' ', el('span', { class: 'meta' }, '— ' + (t.user || '?') + ', ' + when(t.time)))));
    const head = el('h3', {}, m.subject, ' ', badge(m.status));
    if (m.conflict) head.append(' ', badge('review', 'conflict'));
    const div = el('div', { class: 'thread' }, head,
      el('div', { class: 'meta' }, 'Caller: ' + m.caller + (m.patient ? ' · patient ' + (m.patient_name || m.patient) : '')),
      thread);
    if (m.status !== 'closed') {
      div.append(el('form', { onsubmit: async (ev) => {
        ev.preventDefault();
        if (note.value.trim() && await write('POST', '/messages/' + m.id + '/notes', { note: note.value }, 'Note added')) note.value = '';
      } }, note, el('button', { type: 'submit' }, 'Add'),
      el('button', { type: 'button', onclick: () => write('POST', '/messages/' + m.id + '/close', { note: note.value }, 'Closed') }, 'Close')));
    }
    return div;
  }));
  $('msg-empty').hidden = r.messages.length > 0;
}

$('msg-closed').addEventListener('change', () => refresh(true));
$('msg-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await write('POST', '/messages', {
    caller: $('msg-caller').value, subject: $('msg-subject').value,
    patient: $('msg-patient').value.trim(), note: $('msg-note').value,
  }, 'Call saved');
  if (r) for (const id of ['msg-caller', 'msg-subject', 'msg-patient', 'msg-note']) $(id).value = '';
});

// ---- Refills ------------------------------------------------------------------------------------

async function refreshRefills() {
  const r = await api('GET', '/refills?status=' + ($('rf-all').checked ? 'all' : 'pending'));
  const rows = $('rf-rows');
  if (!changed('refills', r, rows)) return;
  rows.replaceChildren(...r.refills.map((f) => {
    const act = el('td');
    if (f.status === 'pending') {
      act.append(el('button', { type: 'button', onclick: () => write('POST', '/refills/' + f.id + '/decide', { decision: 'approved' }, 'Approved') }, 'Approve'),
        ' ', el('button', { type: 'button', onclick: () => write('POST', '/refills/' + f.id + '/decide', { decision: 'denied' }, 'Denied') }, 'Deny'));
    }
    return el('tr', {}, el('td', {}, f.patient_name || f.patient), el('td', {}, f.medication),
      el('td', {}, f.requested_by), el('td', {}, badge(f.status)), el('td', {}, f.decided_by), act);
  }));
  $('rf-empty').hidden = r.refills.length > 0;
}

$('rf-all').addEventListener('change', () => refresh(true));
$('rf-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await write('POST', '/refills', {
    patient: $('rf-patient').value.trim(), medication: $('rf-med').value, requested_by: $('rf-by').value,
  }, 'Queued');
  if (r) for (const id of ['rf-patient', 'rf-med', 'rf-by']) $(id).value = '';
});

// ---- Review -------------------------------------------------------------------------------------

function showValue(c, v) {
  if (c.field === '') return v.deleted ? 'delete the record' : 'keep the record';
  if (v.deleted) return '(deleted)';
  return typeof v.value === 'string' ? v.value : JSON.stringify(v.value);
}

async function refreshReview() {
  const r = await api('GET', '/review');
  const box = $('rv-list');
  if (!changed('review', r, box)) return;
  box.replaceChildren(...r.conflicts.map((c) => el('div', { class: 'conflict' },
    el('h3', {}, c.key + ' · ' + (c.field || '(deleted while edited)')),
    c.register ? el('ul', {}, ...c.values.map((v) => el('li', {},
      el('span', { class: 'val' }, showValue(c, v)),
      el('span', { class: 'meta' }, 'by ' + (v.user || '?') + ', ' + when(v.time) + (v.winner ? ' · shown now' : '')),
      el('button', { type: 'button', onclick: () => write('POST', '/review/pick', { key: c.key, field: c.field, dot: v.dot }, 'Kept') }, 'Keep this'))))
      : el('p', { class: 'muted' }, 'Two kinds of field under one name: fix with the replica command.'))));
  $('rv-empty').hidden = r.conflicts.length > 0;
}

// ---- views and polling -------------------------------------------------------------------------

const refreshers = { today: refreshToday, patients: refreshPatients, messages: refreshMessages,
  refills: refreshRefills, review: refreshReview };

function show(name) {
  view = name;
  for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.view === name);
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + name;
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  refresh(true);
}

for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => show(b.dataset.view));

let busy = false;
async function refresh(force) {
  if (busy && !force) return;
  busy = true;
  try {
    await Promise.all([refreshStatus(), refreshers[view]()]);
  } catch (e) {
    if (e.status) flash(e.message);
  } finally {
    busy = false;
  }
}

show(refreshers[location.hash.slice(1)] ? location.hash.slice(1) : 'today');
setInterval(() => refresh(false), POLL_MS);
