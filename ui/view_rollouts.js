// Rollouts: every deployment with its waves' progress, soak timer and halt reason; one deployment's page
// with the operator's actions (pause, resume, abort, advance). A reader gets no action buttons: the API
// would refuse them (403) anyway, so offering them would only mislead.
import {get, call, qs, canOperate, current} from './api.js';
import {h, section, table, pagedTable, link, fmtTime, fmtNum, short, clear, append} from './dom.js';
import {groupName} from './names.js';

// Which actions each state allows (docs/api.md, Deployments).
const ACTIONS = {
  pause: ['running'],
  resume: ['paused', 'halted'],
  abort: ['running', 'paused', 'halted'],
  advance: ['running', 'paused'],
};

function soakText(d) {
  if (d.soak_remaining_s === null || d.soak_remaining_s === undefined) return d.state === 'running' ? '—' : 'not soaking (' + d.state + ')';
  const s = d.soak_remaining_s;
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return `${hh} h ${mm} min left in wave ${d.current_wave}`;
}

function waveSummary(w) {
  return `wave ${w.wave} (${w.percent} %, ${w.devices} devices): ${w.committed} updated, ${w.rolled_back} rolled back, ` +
    `${w.failed} refused/failed, ${w.in_progress} in progress, ${w.waiting} waiting`;
}

function stateBadge(d) {
  return h('span', {class: 'badge state-' + d.state, 'data-testid': 'deployment-state'}, d.state);
}

function progressCell(d) {
  const span = h('span', {class: 'muted'}, '…');
  get('/v1/deployments/' + encodeURIComponent(d.id)).then((full) => {
    span.className = '';
    span.replaceChildren(h('ul', {class: 'plain'}, (full.progress || []).map((w) => h('li', null, waveSummary(w)))));
  }).catch(() => {
    span.textContent = '—';
  });
  return span;
}

export async function render(view) {
  const p = pagedTable('Deployments, newest first', [
    {label: 'Deployment', cell: (d) => link('#/rollouts/' + encodeURIComponent(d.id), d.name)},
    {label: 'State', cell: stateBadge},
    {label: 'Wave', cell: (d) => `${d.current_wave} of ${d.waves.length} (${d.waves.join(', ')} %)`},
    {label: 'Soak', cell: soakText},
    {label: 'Progress', cell: progressCell},
    {label: 'Last transition', cell: (d) => h('span', {class: d.state === 'halted' ? 'halt' : null}, d.reason || '—')},
  ], (cursor) => get('/v1/deployments' + qs({limit: 10, cursor})), 'No deployments.');
  view.append(h('h1', null, 'Rollouts'), section('Deployments', p.el));
  await p.ready;
  return {poll: () => p.reload()};
}

function actionBar(d, refresh, status) {
  if (!canOperate()) return null;
  const bar = h('div', {class: 'actions', role: 'group', 'aria-label': 'Deployment actions'});
  for (const [name, states] of Object.entries(ACTIONS)) {
    const b = h('button', {type: 'button', 'data-action': name}, name[0].toUpperCase() + name.slice(1));
    b.disabled = !states.includes(d.state);
    b.addEventListener('click', async () => {
      if (name === 'abort' && !window.confirm('Abort deployment "' + d.name + '"? This cannot be undone.')) return;
      status.textContent = name + '…';
      try {
        await call('POST', `/v1/deployments/${encodeURIComponent(d.id)}/${name}`, {reason: 'from the dashboard'});
        status.textContent = name + ' done';
      } catch (e) {
        status.textContent = name + ' failed: ' + e.message;
      }
      await refresh();
    });
    bar.appendChild(b);
  }
  return bar;
}

export async function renderOne(view, id) {
  const body = h('div');
  const status = h('p', {class: 'muted', role: 'status'});
  async function refresh() {
    const d = await get('/v1/deployments/' + encodeURIComponent(id));
    // The body is rebuilt on every poll: keep keyboard focus on the same action button.
    const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    append(clear(body), [
      h('h1', null, 'Deployment ', h('q', null, d.name), ' ', stateBadge(d)),
      d.state === 'halted' ? h('p', {class: 'halt', role: 'alert'}, 'Halted: ', d.reason || 'no reason given') : null,
      actionBar(d, refresh, status) || h('p', {class: 'muted'}, 'Read-only: your role (' + current().role + ') cannot change deployments.'),
      section('Waves', h('p', null, 'Soak: ', soakText(d), `; halts at ${d.failure_threshold_pct} % failed after ${d.min_attempts} attempts`),
        table('Progress by wave', [
          {label: 'Wave', cell: (w) => `${w.wave} (${w.percent} %)`},
          {label: 'Devices', num: true, cell: (w) => fmtNum(w.devices)},
          {label: 'Updated', num: true, cell: (w) => fmtNum(w.committed)},
          {label: 'Rolled back', num: true, cell: (w) => fmtNum(w.rolled_back)},
          {label: 'Refused / failed', num: true, cell: (w) => fmtNum(w.failed)},
          {label: 'In progress', num: true, cell: (w) => fmtNum(w.in_progress)},
          {label: 'Waiting', num: true, cell: (w) => fmtNum(w.waiting)},
          {label: 'Reasons', cell: (w) => Object.entries(w.reasons || {}).map(([r, n]) => r + ': ' + n).join(', ') || '—'},
        ], d.progress || [])),
      section('Details', h('dl', {class: 'kv'},
        h('dt', null, 'Group'), h('dd', null, groupName(d.group_id)),
        h('dt', null, 'Images'), h('dd', null, d.images.map((i) => h('div', null, link('#/images', short(i))))),
        h('dt', null, 'Created'), h('dd', null, fmtTime(d.created_at)),
        h('dt', null, 'Updated'), h('dd', null, fmtTime(d.updated_at)),
        h('dt', null, 'Last transition'), h('dd', null, d.reason || '—')))]);
    const again = focused ? body.querySelector(`button[data-action="${focused}"]`) : null;
    if (again) again.focus();
  }
  await refresh();
  view.append(h('p', null, link('#/rollouts', '← All rollouts')), status, body);
  return {poll: refresh};
}
