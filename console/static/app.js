// raftkms console: a single-page app over /console/api/ (console-contract).
// Every button is one call of the RPC API, made as the signed-in identity:
// POST /console/api/action/<Action> with the RPC parameter names. User
// text is only ever set with textContent (the h() helper makes text nodes);
// nothing here uses innerHTML, eval or inline handlers (the CSP forbids
// them anyway).

'use strict';

// ---------- DOM helpers ----------

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element. props: class, text, on {event: fn}, value, checked,
// disabled, hidden, selected (properties); anything else an attribute.
// Children: nodes, strings (text nodes), arrays, null/false (skipped).
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    switch (k) {
      case 'class': el.className = v; break;
      case 'text': el.textContent = String(v); break;
      case 'on': for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); break;
      case 'value': el.value = v; break;
      case 'checked': case 'disabled': case 'hidden': case 'selected': case 'multiple':
        el[k] = Boolean(v); break;
      default: el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

// A labelled field: label, control, optional hint and an error line.
function field(label, control, opts = {}) {
  const id = control.id || (control.id = nextId('f'));
  const errId = opts.errorId || `${id}-error`;
  const hintId = opts.hint ? `${id}-hint` : null;
  const described = [hintId, errId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field' + (opts.class ? ' ' + opts.class : '') },
    h('label', { for: id, text: label }),
    opts.prefix ? h('div', { class: 'prefixed' }, h('span', { class: 'prefix', text: opts.prefix, 'aria-hidden': 'true' }), control) : control,
    opts.hint ? h('p', { class: 'hint', id: hintId, text: opts.hint }) : null,
    h('p', { class: 'field-error', id: errId, role: 'alert', hidden: true }));
}

function setFieldError(id, msg) {
  const e = document.getElementById(id);
  if (!e) return false;
  e.textContent = msg || '';
  e.hidden = !msg;
  const ctl = document.getElementById(id.replace(/-error$/, ''));
  if (ctl) ctl.setAttribute('aria-invalid', msg ? 'true' : 'false');
  return true;
}

function input(id, props = {}) { return h('input', { id, name: id, spellcheck: 'false', autocomplete: 'off', ...props }); }

function select(id, options, value, props = {}) {
  const s = h('select', { id, name: id, ...props });
  for (const o of options) {
    const [v, t] = Array.isArray(o) ? o : [o, o];
    s.append(h('option', { value: v, text: t, selected: v === value }));
  }
  return s;
}

function radio(name, id, value, label, checked, on) {
  return h('label', { class: 'choice', for: id },
    h('input', { type: 'radio', name, id, value, checked, on }), ' ', label);
}

function checkbox(id, label, checked, on) {
  return h('label', { class: 'choice', for: id },
    h('input', { type: 'checkbox', id, name: id, checked, on }), ' ', label);
}

function button(text, on, props = {}) {
  return h('button', { type: 'button', ...props, on: { click: on } }, text);
}

function dl(pairs, props = {}) {
  const d = h('dl', { class: 'props', ...props });
  for (const [k, v, id] of pairs) {
    d.append(h('dt', { text: k }), h('dd', { id: id || null }, v === undefined || v === null || v === '' ? '—' : v));
  }
  return d;
}

function table(columns, rows, props = {}) {
  const t = h('table', { class: 'list', ...props },
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', text: c || 'Actions' })))));
  const body = h('tbody');
  if (!rows.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: columns.length, text: 'Nothing here yet.' })));
  for (const r of rows) body.append(r);
  t.append(body);
  return h('div', { class: 'table-wrap' }, t);
}

function row(cells, props = {}) {
  return h('tr', props, cells.map((c, i) => h('td', { 'data-label': '' }, c)));
}

function labelRows(tbl, columns) {
  // Phones show each row as a card; each cell names its column.
  for (const tr of tbl.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((td, i) => td.setAttribute('data-label', columns[i] || 'Actions'));
  }
  return tbl;
}

function listTable(columns, rows, props) { return labelRows(table(columns, rows, props), columns); }

function card(title, ...kids) {
  const id = nextId('card');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id, text: title }), kids);
}

// ---------- errors and messages ----------

class ApiError extends Error {
  constructor(status, body) {
    super(`${body.Code || 'HTTP ' + status}: ${body.Message || ''}`);
    this.status = status;
    this.code = body.Code || `HTTP${status}`;
    this.msg = body.Message || '';
    this.requestId = body.RequestId || '';
  }
}

// errorBanner shows the service's code and message as text.
function errorBanner(err, props = {}) {
  const b = h('div', { class: 'banner error', role: 'alert', 'data-testid': 'error-banner', ...props });
  fillBanner(b, err);
  return b;
}

function fillBanner(b, err) {
  b.replaceChildren();
  b.classList.remove('ok');
  b.classList.add('error');
  if (err instanceof ApiError) {
    append(b, [h('strong', { class: 'code', text: err.code }), ' ', h('span', { class: 'message', text: err.msg }),
      err.requestId ? h('span', { class: 'rid', text: ` (RequestId ${err.requestId})` }) : null]);
  } else {
    b.textContent = String(err && err.message ? err.message : err);
  }
  b.hidden = false;
}

function okBanner(text, props = {}) {
  return h('div', { class: 'banner ok', role: 'status', ...props, text });
}

function toast(text) {
  const t = $('#toast') || document.body.appendChild(h('div', { id: 'toast', class: 'toast', role: 'status', 'aria-live': 'polite', 'data-testid': 'toast' }));
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 8000);
}

// The parameter a service error is about: `the parameter "X"` in its
// message, or its code.
function errorParam(err) {
  if (!(err instanceof ApiError)) return '';
  const m = /parameter "([A-Za-z.]+)"/.exec(err.msg);
  if (m) return m[1];
  switch (err.code) {
    case 'AliasAlreadyExists': case 'Forbidden.AliasNotFound': return 'AliasName';
    case 'MissingPendingWindowInDays': return 'PendingWindowInDays';
  }
  if (err.code === 'Rejected.LimitExceeded' && /access/i.test(err.msg)) return 'Policy';
  if (err.code.startsWith('Missing')) return err.code.slice('Missing'.length);
  return '';
}

// ---------- the API ----------

const state = { session: null, instances: null, route: '', renderSeq: 0 };

async function api(action, params = {}) {
  const body = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) body[k] = String(v);
  const r = await fetch(`/console/api/action/${encodeURIComponent(action)}`, {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': state.session ? state.session.CsrfToken : '' },
    body: JSON.stringify(body),
  });
  const data = await readJSON(r);
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    if (r.status === 401 && err.code === 'ConsoleSession.Expired') sessionEnded('Your session ended; sign in again.');
    throw err;
  }
  return data;
}

async function readJSON(r) {
  const text = await r.text();
  try { return text ? JSON.parse(text) : {}; } catch { return { Code: `HTTP${r.status}`, Message: text.slice(0, 300) }; }
}

// all pages of a paged List action.
async function listAll(action, params, pick, max = 2000) {
  const out = [];
  for (let page = 1; ; page++) {
    const r = await api(action, { ...params, PageNumber: page, PageSize: 100 });
    const items = pick(r) || [];
    out.push(...items);
    if (!items.length || out.length >= (r.TotalCount ?? 0) || out.length >= max) return out;
  }
}

const arr = (x) => (Array.isArray(x) ? x : x ? [x] : []);

// ---------- base64, UTF-8, SHA-256 ----------

