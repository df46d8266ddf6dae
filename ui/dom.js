// Element building without innerHTML: every string becomes a text node, so device text (crash messages,
// component names) is inert whatever it contains. Attributes are set one by one; handlers with
// addEventListener (the CSP forbids inline handlers anyway).

export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, kids);
  return el;
}

export function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  return String(iso).replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

export function fmtNum(n) {
  if (n === null || n === undefined) return '—';
  return typeof n === 'number' ? n.toLocaleString('en-US', {maximumFractionDigits: 3}) : String(n);
}

export function short(id) {
  return id ? String(id).slice(0, 12) : '—';
}

export function link(href, text) {
  return h('a', {href}, text);
}

// A table: columns [{label, cell(item) -> node|string, num?}]. caption is the table's accessible name.
export function table(caption, columns, items, empty) {
  const thead = h('thead', null, h('tr', null, columns.map((c) => h('th', {scope: 'col', class: c.num ? 'num' : null}, c.label))));
  const tbody = h('tbody');
  fillRows(tbody, columns, items, empty);
  return h('table', null, h('caption', null, caption), thead, tbody);
}

export function fillRows(tbody, columns, items, empty) {
  clear(tbody);
  if (items.length === 0) {
    tbody.appendChild(h('tr', null, h('td', {colspan: columns.length, class: 'empty'}, empty || 'None.')));
    return;
  }
  for (const it of items) {
    tbody.appendChild(h('tr', null, columns.map((c) => h('td', {class: c.num ? 'num' : null}, c.cell(it)))));
  }
}

// A paginated table over a cursor API: fetchPage(cursor) -> {items, next_cursor}. "Next page" follows
// next_cursor, "First page" starts over. opts (optional): {cursor, page}, the page to start at (from a link),
// and onPage(cursor, page) after each page shown, so the view can put it in its link. Returns {el, reload, ready}.
export function pagedTable(caption, columns, fetchPage, empty, opts) {
  const o = opts || {};
  const t = table(caption, columns, [], 'Loading…');
  if (o.testid) t.dataset.testid = o.testid;
  const tbody = t.querySelector('tbody');
  const first = h('button', {type: 'button'}, 'First page');
  const next = h('button', {type: 'button'}, 'Next page');
  const status = h('span', {class: 'muted'});
  let cursor = o.cursor || null;
  let nextCursor = null;
  let page = cursor === null ? 1 : Math.max(2, o.page || 2);
  async function load(c) {
    const r = await fetchPage(c);
    cursor = c;
    nextCursor = r.next_cursor || null;
    fillRows(tbody, columns, r.items || [], empty);
    next.disabled = nextCursor === null;
    first.disabled = cursor === null;
    status.textContent = 'Page ' + page;
    if (o.onPage) o.onPage(cursor, page);
  }
  next.addEventListener('click', () => {
    page += 1;
    load(nextCursor).catch(showError(status));
  });
  first.addEventListener('click', () => {
    page = 1;
    load(null).catch(showError(status));
  });
  const el = h('div', {class: 'paged'}, t, h('div', {class: 'pager'}, first, next, status));
  const ready = load(cursor).catch((e) => {
    fillRows(tbody, columns, [], e && e.status === 404 ? 'Not available on this server.' : 'Error: ' + e.message);
    next.disabled = true;
    first.disabled = true;
  });
  return {el, reload: () => load(cursor).catch(showError(status)), ready};
}

export function showError(el) {
  return (e) => {
    el.textContent = 'Error: ' + (e && e.message ? e.message : String(e));
    el.classList.add('error');
  };
}

// A section with a heading; body nodes follow.
export function section(title, ...body) {
  return h('section', {class: 'card'}, h('h2', null, title), body);
}

export function unavailable(what, e) {
  const why = e && e.status === 404 ? 'this server does not offer it' : e && e.message ? e.message : String(e);
  return h('p', {class: 'muted'}, what + ' is not available (' + why + ').');
}

// A cell filled once its text arrives: "…" (muted) until then, "—" if it fails. The browser test waits
// for no "…" to be left.
export function lazyText(promise) {
  const span = h('span', {class: 'muted'}, '…');
  promise.then((text) => {
    span.className = '';
    span.textContent = text;
  }).catch(() => {
    span.textContent = '—';
  });
  return span;
}