const utf8 = new TextEncoder();
function b64encode(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function b64decode(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/').replace(/\s+/g, ''));
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}
function textToB64(t) { return b64encode(utf8.encode(t)); }
function b64ToText(s) {
  try { return new TextDecoder('utf-8', { fatal: true }).decode(b64decode(s)); } catch { return null; }
}

// sha256 in plain JavaScript: crypto.subtle exists only in secure contexts,
// and a node may serve plain HTTP on a private address.
function sha256(msg) {
  const K = new Uint32Array([0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb,
    0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f,
    0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = msg.length;
  const total = Math.ceil((len + 9) / 64) * 64;
  const buf = new Uint8Array(total);
  buf.set(msg);
  buf[len] = 0x80;
  const dv = new DataView(buf.buffer);
  dv.setUint32(total - 4, (len * 8) >>> 0);
  dv.setUint32(total - 8, Math.floor(len / 0x20000000));
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + W[i]) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const mj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + mj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += hh;
  }
  const out = new Uint8Array(32);
  const odv = new DataView(out.buffer);
  H.forEach((v, i) => odv.setUint32(i * 4, v));
  return out;
}

function download(name, data, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function copyText(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    btn.textContent = 'Copied';
  } catch {
    btn.textContent = 'Select the text and copy it';
  }
}

// ---------- rules the form checks (the server checks them again) ----------

const rules = {
  aliasPart(s) {
    if (s === '') return '';
    if (!/^[A-Za-z0-9_/-]+$/.test(s)) return 'Use only letters, digits, _, - and /.';
    if ([...s].length > 255) return 'At most 255 characters after alias/.';
    if (/^(acs|aliyun)\//i.test(s)) return 'alias/acs/ and alias/aliyun/ are reserved.';
    return '';
  },
  tag(k, v) {
    const chars = /^[\p{L}\p{N} /\\_\-.+=:@]*$/u;
    if (k === '') return 'A tag needs a key.';
    if ([...k].length > 128) return 'Tag keys are at most 128 characters.';
    if ([...v].length > 128) return 'Tag values are at most 128 characters.';
    if (!chars.test(k) || !chars.test(v)) return 'Tag keys and values use letters, digits, spaces and / \\ _ - . + = : @ only.';
    if (/^(aliyun|acs:)/i.test(k)) return 'Tag keys may not start with aliyun or acs:.';
    return '';
  },
  intIn(s, lo, hi, what) {
    if (!/^\d+$/.test(s.trim())) return `${what} is a whole number from ${lo} to ${hi}.`;
    const n = Number(s.trim());
    if (n < lo || n > hi) return `${what} must be from ${lo} to ${hi}.`;
    return '';
  },
  principal(s) {
    if (!/^acs:ram::\d+:(user|role)\/[A-Za-z0-9._@-]{1,64}$/.test(s)) {
      return `"${s}" is not acs:ram::<userId>:user/<name> or acs:ram::<userId>:role/<name>.`;
    }
    return '';
  },
  description(s) { return [...s].length > 8192 ? 'A description is at most 8192 characters.' : ''; },
};

// aliasPart is what follows the fixed alias/ prefix; a person who typed the
// prefix too (pasting a whole alias name) means the same alias.
function aliasPart(v) {
  const t = v.trim();
  return t.startsWith('alias/') ? t.slice('alias/'.length) : t;
}

// Key specifications per instance type, as the reference's guide lists them.
const SPECS = {
  software: { Symmetric: ['Aliyun_AES_256'], Asymmetric: ['RSA_2048', 'RSA_3072', 'EC_P256', 'EC_P256K'] },
  hardware: { Symmetric: ['Aliyun_AES_256', 'Aliyun_AES_192', 'Aliyun_AES_128'], Asymmetric: ['RSA_2048', 'RSA_3072', 'RSA_4096', 'EC_P256', 'EC_P256K'] },
};
function usagesFor(spec) {
  if (spec.startsWith('Aliyun_AES')) return ['ENCRYPT/DECRYPT'];
  if (spec.startsWith('RSA')) return ['ENCRYPT/DECRYPT', 'SIGN/VERIFY'];
  return ['SIGN/VERIFY'];
}
const isSymmetric = (spec) => spec.startsWith('Aliyun_AES');

// The reference console's permission sets for a custom key policy.
const ADMIN_ACTIONS = ['kms:List*', 'kms:Describe*', 'kms:Create*', 'kms:Enable*', 'kms:Disable*', 'kms:Get*', 'kms:Set*',
  'kms:Update*', 'kms:Delete*', 'kms:Cancel*', 'kms:TagResource', 'kms:UntagResource', 'kms:ImportKeyMaterial', 'kms:ScheduleKeyDeletion'];
const USER_ACTIONS = ['kms:List*', 'kms:Describe*', 'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncrypt', 'kms:AsymmetricSign', 'kms:AsymmetricVerify', 'kms:AsymmetricEncrypt',
  'kms:AsymmetricDecrypt', 'kms:GetPublicKey', 'kms:ExportDataKey', 'kms:GenerateAndExportDataKey'];
const ACCESS_QUOTA = 10;

// ---------- session ----------

async function loadSession() {
  const r = await fetch('/console/api/session', { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) return null;
  return readJSON(r);
}

function showSignIn(message) {
  state.session = null;
  closePanel();
  $('#loading').hidden = true;
  $('#topbar').hidden = true;
  $('#layout').hidden = true;
  $('#main').replaceChildren();
  $('#signin').hidden = false;
  const e = $('#signin-error');
  if (message) { e.textContent = message; e.hidden = false; e.classList.add('info'); } else { e.hidden = true; }
  document.title = 'Sign in · raftkms console';
  $('#signin-akid').focus();
}

function sessionEnded(message) {
  if (state.session) showSignIn(message);
}

async function signIn(ev) {
  ev.preventDefault();
  const e = $('#signin-error');
  e.hidden = true;
  e.classList.remove('info');
  const akid = $('#signin-akid').value.trim();
  const secret = $('#signin-secret').value;
  const token = $('#signin-token').value.trim();
  if (!akid || !secret) {
    e.textContent = 'Enter the AccessKeyId and the AccessKeySecret.';
    e.hidden = false;
    return;
  }
  const btn = $('#signin-submit');
  btn.disabled = true;
  try {
    const body = { AccessKeyId: akid, AccessKeySecret: secret };
    if (token) body.SecurityToken = token;
    const r = await fetch('/console/api/session', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    const data = await readJSON(r);
    if (!r.ok) {
      fillBanner(e, new ApiError(r.status, data));
      return;
    }
    $('#signin-secret').value = '';
    $('#signin-token').value = '';
    startApp(data);
  } catch (err) {
    fillBanner(e, err);
  } finally {
    btn.disabled = false;
  }
}

async function signOut() {
  try {
    const r = await fetch('/console/api/session', {
      method: 'DELETE', credentials: 'same-origin', cache: 'no-store',
      headers: { 'X-CSRF-Token': state.session ? state.session.CsrfToken : '' },
    });
    // 401: the session had ended already. Any other refusal leaves it open:
    // say so rather than pretend.
    if (!r.ok && r.status !== 401) {
      const err = new ApiError(r.status, await readJSON(r));
      toast(`Sign-out refused: ${err.code}: ${err.msg}`);
      return;
    }
  } catch (err) {
    toast(`Sign-out failed: ${err.message}`);
    return;
  }
  state.instances = null;
  showSignIn('You are signed out.');
}

function startApp(session) {
  state.session = session;
  document.title = 'raftkms console';
  state.instances = null;
  $('#signin').hidden = true;
  $('#loading').hidden = true;
  $('#topbar').hidden = false;
  $('#layout').hidden = false;
  const id = session.Identity || {};
  const who = id.Kind === 'root' ? `${id.Name || 'root'} (account ${id.AccountId})`
    : `${id.Name} (${id.Kind}${id.Temporary ? ', temporary' : ''}, account ${id.AccountId})`;
  $('#identity').textContent = who;
  $('#identity').title = id.Principal || '';
  const sel = $('#region-select');
  sel.replaceChildren();
  const regions = arr(session.Regions);
  if (!regions.some((r) => r.RegionId === session.Region)) regions.unshift({ RegionId: session.Region, LocalName: session.Region });
  for (const r of regions) {
    const text = r.LocalName && r.LocalName !== r.RegionId ? `${r.LocalName} (${r.RegionId})` : r.RegionId;
    const o = h('option', { value: r.RegionId, text, selected: r.RegionId === session.Region });
    o.dataset.endpoint = r.RegionEndpoint || '';
    sel.append(o);
  }
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/keys';
  else route();
}

function onRegionChange() {
  const sel = $('#region-select');
  const opt = sel.selectedOptions[0];
  if (!opt || opt.value === state.session.Region) return;
  const ep = opt.dataset.endpoint;
  if (!ep) {
    toast(`No endpoint is known for region ${opt.value}.`);
    sel.value = state.session.Region;
    return;
  }
  // Another region is another node's console: go there (same scheme).
  location.assign(`${location.protocol}//${ep}/console/`);
}

// ---------- router ----------

const routes = [
  [/^#\/keys\/default$/, () => pageKeys('default')],
  [/^#\/keys$/, () => pageKeys('keys')],
  [/^#\/keys\/([^/]+)$/, (m) => pageKey(decodeURIComponent(m[1]))],
  [/^#\/instances$/, () => pageInstances()],
  [/^#\/secrets$/, () => pageSecrets()],
  [/^#\/secrets\/(.+)$/, (m) => pageSecret(decodeURIComponent(m[1]))],
  [/^#\/aaps$/, () => pageAaps()],
  [/^#\/accounts$/, () => pageAccounts()],
  [/^#\/cluster$/, () => pageCluster()],
];

function route() {
  if (!state.session) return;
  closePanel();
  const hash = location.hash || '#/keys';
  const seq = ++state.renderSeq;
  const main = $('#main');
  for (const [re, fn] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    const section = hash.split('/')[1];
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.route === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    main.replaceChildren(h('p', { class: 'loading', text: 'Loading…' }));
    Promise.resolve(fn(m)).then((content) => {
      if (seq !== state.renderSeq || !content) return;
      main.replaceChildren(content);
      main.dataset.page = content.dataset.page || section;
      // After an arrow key on the tabs, focus follows to the tab shown.
      if (state.focusTabs) {
        const sel = document.querySelector('.tabs [aria-selected="true"]');
        if (sel) sel.focus();
        state.focusTabs = false;
      }
    }).catch((err) => {
      if (seq !== state.renderSeq) return;
      main.replaceChildren(h('div', { class: 'page' }, errorBanner(err)));
    });
    return;
  }
  location.hash = '#/keys';
}

// isCurrent reports whether a page built at seq is still the one shown.
const isCurrent = (seq) => seq === state.renderSeq;
function rerender() { route(); }

// ---------- instances ----------

async function instances(force) {
  if (state.instances && !force) return state.instances;
  const list = await listAll('ListKmsInstances', {}, (r) => arr(r.KmsInstances && r.KmsInstances.KmsInstance));
  const out = [];
  for (const i of list) {
    try {
      const d = await api('GetKmsInstance', { KmsInstanceId: i.KmsInstanceId });
      out.push({ ...d.KmsInstance, KmsInstanceId: i.KmsInstanceId });
    } catch (err) {
      out.push({ KmsInstanceId: i.KmsInstanceId, Type: '', error: err });
    }
  }
  state.instances = out;
  return out;
}

const instanceType = (i) => (i.Type || i.ProductType || '').toLowerCase() || 'unknown';

// ---------- Keys page ----------

function page(title, ...kids) {
  document.title = `${title} · raftkms console`;
  return h('div', { class: 'page' }, h('h1', { text: title, id: 'page-title' }), kids);
}

function tabs(current) {
  const tab = (id, label, href) => h('a', {
    role: 'tab', id: `tab-${id}`, href, 'aria-selected': String(current === id), class: current === id ? 'tab active' : 'tab',
    'aria-controls': 'tabpanel', 'data-testid': `tab-${id}`,
  }, label);
  const list = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Keys' }, tab('default', 'Default Key', '#/keys/default'), tab('keys', 'Keys', '#/keys'));
  // Arrow keys move between the tabs, as a tab list's do.
  list.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const other = list.querySelector('[aria-selected="false"]');
    if (other) { ev.preventDefault(); state.focusTabs = true; location.hash = other.getAttribute('href'); }
  });
  return list;
}

async function pageKeys(which) {
  const body = h('div', { role: 'tabpanel', id: 'tabpanel', 'aria-labelledby': `tab-${which}` });
  const p = page('Keys', tabs(which), body);
  p.dataset.page = which === 'default' ? 'default-key' : 'keys';
  if (which === 'default') await renderDefaultKey(body); else await renderKeyList(body);
  return p;
}

async function findDefaultKey() {
  const r = await api('ListKeys', { Filters: JSON.stringify([{ Key: 'DKMSInstanceId', Values: [''] }]), PageSize: 10 });
  const k = arr(r.Keys && r.Keys.Key)[0];
  if (!k) return null;
  const d = await api('DescribeKey', { KeyId: k.KeyId });
  return d.KeyMetadata;
}

async function renderDefaultKey(body) {
  let key;
  try {
    key = await findDefaultKey();
  } catch (err) {
    body.append(errorBanner(err));
    return;
  }
  body.append(h('p', { class: 'hint', text: 'The account\'s default key is an Aliyun_AES_256 key in no KMS instance; secrets and services use it when no key is named. An account has one.' }));
  if (key) {
    let aliases = [];
    try { aliases = arr((await api('ListAliasesByKeyId', { KeyId: key.KeyId, PageSize: 100 })).Aliases.Alias).map((a) => a.AliasName); } catch { /* shown as none */ }
    body.append(card('Default key',
      dl([['Key ID', h('a', { href: `#/keys/${encodeURIComponent(key.KeyId)}`, text: key.KeyId }), 'default-key-id'],
        ['Alias', aliases.join(', ')], ['State', stateBadge(key.KeyState), 'default-key-state'], ['Key Material Source', originWords(key.Origin)],
        ['Description', key.Description], ['Created', key.CreationDate]], { id: 'default-key' })));
    return;
  }
  body.append(card('Default key',
    h('p', { id: 'default-key-none', text: 'The default key is not enabled yet.' }),
    button('Enable', () => openEnableDefault(), { id: 'default-key-enable', 'data-testid': 'default-key-enable', class: 'primary' })));
}

function originWords(o) { return o === 'EXTERNAL' ? 'External' : 'Key Management Service'; }

function stateBadge(s) { return h('span', { class: `badge state-${String(s || '').toLowerCase()}`, text: s || '' }); }

// materialSource is the Key Material Source choice with its acknowledgement.
function materialSource(prefix) {
  // The acknowledgement is always shown (and required only for External), so
  // it can be ticked before or after the choice.
  const ack = h('div', { class: 'ack', id: `${prefix}-external-ack-wrap` },
    checkbox(`${prefix}-external-ack`, 'I understand the implications of using the external key materials', false),
    h('p', { class: 'hint', text: 'Required for External: you keep the only lasting copy of the material; if it expires or is deleted, data encrypted under the key cannot be decrypted until you import the same material again.' }));
  const onChange = () => { ack.classList.toggle('active', $(`#${prefix}-origin-external`).checked); };
  return h('fieldset', { class: 'field' },
    h('legend', { text: 'Key Material Source' }),
    radio(`${prefix}-origin`, `${prefix}-origin-kms`, 'Aliyun_KMS', 'Key Management Service', true, { change: onChange }),
    radio(`${prefix}-origin`, `${prefix}-origin-external`, 'EXTERNAL', 'External', false, { change: onChange }),
    ack,
    h('p', { class: 'field-error', id: `${prefix}-origin-error`, role: 'alert', hidden: true }));
}

function checkOrigin(prefix) {
  const external = $(`#${prefix}-origin-external`).checked;
  if (external && !$(`#${prefix}-external-ack`).checked) {
    setFieldError(`${prefix}-origin-error`, 'Tick "I understand the implications of using the external key materials" to use External key material.');
    return null;
  }
  setFieldError(`${prefix}-origin-error`, '');
  return external ? 'EXTERNAL' : 'Aliyun_KMS';
}

// ---------- panels (dialogs) ----------

function openPanel(id, title, content, onOk) {
  closePanel();
  state.panelOpener = document.activeElement;
  const banner = h('div', { class: 'banner error', id: `${id}-banner`, role: 'alert', hidden: true, 'data-testid': 'panel-banner' });
  const ok = h('button', { type: 'submit', class: 'primary', id: `${id}-ok`, 'data-testid': `${id}-ok` }, 'OK');
  const form = h('form', { class: 'panel-body', novalidate: true }, banner, content,
    h('div', { class: 'actions' }, ok, button('Cancel', closePanel, { id: `${id}-cancel`, class: 'secondary' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    banner.hidden = true;
    ok.disabled = true;
    try { await onOk(banner); } catch (err) { fillBanner(banner, err); } finally { ok.disabled = false; }
  });
  const panel = h('section', { class: 'panel', id, role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': `${id}-title`, 'data-testid': id },
    h('header', null, h('h2', { id: `${id}-title`, text: title }), button('×', closePanel, { class: 'close', 'aria-label': 'Close' })), form);
  const overlay = h('div', { class: 'overlay', id: 'overlay' }, panel);
  overlay.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { closePanel(); return; }
    if (ev.key !== 'Tab') return;
    // Keep Tab inside the dialog.
    const f = [...panel.querySelectorAll('button, input, select, textarea, summary, a[href]')].filter((e) => !e.disabled && e.offsetParent !== null);
    if (!f.length) return;
    const first = f[0], last = f[f.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  });
  document.body.append(overlay);
  const first = panel.querySelector('input, select, textarea');
  if (first) first.focus();
  return panel;
}

function closePanel() {
  const o = $('#overlay');
  if (!o) return;
  o.remove();
  // Focus goes back to what opened the panel, when it is still there.
  const opener = state.panelOpener;
  state.panelOpener = null;
  if (opener && opener.isConnected && opener.focus) opener.focus();
}

// showServerError puts a refusal next to the field it concerns, else in
// the panel's banner.
function showServerError(err, banner, fieldMap) {
  const p = errorParam(err);
  const id = fieldMap[p];
  if (id && document.getElementById(id)) {
    setFieldError(id, `${err.code}: ${err.msg}`);
    const ctl = document.getElementById(id.replace(/-error$/, ''));
    if (ctl && ctl.focus) ctl.focus();
    return;
  }
  fillBanner(banner, err);
}

function openEnableDefault() {
  const content = [
    h('p', { class: 'hint', text: 'The default key is Aliyun_AES_256, protected by software, in no KMS instance.' }),
    field('Key Alias', input('dk-alias', { placeholder: 'name' }), { prefix: 'alias/', hint: 'Optional. Letters, digits, _, - and /.' }),
    field('Description', h('textarea', { id: 'dk-description', rows: 3 })),
    h('details', { id: 'dk-advanced', class: 'advanced' }, h('summary', { text: 'Advanced Settings' }), materialSource('dk')),
  ];
  openPanel('default-key-panel', 'Enable the default key', content, async (banner) => {
    const alias = aliasPart($('#dk-alias').value);
    const desc = $('#dk-description').value;
    let bad = false;
    const ae = rules.aliasPart(alias); setFieldError('dk-alias-error', ae); bad ||= !!ae;
    const de = rules.description(desc); setFieldError('dk-description-error', de); bad ||= !!de;
    const origin = checkOrigin('dk');
    if (!origin) { $('#dk-advanced').open = true; bad = true; }
    if (bad) return;
    const params = { KeySpec: 'Aliyun_AES_256', KeyUsage: 'ENCRYPT/DECRYPT', Origin: origin, Description: desc };
    if (alias) params.AliasName = `alias/${alias}`;
    try {
      const r = await api('CreateKey', params);
      closePanel();
      toast(`Default key ${r.KeyMetadata.KeyId} enabled.`);
      rerender();
    } catch (err) {
      showServerError(err, banner, { AliasName: 'dk-alias-error', Description: 'dk-description-error', Origin: 'dk-origin-error' });
    }
  });
}

// ---------- Keys tab ----------

const keysView = { instance: '', page: 1, query: '', pageSize: 10 };

async function renderKeyList(body) {
  let list;
  try {
    list = await instances();
  } catch (err) {
    body.append(errorBanner(err));
    return;
  }
  if (!list.length) {
    body.append(h('p', { text: 'This account has no KMS instance yet. An operator creates them: kmsctl operator instance create --type software|hardware.' }));
    return;
  }
  if (!list.some((i) => i.KmsInstanceId === keysView.instance)) keysView.instance = list[0].KmsInstanceId;
  const instSel = select('instance-select', list.map((i) => [i.KmsInstanceId, `${i.KmsInstanceId} (${instanceType(i)})`]), keysView.instance,
    { 'data-testid': 'instance-select' });
  instSel.addEventListener('change', () => { keysView.instance = instSel.value; keysView.page = 1; rerender(); });
  const search = input('key-search', { type: 'search', value: keysView.query, placeholder: 'alias or tag (key or key:value)' });
  const searchForm = h('form', { class: 'inline', role: 'search', id: 'key-search-form' },
    field('Search by alias or tag', search), h('button', { type: 'submit', id: 'key-search-go' }, 'Search'));
  searchForm.addEventListener('submit', (ev) => { ev.preventDefault(); keysView.query = search.value.trim(); keysView.page = 1; rerender(); });
  const inst = list.find((i) => i.KmsInstanceId === keysView.instance);
  const toolbar = h('div', { class: 'toolbar' },
    field('Instance ID', instSel),
    // The instance chosen now (also one set without a change event).
    button('Create Key', () => openCreateKey(list.find((i) => i.KmsInstanceId === instSel.value) || inst),
      { id: 'create-key', class: 'primary', 'data-testid': 'create-key' }),
    searchForm);
  body.append(toolbar);
  if (inst && inst.error) body.append(errorBanner(inst.error));
  const listBox = h('div', { id: 'keys-list', 'aria-live': 'polite', 'data-instance': keysView.instance });
  body.append(listBox);
  await fillKeyList(listBox, inst);
}

async function keyRow(keyId) {
  const [d, al, tg] = await Promise.all([
    // A key this identity may not describe still has a row: its refusal.
    api('DescribeKey', { KeyId: keyId }).catch((err) => ({ KeyMetadata: { KeyId: keyId, KeyState: err.code || 'Refused' } })),
    api('ListAliasesByKeyId', { KeyId: keyId, PageSize: 100 }).catch(() => null),
    api('ListResourceTags', { KeyId: keyId }).catch(() => null),
  ]);
  return {
    meta: d.KeyMetadata,
    aliases: al ? arr(al.Aliases && al.Aliases.Alias).map((a) => a.AliasName) : [],
    tags: tg ? arr(tg.Tags && tg.Tags.Tag).map((t) => [t.TagKey, t.TagValue]) : [],
  };
}

// listKeyTags is every tag of the account's keys the identity may list
// (ListTagResources, 50 a page).
async function listKeyTags() {
  const out = [];
  let token = '';
  for (let i = 0; i < 400; i++) {
    const params = { ResourceType: 'key' };
    if (token) params.NextToken = token;
    const r = await api('ListTagResources', params);
    out.push(...arr(r.TagResources && r.TagResources.TagResource));
    token = r.NextToken || '';
    if (!token) break;
  }
  return out;
}

function matches(k, q) {
  const ql = q.toLowerCase();
  if (k.aliases.some((a) => a.toLowerCase().includes(ql) || a.toLowerCase() === `alias/${ql}`)) return true;
  const i = q.indexOf(':');
  return k.tags.some(([tk, tv]) => {
    if (tk.toLowerCase().includes(ql) || tv.toLowerCase().includes(ql)) return true;
    return i > 0 && tk.toLowerCase() === ql.slice(0, i).trim() && tv.toLowerCase().includes(ql.slice(i + 1).trim());
  });
}

async function fillKeyList(box, inst) {
  const filters = JSON.stringify([{ Key: 'DKMSInstanceId', Values: [inst.KmsInstanceId] }]);
  let rows = [];
  let total = 0;
  try {
    if (keysView.query) {
      // Three listings (the instance's keys, the account's aliases, the
      // keys' tags), matched here; only the page shown is described.
      const [all, aliases, tags] = await Promise.all([
        listAll('ListKeys', { Filters: filters }, (r) => arr(r.Keys && r.Keys.Key)),
        listAll('ListAliases', {}, (r) => arr(r.Aliases && r.Aliases.Alias), 10000),
        listKeyTags(),
      ]);
      const byKey = (list, id, v) => { (list[id] ||= []).push(v); };
      const al = {}, tg = {};
      for (const a of aliases) byKey(al, a.KeyId, a.AliasName);
      for (const t of tags) byKey(tg, t.ResourceId, [t.TagKey, t.TagValue]);
      const hits = all.filter((k) => matches({ aliases: al[k.KeyId] || [], tags: tg[k.KeyId] || [] }, keysView.query));
      total = hits.length;
      rows = await Promise.all(hits.slice((keysView.page - 1) * keysView.pageSize, keysView.page * keysView.pageSize).map((k) => keyRow(k.KeyId)));
    } else {
      const r = await api('ListKeys', { Filters: filters, PageNumber: keysView.page, PageSize: keysView.pageSize });
      total = r.TotalCount || 0;
      rows = await Promise.all(arr(r.Keys && r.Keys.Key).map((k) => keyRow(k.KeyId)));
    }
  } catch (err) {
    box.replaceChildren(errorBanner(err));
    return;
  }
  const cols = ['Key ID', 'Alias', 'Description', 'Key Specifications', 'Key Usage', 'State', 'Protection Level', 'Created'];
  const trs = rows.map((k) => row([
    h('a', { href: `#/keys/${encodeURIComponent(k.meta.KeyId)}`, text: k.meta.KeyId, class: 'mono' }),
    k.aliases.join(', '), h('span', { class: 'desc', text: k.meta.Description || '' }), k.meta.KeySpec, k.meta.KeyUsage,
    stateBadge(k.meta.KeyState), k.meta.ProtectionLevel, k.meta.CreationDate,
  ], { 'data-key-id': k.meta.KeyId }));
  const pages = Math.max(1, Math.ceil(total / keysView.pageSize));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    button('Previous', () => { keysView.page--; rerender(); }, { id: 'keys-prev', disabled: keysView.page <= 1 }),
    h('span', { id: 'keys-page', text: `Page ${keysView.page} of ${pages} · ${total} key${total === 1 ? '' : 's'}${keysView.query ? ` matching "${keysView.query}"` : ''}` }),
    button('Next', () => { keysView.page++; rerender(); }, { id: 'keys-next', disabled: keysView.page >= pages }));
  box.replaceChildren(listTable(cols, trs, { id: 'keys-table', 'data-testid': 'keys-table' }), pager);
}

// ---------- Create Key panel ----------

async function openCreateKey(inst) {
  if (!inst) return;
  const type = instanceType(inst);
  const specs = SPECS[type] || SPECS.software;
  const prefix = 'ck';
  const specSel = select('ck-spec', specs.Symmetric, specs.Symmetric[0]);
  const usageSel = select('ck-usage', usagesFor(specs.Symmetric[0]), 'ENCRYPT/DECRYPT');
  const rotation = h('input', { type: 'checkbox', id: 'ck-rotation', checked: true });
  const rotationDays = input('ck-rotation-days', { value: '365', inputmode: 'numeric' });
  const rotationBox = h('div', { id: 'ck-rotation-wrap', class: 'group' },
    h('div', { class: 'field' }, h('label', { class: 'choice', for: 'ck-rotation' }, rotation, ' Automatic Rotation'),
      h('p', { class: 'hint', id: 'ck-rotation-hint', text: 'Rotates the key to a new version on the period below.' }),
      h('p', { class: 'field-error', id: 'ck-rotation-error', role: 'alert', hidden: true })),
    field('Rotation Period', rotationDays, { hint: 'In days, from 7 to 365.', errorId: 'ck-rotation-days-error' }));

  const sync = () => {
    const asym = $('#ck-type-asymmetric').checked;
    const list = asym ? specs.Asymmetric : specs.Symmetric;
    if (!list.includes(specSel.value)) {
      specSel.replaceChildren(...list.map((s) => h('option', { value: s, text: s })));
      specSel.value = list[0];
    }
    const us = usagesFor(specSel.value);
    const cur = usageSel.value;
    usageSel.replaceChildren(...us.map((u) => h('option', { value: u, text: u })));
    usageSel.value = us.includes(cur) ? cur : us[0];
    rotationBox.hidden = asym;
    const external = $('#ck-origin-external') && $('#ck-origin-external').checked;
    const canRotate = specSel.value === 'Aliyun_AES_256' && !external;
    rotation.disabled = !canRotate;
    if (!canRotate) rotation.checked = false;
    else if (!rotationTouched) rotation.checked = true; // on by default
    rotationDays.disabled = !rotation.checked;
    $('#ck-rotation-hint').textContent = canRotate ? 'Rotates the key to a new version on the period below.'
      : 'Only Aliyun_AES_256 keys with material made by the service rotate automatically.';
  };
  let rotationTouched = false;
  specSel.addEventListener('change', sync);
  rotation.addEventListener('change', () => { rotationTouched = true; sync(); });

  const tagRows = h('div', { id: 'ck-tags', class: 'tags' });
  const addTag = (k = '', v = '') => {
    if (tagRows.children.length >= 20) {
      setFieldError('ck-tags-error', 'A key carries at most 20 tags.');
      return;
    }
    const n = tagRows.children.length;
    const ki = input(`ck-tag-key-${n}`, { value: k, class: 'tag-key' });
    const vi = input(`ck-tag-value-${n}`, { value: v, class: 'tag-value' });
    const r = h('div', { class: 'tag-row' },
      h('label', { for: ki.id, class: 'sr-only', text: `Tag key ${n + 1}` }), ki,
      h('label', { for: vi.id, class: 'sr-only', text: `Tag value ${n + 1}` }), vi,
      button('Remove', () => r.remove(), { class: 'link', 'aria-label': `Remove tag ${n + 1}` }));
    ki.placeholder = 'Tag key';
    vi.placeholder = 'Tag value';
    tagRows.append(r);
  };

  // Policy settings: RAM users and roles of the account, typed cross-account principals.
  const acct = state.session.Identity.AccountId;
  const policyBox = h('div', { id: 'ck-custom-policy', class: 'group', hidden: true }, h('p', { text: 'Loading RAM users and roles…' }));
  const loadPrincipals = async () => {
    let users = [], roles = [];
    const errs = [];
    try { users = arr((await api('ListUsers')).Users.User); } catch (err) { errs.push(err); }
    try { roles = arr((await api('ListRoles')).Roles.Role); } catch (err) { errs.push(err); }
    const picks = (group) => {
      const opts = [...users.map((u) => [`acs:ram::${acct}:user/${u.UserName}`, `RAM user ${u.UserName}`]),
        ...roles.map((r) => [`acs:ram::${acct}:role/${r.RoleName}`, `RAM role ${r.RoleName}`])];
      const fs = h('fieldset', { class: 'field picks', id: `ck-${group}` }, h('legend', { text: group === 'admins' ? 'Administrators' : 'Users' }));
      if (!opts.length) fs.append(h('p', { class: 'hint', text: 'The account has no RAM users or roles.' }));
      opts.forEach(([v, t], i) => {
        const cb = h('input', { type: 'checkbox', id: `ck-${group}-${i}`, value: v, 'data-principal': v });
        fs.append(h('label', { class: 'choice', for: cb.id }, cb, ' ', t));
      });
      return fs;
    };
    const cross = h('textarea', { id: 'ck-cross', rows: 3, placeholder: `acs:ram::<userId>:user/<name>\nacs:ram::<userId>:role/<name>` });
    const quota = h('p', { id: 'ck-quota', class: 'hint', 'data-testid': 'access-quota' });
    // The quota used: the instance's own count when the service reports
    // one, else the sum over the instance's keys of the distinct principals
    // of other accounts their policies allow (how the service counts).
    let used = inst.AccessUsed ?? null;
    const total = Number(inst.AccessQuota ?? ACCESS_QUOTA);
    const updateQuota = () => {
      const n = new Set(cross.value.split('\n').map((s) => s.trim()).filter((s) => s && !s.startsWith(`acs:ram::${acct}:`))).size;
      if (used === null) {
        quota.textContent = `Access management quota of ${inst.KmsInstanceId}: counting what the instance's keys use…`;
        return;
      }
      const left = total - used - n;
      quota.textContent = `Access management quota of ${inst.KmsInstanceId}: ${used} of ${total} used by its keys; this key adds ${n}, which leaves ${Math.max(0, left)}. Each principal of another account counts once per key.`;
      quota.classList.toggle('field-error', left < 0);
    };
    cross.addEventListener('input', updateQuota);
    updateQuota();
    if (used === null) {
      countAccessUsed(inst.KmsInstanceId).then((u) => { used = u; updateQuota(); }).catch(() => {
        quota.textContent = `Access management quota of ${inst.KmsInstanceId}: ${total} principals of other accounts in all; what its keys use could not be read.`;
      });
    }
    policyBox.replaceChildren();
    append(policyBox, [
      errs.length ? errorBanner(errs[0]) : null,
      h('p', { class: 'hint', text: 'The account (root) keeps full access. Administrators manage the key; Users use it for cryptography.' }),
      picks('admins'), picks('users'),
      field('Cross-account Users', cross, { hint: 'One per line: acs:ram::<userId>:user/<name> or acs:ram::<userId>:role/<name>.', errorId: 'ck-cross-error' }),
      quota]);
  };
  let loaded = false;
  const onPolicy = () => {
    const custom = $('#ck-policy-custom').checked;
    policyBox.hidden = !custom;
    if (custom && !loaded) { loaded = true; loadPrincipals(); }
  };

  const origin = materialSource(prefix);
  origin.addEventListener('change', sync);

  const content = [
    h('p', { class: 'hint' }, 'Instance ', h('strong', { text: `${inst.KmsInstanceId} (${type})` })),
    h('fieldset', { class: 'field' }, h('legend', { text: 'Key Type' }),
      radio('ck-type', 'ck-type-symmetric', 'Symmetric', 'Symmetric', true, { change: sync }),
      radio('ck-type', 'ck-type-asymmetric', 'Asymmetric', 'Asymmetric', false, { change: sync }),
      h('p', { class: 'field-error', id: 'ck-type-error', role: 'alert', hidden: true })),
    field('Key Specifications', specSel),
    field('Key Usage', usageSel),
    field('Key Alias', input('ck-alias', { placeholder: 'name' }), { prefix: 'alias/', hint: 'Optional. Letters, digits, _, - and / (alias/acs/ and alias/aliyun/ are reserved).' }),
    h('fieldset', { class: 'field' }, h('legend', { text: 'Tags' }),
      h('p', { class: 'hint', id: 'ck-tags-hint', text: 'Up to 20. Keys 1–128, values 0–128 characters of letters, digits, spaces and / \\ _ - . + = : @; keys may not start with aliyun or acs:.' }),
      tagRows, button('Add Tag', () => addTag(), { id: 'ck-add-tag', class: 'secondary' }),
      h('p', { class: 'field-error', id: 'ck-tags-error', role: 'alert', hidden: true })),
    rotationBox,
    field('Description', h('textarea', { id: 'ck-description', rows: 3 })),
    h('details', { id: 'ck-advanced', class: 'advanced' }, h('summary', { text: 'Advanced Settings' }),
      h('fieldset', { class: 'field' }, h('legend', { text: 'Policy Settings' }),
        radio('ck-policy', 'ck-policy-default', 'default', 'Default Policy', true, { change: onPolicy }),
        radio('ck-policy', 'ck-policy-custom', 'custom', 'Custom Policy', false, { change: onPolicy }),
        policyBox,
        h('p', { class: 'field-error', id: 'ck-policy-error', role: 'alert', hidden: true })),
      origin),
  ];
  openPanel('create-key-panel', 'Create Key', content, async (banner) => {
    for (const e of document.querySelectorAll('#create-key-panel .field-error')) { e.hidden = true; e.textContent = ''; }
    // A value set without a change event (a script, an autofill) still
    // gets the usages and rotation its spec allows.
    sync();
    let bad = false;
    const err = (id, msg) => { if (msg) { setFieldError(id, msg); bad = true; } };
    const asym = $('#ck-type-asymmetric').checked;
    const spec = specSel.value;
    const okSpecs = asym ? specs.Asymmetric : specs.Symmetric;
    if (!okSpecs.includes(spec)) err('ck-spec-error', `${spec} is not offered by a ${type} instance.`);
    if (!usagesFor(spec).includes(usageSel.value)) err('ck-usage-error', `${spec} keys do not allow ${usageSel.value}.`);
    const alias = aliasPart($('#ck-alias').value);
    err('ck-alias-error', rules.aliasPart(alias));
    const tags = [];
    const seen = new Set();
    for (const r of tagRows.children) {
      const k = r.querySelector('.tag-key').value.trim();
      const v = r.querySelector('.tag-value').value.trim();
      if (k === '' && v === '') continue;
      const m = rules.tag(k, v);
      if (m) { err('ck-tags-error', m); break; }
      if (seen.has(k)) { err('ck-tags-error', `The tag key "${k}" appears twice.`); break; }
      seen.add(k);
      tags.push({ TagKey: k, TagValue: v });
    }
    if (tags.length > 20) err('ck-tags-error', 'A key carries at most 20 tags.');
    const desc = $('#ck-description').value;
    err('ck-description-error', rules.description(desc));
    const rotate = !asym && rotation.checked && !rotation.disabled;
    if (!asym) err('ck-rotation-days-error', rules.intIn(rotationDays.value, 7, 365, 'The rotation period'));
    const originV = checkOrigin(prefix);
    if (!originV) { $('#ck-advanced').open = true; bad = true; }
    if (originV === 'EXTERNAL' && spec !== 'Aliyun_AES_256') err('ck-origin-error', 'External key material is only for Aliyun_AES_256 keys.');
    let policy = null;
    if ($('#ck-policy-custom').checked) {
      const picked = (g) => [...document.querySelectorAll(`#ck-${g} input:checked`)].map((c) => c.value);
      const cross = [...new Set(($('#ck-cross') ? $('#ck-cross').value : '').split('\n').map((s) => s.trim()).filter(Boolean))];
      for (const c of cross) { const m = rules.principal(c); if (m) { err('ck-cross-error', m); break; } }
      const foreign = cross.filter((c) => !c.startsWith(`acs:ram::${acct}:`));
      if (foreign.length > ACCESS_QUOTA) err('ck-cross-error', `At most ${ACCESS_QUOTA} principals of other accounts (the access management quota).`);
      const admins = picked('admins');
      const users = [...picked('users'), ...cross];
      const st = [{ Sid: 'Enable User Permissions', Effect: 'Allow', Principal: { RAM: [`acs:ram::${acct}:root`] }, Action: ['kms:*'], Resource: ['*'] }];
      if (admins.length) st.push({ Sid: 'Enable Administrators Permissions', Effect: 'Allow', Principal: { RAM: admins }, Action: ADMIN_ACTIONS, Resource: ['*'] });
      if (users.length) st.push({ Sid: 'Enable Users Permissions', Effect: 'Allow', Principal: { RAM: users }, Action: USER_ACTIONS, Resource: ['*'] });
      policy = JSON.stringify({ Version: '1', Statement: st });
      if (bad) $('#ck-advanced').open = true;
    }
    if (bad) {
      const first = document.querySelector('#create-key-panel .field-error:not([hidden])');
      if (first) first.scrollIntoView({ block: 'nearest' });
      return;
    }
    const params = {
      DKMSInstanceId: inst.KmsInstanceId, KeySpec: spec, KeyUsage: usageSel.value, Origin: originV, Description: desc,
    };
    if (!asym) {
      params.EnableAutomaticRotation = String(rotate);
      if (rotate) params.RotationInterval = `${Number(rotationDays.value.trim())}d`;
    }
    if (alias) params.AliasName = `alias/${alias}`;
    if (tags.length) params.Tags = JSON.stringify(tags);
    if (policy) params.Policy = policy;
    try {
      const r = await api('CreateKey', params);
      closePanel();
      toast(`Key ${r.KeyMetadata.KeyId} created.`);
      state.lastCreatedKey = r.KeyMetadata.KeyId;
      keysView.instance = inst.KmsInstanceId;
      rerender();
    } catch (e) {
      showServerError(e, banner, {
        AliasName: 'ck-alias-error', Tags: 'ck-tags-error', RotationInterval: 'ck-rotation-days-error',
        EnableAutomaticRotation: 'ck-rotation-error', Description: 'ck-description-error', Policy: 'ck-policy-error',
        Origin: 'ck-origin-error', KeySpec: 'ck-spec-error', KeyUsage: 'ck-usage-error', DKMSInstanceId: 'ck-spec-error',
      });
      if (['Policy', 'Origin'].includes(errorParam(e))) $('#ck-advanced').open = true;
    }
  });
  sync();
}

// crossAccountPrincipals counts the distinct principals of other accounts
// that a policy document allows (kms.CrossAccountPrincipals).
function crossAccountPrincipals(doc, owner) {
  let p;
  try { p = JSON.parse(doc); } catch { return 0; }
  const seen = new Set();
  for (const st of arr(p && p.Statement)) {
    if (!st || st.Effect !== 'Allow') continue;
    const ram = st.Principal && st.Principal.RAM;
    for (const pr of arr(ram)) {
      if (typeof pr !== 'string' || !pr.startsWith('acs:ram::')) continue;
      const acct = pr.slice('acs:ram::'.length).split(':')[0];
      if (acct !== owner && acct !== '*') seen.add(pr);
    }
  }
  return seen.size;
}

async function countAccessUsed(instanceId) {
  const owner = state.session.Identity.AccountId;
  const keys = await listAll('ListKeys', { Filters: JSON.stringify([{ Key: 'DKMSInstanceId', Values: [instanceId] }]) },
    (r) => arr(r.Keys && r.Keys.Key));
  let used = 0;
  for (let i = 0; i < keys.length; i += 10) {
    const batch = await Promise.all(keys.slice(i, i + 10).map((k) => api('GetKeyPolicy', { KeyId: k.KeyId, PolicyName: 'default' })
      .then((r) => crossAccountPrincipals(r.Policy || '', owner))));
    used += batch.reduce((a, b) => a + b, 0);
  }
  return used;
}

// ---------- Key details ----------

async function pageKey(keyId) {
  const seq = state.renderSeq;
  const d = await api('DescribeKey', { KeyId: keyId });
  const k = d.KeyMetadata;
  const p = page(`Key ${k.KeyId}`);
  p.dataset.page = 'key';
  p.id = 'key-details';
  p.dataset.keyId = k.KeyId;
  const sym = isSymmetric(k.KeySpec);
  const banner = h('div', { class: 'banner error', id: 'kd-banner', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const act = (fn) => async (ev) => {
    const b = ev && ev.currentTarget;
    if (b) b.disabled = true;
    banner.hidden = true;
    try { await fn(); } catch (err) { fillBanner(banner, err); banner.scrollIntoView({ block: 'nearest' }); } finally { if (b) b.disabled = false; }
  };
  const reload = () => { if (isCurrent(seq)) rerender(); };

  const actions = h('div', { class: 'toolbar' },
    h('a', { href: '#/keys', class: 'back' }, '← Keys'),
    k.KeyState === 'Disabled' ? button('Enable', act(async () => { await api('EnableKey', { KeyId: k.KeyId }); toast('Key enabled.'); reload(); }), { id: 'kd-enable' }) : null,
    k.KeyState === 'Enabled' ? button('Disable', act(async () => { await api('DisableKey', { KeyId: k.KeyId }); toast('Key disabled.'); reload(); }), { id: 'kd-disable', class: 'secondary' }) : null);
  p.append(actions, banner);

  // Basic information.
  const descIn = h('textarea', { id: 'kd-description-input', rows: 2, value: k.Description || '' });
  p.append(card('Basic information',
    dl([['Key ID', h('span', { class: 'mono', text: k.KeyId }), 'kd-key-id'], ['ARN', h('span', { class: 'mono', text: k.Arn })],
      ['State', stateBadge(k.KeyState), 'kd-state'], ['Key Specifications', k.KeySpec, 'kd-spec'], ['Key Usage', k.KeyUsage, 'kd-usage'],
      ['Key Material Source', originWords(k.Origin), 'kd-origin'], ['Protection Level', k.ProtectionLevel, 'kd-protection'],
      ['Instance ID', k.DKMSInstanceId || '(default key, no instance)'], ['Created', k.CreationDate],
      ['Description', h('span', { class: 'desc', id: 'kd-description', text: k.Description || '' })],
      ['Deletion date', k.DeleteDate, 'kd-delete-date'], ['Material expires', k.MaterialExpireTime || (k.Origin === 'EXTERNAL' ? 'never' : ''), 'kd-material-expiry']]),
    h('details', { class: 'advanced' }, h('summary', { text: 'Edit description' }),
      field('Description', descIn),
      button('Save description', act(async () => {
        const m = rules.description(descIn.value);
        setFieldError('kd-description-input-error', m);
        if (m) return;
        await api('UpdateKeyDescription', { KeyId: k.KeyId, Description: descIn.value });
        toast('Description saved.');
        reload();
      }), { id: 'kd-description-save' }))));

  const sections = await Promise.allSettled([
    api('ListKeyVersions', { KeyId: k.KeyId, PageSize: 100 }),
    api('ListAliasesByKeyId', { KeyId: k.KeyId, PageSize: 100 }),
    api('ListResourceTags', { KeyId: k.KeyId }),
    api('GetKeyPolicy', { KeyId: k.KeyId, PolicyName: 'default' }),
  ]);
  const got = (i, f) => (sections[i].status === 'fulfilled' ? f(sections[i].value) : errorBanner(sections[i].reason));

  // Versions.
  p.append(card('Key versions', got(0, (r) => {
    const vs = arr(r.KeyVersions && r.KeyVersions.KeyVersion);
    const cols = ['Version ID', 'Created', 'Primary'];
    return [listTable(cols, vs.map((v) => row([h('span', { class: 'mono', text: v.KeyVersionId }), v.CreationDate,
      v.KeyVersionId === k.PrimaryKeyVersion ? h('span', { class: 'badge primary', text: 'Primary' }) : ''], { 'data-version': v.KeyVersionId })), { id: 'kd-versions' }),
    k.Origin !== 'EXTERNAL' && k.KeyState === 'Enabled'
      ? button('Create version (rotate now)', act(async () => { await api('CreateKeyVersion', { KeyId: k.KeyId }); toast('New version created.'); reload(); }), { id: 'kd-create-version', class: 'secondary' }) : null];
  })));

  // Rotation policy (only service-made AES-256 material rotates).
  if (k.KeySpec === 'Aliyun_AES_256' && k.Origin !== 'EXTERNAL') {
    const on = h('input', { type: 'checkbox', id: 'kd-rotation', checked: k.AutomaticRotation === 'Enabled' });
    const secs = parseInt(k.RotationInterval || '0', 10);
    const days = input('kd-rotation-days', { value: secs ? String(Math.round(secs / 86400)) : '365', inputmode: 'numeric' });
    p.append(card('Rotation policy',
      dl([['Automatic Rotation', k.AutomaticRotation, 'kd-rotation-state'], ['Rotation Period', secs ? `${Math.round(secs / 86400)} days` : ''],
        ['Last rotation', k.LastRotationDate], ['Next rotation', k.NextRotationDate]]),
      h('div', { class: 'field' }, h('label', { class: 'choice', for: 'kd-rotation' }, on, ' Automatic Rotation')),
      field('Rotation Period', days, { hint: 'In days, from 7 to 365.' }),
      button('Save rotation policy', act(async () => {
        const m = on.checked ? rules.intIn(days.value, 7, 365, 'The rotation period') : '';
        setFieldError('kd-rotation-days-error', m);
        if (m) return;
        const params = { KeyId: k.KeyId, EnableAutomaticRotation: String(on.checked) };
        if (on.checked) params.RotationInterval = `${Number(days.value.trim())}d`;
        try { await api('UpdateRotationPolicy', params); } catch (err) {
          if (errorParam(err) === 'RotationInterval') { setFieldError('kd-rotation-days-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast('Rotation policy saved.');
        reload();
      }), { id: 'kd-rotation-save' })));
  }

  // Aliases.
  p.append(card('Aliases', got(1, (r) => {
    const as = arr(r.Aliases && r.Aliases.Alias);
    const name = input('kd-alias', { placeholder: 'name' });
    return [listTable(['Alias', ''], as.map((a) => row([h('span', { class: 'mono', text: a.AliasName }),
      button('Delete', act(async () => { await api('DeleteAlias', { AliasName: a.AliasName }); toast('Alias deleted.'); reload(); }), { class: 'link', 'aria-label': `Delete ${a.AliasName}` })])), { id: 'kd-aliases' }),
    h('form', { class: 'inline', id: 'kd-alias-form', on: { submit: (ev) => { ev.preventDefault(); $('#kd-alias-add').click(); } } },
      field('New alias', name, { prefix: 'alias/' }),
      button('Add alias', act(async () => {
        const v = aliasPart(name.value);
        const m = v ? rules.aliasPart(v) : 'Type the alias after alias/.';
        setFieldError('kd-alias-error', m);
        if (m) return;
        try { await api('CreateAlias', { AliasName: `alias/${v}`, KeyId: k.KeyId }); } catch (err) {
          if (errorParam(err) === 'AliasName') { setFieldError('kd-alias-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast('Alias added.');
        reload();
      }), { id: 'kd-alias-add' }))];
  })));

  // Tags.
  p.append(card('Tags', got(2, (r) => {
    const ts = arr(r.Tags && r.Tags.Tag);
    const tk = input('kd-tag-key');
    const tv = input('kd-tag-value');
    return [listTable(['Tag key', 'Tag value', ''], ts.map((t) => row([h('span', { text: t.TagKey }), h('span', { text: t.TagValue }),
      button('Remove', act(async () => { await api('UntagResource', { KeyId: k.KeyId, TagKeys: JSON.stringify([t.TagKey]) }); toast('Tag removed.'); reload(); }), { class: 'link', 'aria-label': `Remove tag ${t.TagKey}` })])), { id: 'kd-tags' }),
    h('div', { class: 'inline' }, field('Tag key', tk, { errorId: 'kd-tag-error' }), field('Tag value', tv),
      button('Add tag', act(async () => {
        const m = rules.tag(tk.value.trim(), tv.value.trim()) || (ts.length >= 20 && !ts.some((t) => t.TagKey === tk.value.trim()) ? 'A key carries at most 20 tags.' : '');
        setFieldError('kd-tag-error', m);
        if (m) return;
        try { await api('TagResource', { KeyId: k.KeyId, Tags: JSON.stringify([{ TagKey: tk.value.trim(), TagValue: tv.value.trim() }]) }); } catch (err) {
          if (errorParam(err) === 'Tags') { setFieldError('kd-tag-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast('Tag added.');
        reload();
      }), { id: 'kd-tag-add' }))];
  })));

  // Key policy.
  p.append(card('Key policy', got(3, (r) => {
    let pretty = r.Policy || '';
    try { pretty = JSON.stringify(JSON.parse(pretty), null, 2); } catch { /* shown as stored */ }
    const view = h('pre', { id: 'kd-policy', class: 'code', text: pretty, tabindex: '0' });
    const editor = h('textarea', { id: 'kd-policy-input', rows: 14, class: 'mono', value: pretty });
    const edit = h('details', { class: 'advanced', id: 'kd-policy-edit' }, h('summary', { text: 'Edit policy' }),
      field('Policy document (JSON)', editor),
      button('Save policy', act(async () => {
        let m = '';
        try { JSON.parse(editor.value); } catch (e) { m = `Not JSON: ${e.message}`; }
        setFieldError('kd-policy-input-error', m);
        if (m) return;
        try { await api('SetKeyPolicy', { KeyId: k.KeyId, PolicyName: 'default', Policy: editor.value }); } catch (err) {
          if (errorParam(err) === 'Policy') { setFieldError('kd-policy-input-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast('Key policy saved.');
        reload();
      }), { id: 'kd-policy-save' }));
    return [view, edit];
  })));

  // Public key.
  if (!sym && k.KeyState === 'Enabled') {
    const box = h('div', { id: 'kd-public-key-box' }, h('p', { text: 'Loading…' }));
    p.append(card('Public key', box));
    api('GetPublicKey', { KeyId: k.KeyId, KeyVersionId: k.PrimaryKeyVersion }).then((r) => {
      const pem = r.PublicKey;
      const copy = button('Copy', (ev) => copyText(pem, ev.currentTarget), { id: 'kd-public-key-copy', class: 'secondary' });
      box.replaceChildren(h('p', { class: 'hint', text: `Version ${k.PrimaryKeyVersion} (primary), PEM SubjectPublicKeyInfo.` }),
        h('pre', { id: 'kd-public-key', class: 'code', text: pem, tabindex: '0' }),
        h('div', { class: 'actions' }, copy,
          button('Download', () => download(`${k.KeyId}.pem`, pem, 'application/x-pem-file'), { id: 'kd-public-key-download', class: 'secondary' })));
    }).catch((err) => box.replaceChildren(errorBanner(err)));
  }

  // Import wizard (External keys).
  if (k.Origin === 'EXTERNAL') p.append(importWizard(k, act, reload));

  // Try it.
  if (k.KeyState === 'Enabled') p.append(tryIt(k));

  // Deletion protection and deletion.
  const protectedOn = k.DeletionProtection === 'Enabled';
  const protDesc = input('kd-protection-description', { value: k.DeletionProtectionDescription || '' });
  p.append(card('Deletion protection',
    dl([['Deletion protection', k.DeletionProtection || 'Disabled', 'kd-protection-state'], ['Reason', k.DeletionProtectionDescription]]),
    protectedOn ? null : field('Reason (optional)', protDesc, { hint: 'At most 128 characters.' }),
    button(protectedOn ? 'Turn off deletion protection' : 'Turn on deletion protection', act(async () => {
      if (!protectedOn && [...protDesc.value].length > 128) { setFieldError('kd-protection-description-error', 'At most 128 characters.'); return; }
      const params = { ProtectedResourceArn: k.Arn, EnableDeletionProtection: String(!protectedOn) };
      if (!protectedOn && protDesc.value) params.DeletionProtectionDescription = protDesc.value;
      await api('SetDeletionProtection', params);
      toast(protectedOn ? 'Deletion protection off.' : 'Deletion protection on.');
      reload();
    }), { id: 'kd-protection-toggle', class: 'secondary' })));

  const days = input('kd-pending-days', { value: '30', inputmode: 'numeric' });
  p.append(card('Delete the key', k.KeyState === 'PendingDeletion'
    ? [h('p', { id: 'kd-pending', text: `The key is scheduled for deletion on ${k.DeleteDate}. Until then it can be restored.` }),
      button('Cancel deletion', act(async () => { await api('CancelKeyDeletion', { KeyId: k.KeyId }); toast('Deletion cancelled.'); reload(); }), { id: 'kd-cancel-deletion', class: 'primary' })]
    : [h('p', { class: 'hint', text: 'After the waiting period the key, its versions and aliases are deleted for good, and what it encrypted can no longer be decrypted.' }),
      field('Waiting period (days)', days, { hint: '7 to 366 days.' }),
      button('Schedule deletion', act(async () => {
        const m = rules.intIn(days.value, 7, 366, 'The waiting period');
        setFieldError('kd-pending-days-error', m);
        if (m) return;
        try { await api('ScheduleKeyDeletion', { KeyId: k.KeyId, PendingWindowInDays: days.value.trim() }); } catch (err) {
          if (errorParam(err) === 'PendingWindowInDays') { setFieldError('kd-pending-days-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast('Deletion scheduled.');
        reload();
      }), { id: 'kd-schedule-deletion', class: 'danger' })]));
  // Wide screens: the sections after the basic information in two columns.
  const cards = [...p.querySelectorAll(':scope > section.card')];
  const grid = h('div', { class: 'grid' });
  for (const c of cards.slice(1)) grid.append(c);
  p.append(grid);
  return p;
}

function importWizard(k, act, reload) {
  const algo = select('imp-algorithm', ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1', 'RSAES_PKCS1_V1_5'], 'RSAES_OAEP_SHA_256');
  const step1 = h('div', { id: 'imp-params', class: 'group' });
  const material = h('textarea', { id: 'imp-material', rows: 4, class: 'mono', placeholder: 'Base64 of the wrapped 32-byte key material' });
  const file = h('input', { type: 'file', id: 'imp-material-file' });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    const bytes = new Uint8Array(await f.arrayBuffer());
    const text = new TextDecoder().decode(bytes).trim();
    material.value = /^[A-Za-z0-9+/=_-\s]+$/.test(text) && bytes.length !== 256 ? text.replace(/\s+/g, '') : b64encode(bytes);
  });
  const token = h('textarea', { id: 'imp-token', rows: 3, class: 'mono' });
  const never = h('input', { type: 'radio', name: 'imp-expiry', id: 'imp-expiry-never', value: 'never', checked: true });
  const at = h('input', { type: 'radio', name: 'imp-expiry', id: 'imp-expiry-at', value: 'at' });
  const when = input('imp-expiry-time', { type: 'datetime-local' });
  return card('Import key material',
    h('p', { class: 'hint', text: 'Three steps: get a wrapping public key and an import token, wrap your 32-byte AES-256 key material under the public key with the chosen algorithm (outside the console), then upload the wrapped material with the token.' }),
    dl([['State', k.KeyState], ['Material expires', k.MaterialExpireTime || (k.KeyState === 'Enabled' ? 'never' : 'no material yet'), 'imp-expiry-current']]),
    h('h3', { text: '1. Download the wrapping public key and import token' }),
    field('Wrapping algorithm', algo),
    field('Wrapping key spec', select('imp-spec', ['RSA_2048'], 'RSA_2048')),
    button('Get import parameters', act(async () => {
      const r = await api('GetParametersForImport', { KeyId: k.KeyId, WrappingAlgorithm: algo.value, WrappingKeySpec: 'RSA_2048' });
      token.value = r.ImportToken;
      step1.replaceChildren(
        field('Wrapping public key (Base64 DER)', h('textarea', { id: 'imp-public-key', rows: 4, class: 'mono', readonly: true, value: r.PublicKey })),
        field('Import token', h('textarea', { id: 'imp-token-out', rows: 3, class: 'mono', readonly: true, value: r.ImportToken })),
        h('p', { id: 'imp-token-expiry', text: `The token expires at ${r.TokenExpireTime}.` }),
        h('div', { class: 'actions' },
          button('Download public key', () => download(`publickey_${k.KeyId}.bin`, b64decode(r.PublicKey)), { id: 'imp-download-key', class: 'secondary' }),
          button('Download import token', () => download(`token_${k.KeyId}.txt`, r.ImportToken, 'text/plain'), { id: 'imp-download-token', class: 'secondary' })));
    }), { id: 'imp-get-params' }),
    step1,
    h('h3', { text: '2. Upload the wrapped key material' }),
    field('Wrapped key material (Base64)', material, { hint: 'Paste the Base64, or choose the file below.' }),
    field('…or a file of wrapped key material', file),
    field('Import token', token),
    h('fieldset', { class: 'field' }, h('legend', { text: 'Key material expiry' }),
      h('label', { class: 'choice', for: 'imp-expiry-never' }, never, ' Never expires'),
      h('label', { class: 'choice', for: 'imp-expiry-at' }, at, ' Expires at (your local time)'), when,
      h('p', { class: 'field-error', id: 'imp-expiry-error', role: 'alert', hidden: true })),
    button('Import key material', act(async () => {
      let bad = false;
      const m = material.value.replace(/\s+/g, '');
      const e1 = /^[A-Za-z0-9+/_-]+=*$/.test(m) ? '' : 'Paste the Base64 of the wrapped material (or choose its file).';
      setFieldError('imp-material-error', e1); bad ||= !!e1;
      const e2 = token.value.trim() ? '' : 'Get the import parameters first (step 1), or paste a token.';
      setFieldError('imp-token-error', e2); bad ||= !!e2;
      let expire = '0';
      if (at.checked) {
        const t = Date.parse(when.value);
        const e3 = Number.isNaN(t) ? 'Pick the date and time the material expires.' : t <= Date.now() ? 'The expiry must be in the future.' : '';
        setFieldError('imp-expiry-error', e3); bad ||= !!e3;
        expire = String(Math.floor(t / 1000));
      }
      if (bad) return;
      try {
        await api('ImportKeyMaterial', { KeyId: k.KeyId, EncryptedKeyMaterial: m, ImportToken: token.value.trim(), KeyMaterialExpireUnix: expire });
      } catch (err) {
        const map = { EncryptedKeyMaterial: 'imp-material-error', ImportToken: 'imp-token-error', KeyMaterialExpireUnix: 'imp-expiry-error' };
        const codeMap = { InvalidKeyMaterial: 'imp-material-error', InvalidImportToken: 'imp-token-error', ExpiredImportToken: 'imp-token-error' };
        const id = map[errorParam(err)] || codeMap[err.code];
        if (id) { setFieldError(id, `${err.code}: ${err.msg}`); return; }
        throw err;
      }
      toast('Key material imported.');
      reload();
    }), { id: 'imp-import', class: 'primary' }),
    k.KeyState === 'Enabled' ? button('Delete key material', act(async () => {
      await api('DeleteKeyMaterial', { KeyId: k.KeyId });
      toast('Key material deleted.');
      reload();
    }), { id: 'imp-delete', class: 'danger' }) : null);
}

function tryIt(k) {
  const out = h('div', { id: 'try-result', 'aria-live': 'polite' });
  const err = h('div', { class: 'banner error', id: 'try-error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const run = (fn) => async (ev) => {
    const b = ev.currentTarget;
    b.disabled = true;
    err.hidden = true;
    try { await fn(); } catch (e) { fillBanner(err, e); } finally { b.disabled = false; }
  };
  const ctxOK = (s) => {
    if (!s.trim()) return '';
    try {
      const o = JSON.parse(s);
      if (!o || typeof o !== 'object' || Array.isArray(o) || Object.values(o).some((v) => typeof v !== 'string')) return 'An encryption context is a JSON object of strings, e.g. {"purpose":"demo"}.';
    } catch { return 'An encryption context is a JSON object of strings, e.g. {"purpose":"demo"}.'; }
    return '';
  };
  if (k.KeyUsage === 'ENCRYPT/DECRYPT' && isSymmetric(k.KeySpec)) {
    const pt = h('textarea', { id: 'try-plaintext', rows: 2 });
    const ctx = input('try-context', { placeholder: '{"purpose":"demo"}' });
    const ct = h('textarea', { id: 'try-ciphertext', rows: 3, class: 'mono' });
    const dec = h('output', { id: 'try-decrypted', for: 'try-ciphertext' });
    return card('Try it',
      h('p', { class: 'hint', text: 'Encrypt a short text with this key, then decrypt it. The text is sent as Base64 of its UTF-8 bytes, the service\'s convention.' }),
      err,
      field('Text to encrypt', pt, { hint: 'At most 4 KiB.' }),
      field('Encryption context (optional JSON)', ctx),
      button('Encrypt', run(async () => {
        // 4 KiB of text is 5,464 characters of Base64, under the 6 KiB limit.
        const n = utf8.encode(pt.value).length;
        const mText = n === 0 ? 'Type some text.' : n > 4096 ? 'At most 4 KiB of text.' : '';
        const mCtx = ctxOK(ctx.value);
        setFieldError('try-plaintext-error', mText);
        setFieldError('try-context-error', mCtx);
        if (mText || mCtx) return;
        const params = { KeyId: k.KeyId, Plaintext: textToB64(pt.value) };
        if (ctx.value.trim()) params.EncryptionContext = ctx.value.trim();
        const r = await api('Encrypt', params);
        ct.value = r.CiphertextBlob;
        out.replaceChildren(okBanner(`Encrypted with version ${r.KeyVersionId}.`, { id: 'try-encrypted' }));
      }), { id: 'try-encrypt', class: 'primary' }),
      field('Ciphertext (CiphertextBlob)', ct),
      button('Decrypt', run(async () => {
        const m = ctxOK(ctx.value);
        setFieldError('try-context-error', m);
        if (m) return;
        if (!ct.value.trim()) { setFieldError('try-ciphertext-error', 'Paste a CiphertextBlob, or encrypt first.'); return; }
        setFieldError('try-ciphertext-error', '');
        const params = { CiphertextBlob: ct.value.trim() };
        if (ctx.value.trim()) params.EncryptionContext = ctx.value.trim();
        const r = await api('Decrypt', params);
        const text = b64ToText(r.Plaintext);
        dec.textContent = text === null ? r.Plaintext : text;
        out.replaceChildren(okBanner(`Decrypted by key ${r.KeyId}, version ${r.KeyVersionId}.`, { id: 'try-decrypted-note' }));
      }), { id: 'try-decrypt', class: 'secondary' }),
      h('div', { class: 'field' }, h('span', { class: 'label', text: 'Decrypted text' }), dec),
      out);
  }
  const version = k.PrimaryKeyVersion;
  if (k.KeyUsage === 'ENCRYPT/DECRYPT') {
    const algo = select('try-algorithm', ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'], 'RSAES_OAEP_SHA_256');
    const pt = h('textarea', { id: 'try-plaintext', rows: 2 });
    const ct = h('textarea', { id: 'try-ciphertext', rows: 3, class: 'mono' });
    const dec = h('output', { id: 'try-decrypted' });
    return card('Try it', err,
      h('p', { class: 'hint', text: `Encrypts with the public key of version ${version} (primary).` }),
      field('Algorithm', algo), field('Text to encrypt', pt, { hint: 'RSA_2048 with SHA-256: at most 190 bytes.' }),
      button('Encrypt', run(async () => {
        const r = await api('AsymmetricEncrypt', { KeyId: k.KeyId, KeyVersionId: version, Algorithm: algo.value, Plaintext: textToB64(pt.value) });
        ct.value = r.CiphertextBlob;
      }), { id: 'try-encrypt', class: 'primary' }),
      field('Ciphertext', ct),
      button('Decrypt', run(async () => {
        const r = await api('AsymmetricDecrypt', { KeyId: k.KeyId, KeyVersionId: version, Algorithm: algo.value, CiphertextBlob: ct.value.trim() });
        const text = b64ToText(r.Plaintext);
        dec.textContent = text === null ? r.Plaintext : text;
      }), { id: 'try-decrypt', class: 'secondary' }),
      h('div', { class: 'field' }, h('span', { class: 'label', text: 'Decrypted text' }), dec), out);
  }
  const algos = k.KeySpec.startsWith('RSA') ? ['RSA_PSS_SHA_256', 'RSA_PKCS1_SHA_256'] : ['ECDSA_SHA_256'];
  const algo = select('try-algorithm', algos, algos[0]);
  const msg = h('textarea', { id: 'try-message', rows: 2 });
  const sig = h('textarea', { id: 'try-signature', rows: 3, class: 'mono' });
  const verdict = h('output', { id: 'try-verified' });
  const digest = () => b64encode(sha256(utf8.encode(msg.value)));
  return card('Try it', err,
    h('p', { class: 'hint', text: `Signs the SHA-256 digest of the message (computed in your browser) with version ${version} (primary).` }),
    field('Algorithm', algo), field('Message', msg),
    button('Sign', run(async () => {
      const r = await api('AsymmetricSign', { KeyId: k.KeyId, KeyVersionId: version, Algorithm: algo.value, Digest: digest() });
      sig.value = r.Value;
      verdict.textContent = '';
    }), { id: 'try-sign', class: 'primary' }),
    field('Signature (Base64)', sig),
    button('Verify', run(async () => {
      const r = await api('AsymmetricVerify', { KeyId: k.KeyId, KeyVersionId: version, Algorithm: algo.value, Digest: digest(), Value: sig.value.trim() });
      verdict.textContent = String(r.Value) === 'true' ? 'The signature is valid.' : 'The signature is NOT valid for this message.';
    }), { id: 'try-verify', class: 'secondary' }),
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'Verification' }), verdict), out);
}

// ---------- Instances ----------

async function pageInstances() {
  const list = await instances(true);
  const cols = ['Instance ID', 'Type', 'HSM domain', 'Keys', 'Secrets', 'Status', 'Created', 'Network', ''];
  const p = page('Instances',
    h('p', { class: 'hint', text: 'KMS instances hold keys and secrets. Software instances keep key material wrapped under the cluster root key; hardware instances keep it inside the HSMs of their domain. An operator creates instances (kmsctl operator instance create).' }),
    listTable(cols, list.map((i) => row([
      h('span', { class: 'mono', text: i.KmsInstanceId }), instanceType(i), i.HsmDomain || '', `${i.KeyUsed ?? '?'} of ${i.KeyNum ?? '?'}`,
      i.SecretNum ?? '', i.Status || (i.error ? i.error.code : ''), i.CreateTime || '', i.VpcId || '',
      h('div', { class: 'row-actions' },
        h('a', { href: '#/keys', on: { click: () => { keysView.instance = i.KmsInstanceId; keysView.page = 1; } }, text: 'Keys' }),
        button('Network…', () => openConnectInstance(i), { class: 'link', id: `inst-network-${i.KmsInstanceId}` })),
    ], { 'data-instance': i.KmsInstanceId })), { id: 'instances-table' }));
  p.dataset.page = 'instances';
  return p;
}

// openConnectInstance binds an instance to a network rule (the cloud's VPC,
// mapped): its keys and secrets then answer only requests from there.
async function openConnectInstance(i) {
  let rules = [];
  try { rules = arr((await api('ListNetworkRules', { PageSize: 100 })).NetworkRules.NetworkRule).map((x) => x.Name); } catch { /* none offered */ }
  openPanel('connect-instance-panel', `Network of ${i.KmsInstanceId}`, [
    h('div', { class: 'banner info', text: 'Once bound, the keys and secrets of this instance answer only requests whose source address is in the rule — this console\'s included. Managing the instance stays possible from anywhere.' }),
    rules.length ? field('Network rule (VpcId)', select('ci-vpc', rules, i.VpcId || rules[0]))
      : h('p', { text: 'The account has no network rule yet: create one under Application access points.' }),
    field('Blocks of the rule (VSwitchIds, comma-separated, optional)', input('ci-vswitches', { value: i.VswitchIds || '' })),
    field('Zones (ZoneIds, comma-separated, optional)', input('ci-zones', { value: i.ZoneIds || '' })),
  ], async (banner) => {
    if (!rules.length) return;
    const params = { KmsInstanceId: i.KmsInstanceId, KMProvider: 'Aliyun', VpcId: $('#ci-vpc').value };
    if ($('#ci-vswitches').value.trim()) params.VSwitchIds = $('#ci-vswitches').value.trim();
    if ($('#ci-zones').value.trim()) params.ZoneIds = $('#ci-zones').value.trim();
    try { await api('ConnectKmsInstance', params); } catch (err) {
      showServerError(err, banner, { VpcId: 'ci-vpc-error', VSwitchIds: 'ci-vswitches-error', ZoneIds: 'ci-zones-error' });
      return;
    }
    closePanel();
    state.instances = null;
    toast(`${i.KmsInstanceId} bound to ${params.VpcId}.`);
    rerender();
  });
}

// ---------- Secrets ----------

async function pageSecrets() {
  const r = await api('ListSecrets', { PageSize: 100 });
  const secrets = arr(r.SecretList && r.SecretList.Secret);
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const cols = ['Secret name', 'Type', 'Created', 'Updated', 'Planned deletion'];
  const p = page('Secrets', banner,
    h('div', { class: 'toolbar' }, button('Create secret', () => openCreateSecret(), { id: 'create-secret', class: 'primary' })),
    listTable(cols, secrets.map((s) => row([h('a', { href: `#/secrets/${encodeURIComponent(s.SecretName)}`, text: s.SecretName }),
      s.SecretType, s.CreateTime, s.UpdateTime, s.PlannedDeleteTime || ''], { 'data-secret': s.SecretName })), { id: 'secrets-table' }),
    h('p', { class: 'hint', text: `${r.TotalCount ?? secrets.length} secret(s).` }));
  p.dataset.page = 'secrets';
  return p;
}

async function openCreateSecret() {
  let list = [];
  try { list = await instances(); } catch { /* none offered */ }
  const inst = select('cs-instance', [['', '(no instance: the default key)'], ...list.map((i) => [i.KmsInstanceId, `${i.KmsInstanceId} (${instanceType(i)})`])], '');
  openPanel('create-secret-panel', 'Create secret', [
    field('Secret name', input('cs-name'), { hint: '1 to 192 of A-Z a-z 0-9 _ / + = . @ -' }),
    field('Secret value', h('textarea', { id: 'cs-data', rows: 3 })),
    field('Version ID', input('cs-version', { value: 'v1' })),
    field('Instance ID', inst),
    field('Encryption key (optional: id or alias)', input('cs-key')),
    field('Description', h('textarea', { id: 'cs-description', rows: 2 })),
  ], async (banner) => {
    const name = $('#cs-name').value.trim();
    let bad = false;
    const e1 = /^[A-Za-z0-9_/+=.@-]{1,192}$/.test(name) ? '' : 'Use 1 to 192 of A-Z a-z 0-9 _ / + = . @ -';
    setFieldError('cs-name-error', e1); bad ||= !!e1;
    const e2 = $('#cs-data').value ? '' : 'Type the secret value.';
    setFieldError('cs-data-error', e2); bad ||= !!e2;
    const e3 = /^[A-Za-z0-9_.-]{1,64}$/.test($('#cs-version').value.trim()) ? '' : 'Use 1 to 64 of A-Z a-z 0-9 _ . -';
    setFieldError('cs-version-error', e3); bad ||= !!e3;
    if (bad) return;
    const params = { SecretName: name, SecretData: $('#cs-data').value, VersionId: $('#cs-version').value.trim(), Description: $('#cs-description').value };
    if (inst.value) params.DKMSInstanceId = inst.value;
    if ($('#cs-key').value.trim()) params.EncryptionKeyId = $('#cs-key').value.trim();
    try {
      await api('CreateSecret', params);
    } catch (err) {
      showServerError(err, banner, { SecretName: 'cs-name-error', SecretData: 'cs-data-error', VersionId: 'cs-version-error', EncryptionKeyId: 'cs-key-error', DKMSInstanceId: 'cs-instance-error' });
      return;
    }
    closePanel();
    toast(`Secret ${name} created.`);
    rerender();
  });
}

async function pageSecret(name) {
  const seq = state.renderSeq;
  const d = await api('DescribeSecret', { SecretName: name, FetchTags: 'true' });
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const act = (fn) => async () => { banner.hidden = true; try { await fn(); } catch (err) { fillBanner(banner, err); } };
  const reload = () => { if (isCurrent(seq)) rerender(); };
  const value = h('pre', { id: 'secret-value', class: 'code', text: '(hidden)' });
  const nv = h('textarea', { id: 'secret-new-value', rows: 2 });
  const nvid = input('secret-new-version');
  const days = input('secret-recovery-days', { value: '30', inputmode: 'numeric' });
  const p = page(`Secret ${d.SecretName}`, h('a', { href: '#/secrets', class: 'back' }, '← Secrets'), banner,
    card('Basic information', dl([['Name', d.SecretName], ['ARN', d.Arn], ['Type', d.SecretType], ['Description', h('span', { class: 'desc', text: d.Description || '' })],
      ['Encryption key', d.EncryptionKeyId], ['Instance ID', d.DKMSInstanceId], ['Created', d.CreateTime], ['Planned deletion', d.PlannedDeleteTime],
      ['Tags', arr(d.Tags && d.Tags.Tag).map((t) => `${t.TagKey}=${t.TagValue}`).join(', ')]])),
    card('Value', value, button('Show the current value', act(async () => {
      const r = await api('GetSecretValue', { SecretName: d.SecretName });
      value.textContent = r.SecretData;
    }), { id: 'secret-show', class: 'secondary' }),
    field('New value', nv), field('New version ID', nvid),
    button('Store new version', act(async () => {
      if (!nv.value || !/^[A-Za-z0-9_.-]{1,64}$/.test(nvid.value.trim())) { setFieldError('secret-new-version-error', 'Type a value and a version id of 1 to 64 of A-Z a-z 0-9 _ . -'); return; }
      setFieldError('secret-new-version-error', '');
      await api('PutSecretValue', { SecretName: d.SecretName, SecretData: nv.value, VersionId: nvid.value.trim() });
      toast('New version stored.');
      reload();
    }), { id: 'secret-put' })),
    card('Delete', d.PlannedDeleteTime
      ? button('Restore secret', act(async () => { await api('RestoreSecret', { SecretName: d.SecretName }); toast('Secret restored.'); reload(); }), { id: 'secret-restore' })
      : [field('Recovery window (days)', days, { hint: '7 to 30 days.' }),
        button('Delete secret', act(async () => {
          const m = rules.intIn(days.value, 7, 30, 'The recovery window');
          setFieldError('secret-recovery-days-error', m);
          if (m) return;
          await api('DeleteSecret', { SecretName: d.SecretName, RecoveryWindowInDays: days.value.trim() });
          toast('Secret scheduled for deletion.');
          reload();
        }), { id: 'secret-delete', class: 'danger' })]));
  p.dataset.page = 'secret';
  return p;
}

// ---------- Application access points ----------

async function pageAaps() {
  const seq = state.renderSeq;
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const act = (fn) => async () => { banner.hidden = true; try { await fn(); } catch (err) { fillBanner(banner, err); } };
  const reload = () => { if (isCurrent(seq)) rerender(); };
  const [aaps, pols, rules_, cks] = await Promise.allSettled([
    api('ListApplicationAccessPoints', { PageSize: 100 }), api('ListPolicies', { PageSize: 100 }), api('ListNetworkRules', { PageSize: 100 }),
    api('ListClientKeys')]);
  const or = (r, f) => (r.status === 'fulfilled' ? f(r.value) : errorBanner(r.reason));
  const p = page('Application access points', banner,
    h('p', { class: 'hint', text: 'Applications reach keys and secrets through a KMS instance\'s endpoint with a client key of an application access point (AAP). An AAP names permission policies; a policy names an instance, what may be used and, optionally, network rules.' }),
    card('Application access points', or(aaps, (r) => listTable(['Name', 'Authentication', ''],
      arr(r.ApplicationAccessPoints && r.ApplicationAccessPoints.ApplicationAccessPoint).map((a) => row([a.Name, a.AuthenticationMethod,
        h('div', { class: 'row-actions' },
          button('Create client key', () => openCreateClientKey(a.Name, reload), { class: 'link', id: `aap-client-key-${a.Name}` }),
          button('Delete', act(async () => { await api('DeleteApplicationAccessPoint', { Name: a.Name }); toast('AAP deleted.'); reload(); }), { class: 'link', 'aria-label': `Delete ${a.Name}` }))], { 'data-aap': a.Name })), { id: 'aaps-table' })),
    button('Create AAP', () => openPanel('create-aap-panel', 'Create application access point', [
      field('Name', input('aap-name'), { hint: '1 to 64 of letters, digits and . _ - @' }),
      field('Permission policies (comma-separated names)', input('aap-policies')),
      field('Description', input('aap-description'))], async (b) => {
      const names = $('#aap-policies').value.split(',').map((s) => s.trim()).filter(Boolean);
      const e1 = /^[A-Za-z0-9._@-]{1,64}$/.test($('#aap-name').value.trim()) ? '' : 'Use 1 to 64 of letters, digits and . _ - @';
      const e2 = names.length >= 1 && names.length <= 3 ? '' : 'Name 1 to 3 permission policies.';
      setFieldError('aap-name-error', e1); setFieldError('aap-policies-error', e2);
      if (e1 || e2) return;
      try { await api('CreateApplicationAccessPoint', { Name: $('#aap-name').value.trim(), AuthenticationMethod: 'ClientKey', Policies: JSON.stringify(names), Description: $('#aap-description').value }); } catch (err) {
        showServerError(err, b, { Name: 'aap-name-error', Policies: 'aap-policies-error', Description: 'aap-description-error' });
        return;
      }
      closePanel(); toast('AAP created.'); reload();
    }), { id: 'create-aap', class: 'primary' })),
    card('Client keys', or(cks, (r) => listTable(['Client key ID', 'AAP', 'Algorithm', 'Not before', 'Not after', ''],
      arr(r.ClientKeys).map((k) => row([h('span', { class: 'mono', text: k.ClientKeyId }), k.AapName, k.KeyAlgorithm, k.NotBefore, k.NotAfter,
        button('Delete', act(async () => { await api('DeleteClientKey', { ClientKeyId: k.ClientKeyId }); toast('Client key deleted.'); reload(); }), { class: 'link', 'aria-label': `Delete ${k.ClientKeyId}` })],
      { 'data-client-key': k.ClientKeyId })), { id: 'client-keys-table' }))),
    card('Permission policies', or(pols, (r) => listTable(['Name', ''], arr(r.Policies && r.Policies.Policy).map((x) => row([x.Name,
      button('Delete', act(async () => { await api('DeletePolicy', { Name: x.Name }); toast('Policy deleted.'); reload(); }), { class: 'link', 'aria-label': `Delete ${x.Name}` })])), { id: 'policies-table' })),
    button('Create permission policy', async () => {
      let list = [];
      try { list = await instances(); } catch { /* none */ }
      openPanel('create-policy-panel', 'Create permission policy', [
        field('Name', input('pol-name')),
        field('Instance ID', select('pol-instance', list.map((i) => [i.KmsInstanceId, `${i.KmsInstanceId} (${instanceType(i)})`]), list[0] && list[0].KmsInstanceId)),
        h('fieldset', { class: 'field' }, h('legend', { text: 'Permissions' }),
          checkbox('pol-perm-keys', 'Keys (CryptoServiceKeyUser)', true), checkbox('pol-perm-secrets', 'Secrets (CryptoServiceSecretUser)', false),
          h('p', { class: 'field-error', id: 'pol-perms-error', role: 'alert', hidden: true })),
        field('Resources (comma-separated, e.g. key/*, secret/db-*)', input('pol-resources', { value: 'key/*' })),
        field('Network rules (comma-separated names, optional)', input('pol-rules')),
        field('Description', input('pol-description'))], async (b) => {
        const perms = [];
        if ($('#pol-perm-keys').checked) perms.push('RbacPermission/Template/CryptoServiceKeyUser');
        if ($('#pol-perm-secrets').checked) perms.push('RbacPermission/Template/CryptoServiceSecretUser');
        const res = $('#pol-resources').value.split(',').map((s) => s.trim()).filter(Boolean);
        const nr = $('#pol-rules').value.split(',').map((s) => s.trim()).filter(Boolean);
        setFieldError('pol-perms-error', perms.length ? '' : 'Pick at least one permission.');
        setFieldError('pol-resources-error', res.length >= 1 && res.length <= 50 ? '' : 'Name 1 to 50 resources.');
        if (!perms.length || !res.length || res.length > 50) return;
        const params = { Name: $('#pol-name').value.trim(), KmsInstance: $('#pol-instance').value, Permissions: JSON.stringify(perms), Resources: JSON.stringify(res), Description: $('#pol-description').value };
        if (nr.length) params.AccessControlRules = JSON.stringify({ NetworkRules: nr });
        try { await api('CreatePolicy', params); } catch (err) {
          showServerError(err, b, { Name: 'pol-name-error', Resources: 'pol-resources-error', Permissions: 'pol-perms-error', AccessControlRules: 'pol-rules-error', KmsInstance: 'pol-instance-error' });
          return;
        }
        closePanel(); toast('Policy created.'); reload();
      });
    }, { id: 'create-policy', class: 'secondary' })),
    card('Network rules', or(rules_, (r) => listTable(['Name', 'Type', ''], arr(r.NetworkRules && r.NetworkRules.NetworkRule).map((x) => row([x.Name, x.Type,
      button('Delete', act(async () => { await api('DeleteNetworkRule', { Name: x.Name }); toast('Network rule deleted.'); reload(); }), { class: 'link', 'aria-label': `Delete ${x.Name}` })])), { id: 'network-rules-table' })),
    button('Create network rule', () => openPanel('create-rule-panel', 'Create network rule', [
      field('Name', input('nr-name')),
      field('Source private IPs (comma-separated addresses or CIDR blocks)', input('nr-ips', { placeholder: '10.0.0.0/8, 192.168.1.5' })),
      field('Description', input('nr-description'))], async (b) => {
      const ips = $('#nr-ips').value.split(',').map((s) => s.trim()).filter(Boolean);
      setFieldError('nr-ips-error', ips.length <= 32 ? '' : 'At most 32 addresses or blocks.');
      if (ips.length > 32) return;
      try { await api('CreateNetworkRule', { Name: $('#nr-name').value.trim(), Type: 'Private', SourcePrivateIp: JSON.stringify(ips), Description: $('#nr-description').value }); } catch (err) {
        showServerError(err, b, { Name: 'nr-name-error', SourcePrivateIp: 'nr-ips-error', Description: 'nr-description-error' });
        return;
      }
      closePanel(); toast('Network rule created.'); reload();
    }), { id: 'create-network-rule', class: 'secondary' })));
  p.dataset.page = 'aaps';
  return p;
}

// openCreateClientKey makes a client key for an AAP and saves its file
// ({"KeyId","PrivateKeyData"}, what the instance SDK reads): the private
// key is in this answer only.
function openCreateClientKey(aap, reload) {
  openPanel('create-client-key-panel', `Create a client key for ${aap}`, [
    h('p', { class: 'hint', text: 'The private key is returned once, in a PKCS#12 protected by this password, and saved as a file the KMS Instance SDK reads. Keep the file and the password apart.' }),
    field('Password', input('ck-password', { type: 'password', autocomplete: 'new-password' }), { hint: '8 to 64 printable ASCII characters of at least two kinds (upper case, lower case, digits, others).' }),
    field('Not after (optional, RFC 3339)', input('ck-not-after', { placeholder: '2030-01-01T00:00:00Z' }), { hint: 'Default: 5 years from now.' }),
  ], async (banner) => {
    const pw = $('#ck-password').value;
    const kinds = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
    const e1 = /^[\x21-\x7e]{8,64}$/.test(pw) && kinds >= 2 ? '' : 'Use 8 to 64 printable ASCII characters of at least two kinds.';
    setFieldError('ck-password-error', e1);
    const na = $('#ck-not-after').value.trim();
    const e2 = !na || !Number.isNaN(Date.parse(na)) ? '' : 'An RFC 3339 time, e.g. 2030-01-01T00:00:00Z.';
    setFieldError('ck-not-after-error', e2);
    if (e1 || e2) return;
    const params = { AapName: aap, Password: pw };
    if (na) params.NotAfter = na;
    let r;
    try { r = await api('CreateClientKey', params); } catch (err) {
      showServerError(err, banner, { Password: 'ck-password-error', NotAfter: 'ck-not-after-error' });
      return;
    }
    download(`clientKey_${r.ClientKeyId}.json`, JSON.stringify({ KeyId: r.ClientKeyId, PrivateKeyData: r.PrivateKeyData }), 'application/json');
    closePanel();
    toast(`Client key ${r.ClientKeyId} created; its file is saved.`);
    reload();
  });
}

// ---------- Accounts (RAM users and roles) ----------

async function pageAccounts() {
  const seq = state.renderSeq;
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const act = (fn) => async () => { banner.hidden = true; try { await fn(); } catch (err) { fillBanner(banner, err); banner.scrollIntoView({ block: 'nearest' }); } };
  const reload = () => { if (isCurrent(seq)) rerender(); };
  const secretBox = h('div', { id: 'new-access-key', 'aria-live': 'polite' });
  const [users, roles] = await Promise.allSettled([api('ListUsers'), api('ListRoles')]);
  const or = (r, f) => (r.status === 'fulfilled' ? f(r.value) : errorBanner(r.reason));
  const acct = state.session.Identity.AccountId;
  const policies = ['AliyunKMSFullAccess', 'AliyunKMSReadOnlyAccess', 'AliyunKMSCryptoUserAccess', 'AliyunSTSAssumeRoleAccess'];
  const p = page('Accounts', banner,
    h('p', { class: 'hint', text: `RAM users and roles of account ${acct}. Only the account's root manages them.` }),
    secretBox,
    card('RAM users', or(users, (r) => listTable(['User name', 'Display name', 'Created', ''], arr(r.Users && r.Users.User).map((u) => {
      const pol = select(`pol-${u.UserName}`, policies, policies[1], { 'aria-label': `System policy for ${u.UserName}` });
      return row([u.UserName, u.DisplayName || '', u.CreateDate || '', h('div', { class: 'row-actions' },
        pol,
        button('Attach', act(async () => { await api('AttachPolicyToUser', { PolicyType: 'System', PolicyName: pol.value, UserName: u.UserName }); toast(`${pol.value} attached to ${u.UserName}.`); }), { class: 'link' }),
        button('Detach', act(async () => { await api('DetachPolicyFromUser', { PolicyType: 'System', PolicyName: pol.value, UserName: u.UserName }); toast(`${pol.value} detached from ${u.UserName}.`); }), { class: 'link' }),
        button('Create AccessKey', act(async () => {
          const k = await api('CreateAccessKey', { UserName: u.UserName });
          const ak = k.AccessKey || {};
          secretBox.replaceChildren(okBanner(`AccessKey for ${u.UserName}: ${ak.AccessKeyId} — secret ${ak.AccessKeySecret} (shown only now; store it safely).`, { id: 'new-access-key-text' }));
        }), { class: 'link' }),
        button('Delete', act(async () => { await api('DeleteUser', { UserName: u.UserName }); toast(`User ${u.UserName} deleted.`); reload(); }), { class: 'link', 'aria-label': `Delete user ${u.UserName}` }))], { 'data-user': u.UserName });
    }), { id: 'users-table' })),
    h('form', { class: 'inline', id: 'create-user-form', on: { submit: (ev) => { ev.preventDefault(); $('#create-user').click(); } } },
      field('New user name', input('new-user-name')),
      button('Create user', act(async () => {
        const n = $('#new-user-name').value.trim();
        const m = /^[A-Za-z0-9._@-]{1,64}$/.test(n) ? '' : 'Use 1 to 64 of letters, digits and . _ - @';
        setFieldError('new-user-name-error', m);
        if (m) return;
        try { await api('CreateUser', { UserName: n }); } catch (err) {
          if (errorParam(err) === 'UserName') { setFieldError('new-user-name-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast(`User ${n} created.`); reload();
      }), { id: 'create-user', class: 'primary' }))),
    card('RAM roles', or(roles, (r) => listTable(['Role name', 'ARN', 'Created', ''], arr(r.Roles && r.Roles.Role).map((x) => {
      const pol = select(`role-pol-${x.RoleName}`, policies, policies[1], { 'aria-label': `System policy for role ${x.RoleName}` });
      return row([x.RoleName, h('span', { class: 'mono', text: x.Arn || '' }), x.CreateDate || '', h('div', { class: 'row-actions' },
        pol,
        button('Attach', act(async () => { await api('AttachPolicyToRole', { PolicyType: 'System', PolicyName: pol.value, RoleName: x.RoleName }); toast(`${pol.value} attached to role ${x.RoleName}.`); }), { class: 'link', id: `role-attach-${x.RoleName}` }),
        button('Detach', act(async () => { await api('DetachPolicyFromRole', { PolicyType: 'System', PolicyName: pol.value, RoleName: x.RoleName }); toast(`${pol.value} detached from role ${x.RoleName}.`); }), { class: 'link' }),
        button('Delete', act(async () => { await api('DeleteRole', { RoleName: x.RoleName }); toast(`Role ${x.RoleName} deleted.`); reload(); }), { class: 'link', 'aria-label': `Delete role ${x.RoleName}` }))], { 'data-role': x.RoleName });
    }), { id: 'roles-table' })),
    h('form', { class: 'inline', id: 'create-role-form', on: { submit: (ev) => { ev.preventDefault(); $('#create-role').click(); } } },
      field('New role name', input('new-role-name')),
      field('Trusted account (who may assume it)', input('new-role-trust', { value: acct })),
      button('Create role', act(async () => {
        const n = $('#new-role-name').value.trim();
        const t = $('#new-role-trust').value.trim();
        const m = /^[A-Za-z0-9._@-]{1,64}$/.test(n) ? '' : 'Use 1 to 64 of letters, digits and . _ - @';
        setFieldError('new-role-name-error', m);
        const m2 = /^\d+$/.test(t) ? '' : 'An account id (digits).';
        setFieldError('new-role-trust-error', m2);
        if (m || m2) return;
        const doc = { Version: '1', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${t}:root`] } }] };
        try { await api('CreateRole', { RoleName: n, AssumeRolePolicyDocument: JSON.stringify(doc) }); } catch (err) {
          if (errorParam(err) === 'RoleName') { setFieldError('new-role-name-error', `${err.code}: ${err.msg}`); return; }
          throw err;
        }
        toast(`Role ${n} created.`); reload();
      }), { id: 'create-role', class: 'primary' }))));
  p.dataset.page = 'accounts';
  return p;
}

// ---------- Cluster ----------

async function pageCluster() {
  let members = null;
  let err = null;
  try { members = arr((await api('ConsoleClusterMembers')).Members); } catch (e) { err = e; }
  const cols = ['Node', 'Address', 'Zone', 'Region', 'Raft role', 'Suffrage', 'Health', 'HSM domain', 'Last contact'];
  // The snapshot is fetched with the CSRF header and saved from a blob: a
  // form POST navigation would carry "Origin: null" under the console's
  // no-referrer policy, which the server refuses as cross-site.
  const snapErr = h('div', { class: 'banner error', role: 'alert', hidden: true, 'data-testid': 'error-banner' });
  const snapOk = h('p', { class: 'hint', id: 'snapshot-status', 'aria-live': 'polite' });
  const form = h('div', { id: 'snapshot-form' }, snapErr,
    button('Download snapshot', async (ev) => {
      const btn = ev.currentTarget;
      btn.disabled = true;
      snapErr.hidden = true;
      snapOk.textContent = 'Preparing the snapshot…';
      try {
        const r = await fetch('/console/api/action/ConsoleSnapshot', {
          method: 'POST', credentials: 'same-origin', cache: 'no-store',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': state.session.CsrfToken }, body: '{}',
        });
        if (!r.ok) throw new ApiError(r.status, await readJSON(r));
        const m = /filename="?([^";]+)"?/.exec(r.headers.get('Content-Disposition') || '');
        const name = m ? m[1] : 'raftkms.snap';
        const blob = await r.blob();
        download(name, blob);
        snapOk.textContent = `Saved ${name} (${blob.size} bytes).`;
      } catch (err) {
        snapOk.textContent = '';
        fillBanner(snapErr, err);
      } finally {
        btn.disabled = false;
      }
    }, { id: 'snapshot-download', class: 'secondary' }), snapOk);
  const p = page('Cluster',
    err ? errorBanner(err) : null,
    members ? card('Members', listTable(cols, members.map((m) => row([
      h('span', null, m.NodeId, m.Leader ? h('span', { class: 'badge primary', text: 'leader' }) : null), m.Address, m.Zone, m.Region,
      m.RaftRole, m.Suffrage, h('span', { class: `badge health-${m.Health}`, text: m.Health }), m.HsmDomain || '', m.LastContact || '',
    ], { 'data-node': m.NodeId })), { id: 'members-table' }), h('p', { class: 'hint', text: `Served by node ${state.session.NodeId}.` })) : null,
    card('Snapshot', h('p', { class: 'hint', text: 'A snapshot of the whole catalogue (key material only wrapped under the cluster root key). Restore it into a new cluster that has the same root key (docs/OPERATIONS.md).' }), form));
  p.dataset.page = 'cluster';
  return p;
}

// ---------- start ----------

async function main() {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#region-select').addEventListener('change', onRegionChange);
  window.addEventListener('hashchange', route);
  // Editing a field clears the error shown under it.
  document.addEventListener('input', (ev) => {
    const id = ev.target && ev.target.id;
    if (id && document.getElementById(`${id}-error`)) setFieldError(`${id}-error`, '');
  });
  let s = null;
  try { s = await loadSession(); } catch { /* sign in */ }
  if (s && s.CsrfToken) startApp(s); else showSignIn();
}

main();
