// Failures: crash buckets (sortable, per-version counts, sparkline), crash rate per version and crash-free
// hours (charts), emerging-problem flags; and one bucket's detail with samples and frames.
import {get, qs} from './api.js';
import {h, section, table, pagedTable, link, fmtTime, fmtNum, short, unavailable} from './dom.js';
import {lineChart, sparkline, dailyCounts} from './charts.js';

const SPARK_DAYS = 14;
const details = new Map(); // bucket id -> Promise of GET /v1/failures/buckets/{id}, for the list's cells

function detail(id) {
  if (!details.has(id)) {
    const p = get('/v1/failures/buckets/' + encodeURIComponent(id));
    p.catch(() => details.delete(id));
    details.set(id, p);
  }
  return details.get(id);
}

// A cell filled when the bucket's detail arrives, so the table paints first.
function lazyCell(b, fill) {
  const span = h('span', {class: 'muted'}, '…');
  const src = b.versions ? Promise.resolve(b) : detail(b.id);
  src.then((d) => {
    span.textContent = '';
    span.className = '';
    span.append(fill(d));
  }).catch(() => {
    span.textContent = '—';
  });
  return span;
}

function versionsText(d) {
  return (d.versions || []).map((v) => v.image_version + ': ' + v.count).join(', ') || '—';
}

function flagTrigger(f) {
  const d = f.detail || {};
  if (f.kind === 'new_bucket') return `${d.devices_first_hour} devices in its first hour (threshold ${d.threshold}): ${d.reason || ''} at ${d.pc || ''}`;
  if (f.kind === 'rate_regression') {
    return `crash rate ${fmtNum(d.crash_rate)}/device-hour vs ${fmtNum(d.previous_crash_rate)} for ${f.previous_version || 'the previous version'} (factor ${d.factor_pct}%)`;
  }
  return JSON.stringify(d);
}

export function flagsTable(limit) {
  return pagedTable('Emerging-problem flags, newest first', [
    {label: 'Raised', cell: (f) => fmtTime(f.created_at)},
    {label: 'Kind', cell: (f) => f.kind},
    {label: 'Component', cell: (f) => f.component || '—'},
    {label: 'Version', cell: (f) => f.image_version || '—'},
    {label: 'Triggered by', cell: (f) => flagTrigger(f)},
    {label: 'Bucket', cell: (f) => (f.bucket_id ? link('#/failures/bucket/' + encodeURIComponent(f.bucket_id), short(f.bucket_id)) : '—')},
  ], (cursor) => get('/v1/failures/flags' + qs({limit, cursor})), 'No flags raised.');
}

function bucketsCard() {
  const sortSel = h('select', {id: 'bucket-sort'},
    h('option', {value: 'count'}, 'most reports'),
    h('option', {value: 'devices'}, 'most devices'),
    h('option', {value: 'recent'}, 'most recent'));
  const holder = h('div');
  let ready = null;
  function load() {
    const sort = sortSel.value;
    const p = pagedTable('Crash buckets by ' + sortSel.options[sortSel.selectedIndex].text, [
      {label: 'Bucket', cell: (b) => link('#/failures/bucket/' + encodeURIComponent(b.id), short(b.id))},
      {label: 'Component', cell: (b) => b.component},
      {label: 'Reason', cell: (b) => b.reason},
      {label: 'Reports', num: true, cell: (b) => h('span', {'data-testid': 'bucket-count'}, fmtNum(b.count))},
      {label: 'Devices', num: true, cell: (b) => fmtNum(b.devices)},
      {label: 'Last seen', cell: (b) => fmtTime(b.last_seen)},
      {label: 'Per version', cell: (b) => lazyCell(b, versionsText)},
      {label: `Last ${SPARK_DAYS} days`, cell: (b) => lazyCell(b, (d) => (d.daily ? sparkline(dailyCounts(d.daily, SPARK_DAYS), 'crashes per day') : '—'))},
    ], (cursor) => get('/v1/failures/buckets' + qs({sort, limit: 25, cursor})), 'No crashes reported.');
    holder.replaceChildren(p.el);
    ready = p.ready;
  }
  sortSel.addEventListener('change', load);
  load();
  const el = section('Crash buckets', h('div', {class: 'controls'}, h('label', {for: 'bucket-sort'}, 'Sort by '), sortSel), holder);
  return {el, ready};
}

function ratesCards(rates) {
  if (rates instanceof Error) return [section('Crash rate per version', unavailable('Crash rates', rates))];
  const byVersion = new Map();
  for (const it of rates.items || []) {
    if (it.crash_rate === null) continue;
    const key = it.component + ' ' + it.image_version;
    if (!byVersion.has(key)) byVersion.set(key, []);
    byVersion.get(key).push([Date.parse(it.period_start), it.crash_rate]);
  }
  const series = [...byVersion].slice(0, 6).map(([name, points]) => ({name, points}));
  const fleet = rates.fleet || {};
  let freeSeries;
  let freeTitle;
  if (rates.fleet_series) {
    freeSeries = [{name: 'crash-free device-hours', points: rates.fleet_series.map((p) => [Date.parse(p.period_start), p.crash_free_device_hours])}];
    freeTitle = 'Crash-free device-hours per day';
  } else {
    const sum = new Map();
    for (const it of rates.items || []) sum.set(it.period_start, (sum.get(it.period_start) || 0) + it.device_hours);
    freeSeries = [{name: 'device-hours', points: [...sum].map(([t, v]) => [Date.parse(t), v])}];
    freeTitle = 'Device-hours per day (this server gives crash-free hours as a total only)';
  }
  const pct = fleet.device_hours > 0 ? (100 * fleet.crash_free_device_hours) / fleet.device_hours : null;
  return [
    section('Crash rate per version (7 days, daily)', lineChart(series, {title: 'Crashes per device-hour, per image version', yLabel: 'crashes / device-hour'})),
    section('Crash-free hours',
      h('p', {class: 'big'}, fmtNum(fleet.crash_free_device_hours), ' crash-free device-hours of ', fmtNum(fleet.device_hours),
        pct === null ? '' : ` (${pct.toFixed(2)} %)`),
      lineChart(freeSeries, {title: freeTitle, yLabel: 'hours'})),
  ];
}

export async function render(view) {
  const rates = await get('/v1/failures/crash-rates' + qs({granularity: 'day'})).catch((e) => e);
  const flags = flagsTable(20);
  const buckets = bucketsCard();
  view.append(h('h1', null, 'Failures'), buckets.el, section('Emerging problems', flags.el), ...ratesCards(rates));
  await Promise.all([buckets.ready, flags.ready]);
  return {poll: () => flags.reload()};
}

export async function renderBucket(view, id) {
  details.delete(id);
  const b = await detail(id);
  view.append(
    h('p', null, link('#/failures', '← All failures')),
    h('h1', null, 'Bucket ', h('code', null, short(b.id))),
    section('Signature', h('dl', {class: 'kv'},
      h('dt', null, 'Component'), h('dd', {'data-testid': 'bucket-component'}, b.component),
      h('dt', null, 'Reason'), h('dd', {'data-testid': 'bucket-reason'}, b.reason),
      h('dt', null, 'PC'), h('dd', null, h('code', null, b.pc)),
      h('dt', null, 'Frames'), h('dd', null, h('ol', {class: 'frames'}, (b.frames || []).map((f) => h('li', null, h('code', null, f))))),
      h('dt', null, 'Reports'), h('dd', {'data-testid': 'bucket-detail-count'}, fmtNum(b.count)),
      h('dt', null, 'Devices'), h('dd', null, fmtNum(b.devices)),
      h('dt', null, 'First seen'), h('dd', null, fmtTime(b.first_seen)),
      h('dt', null, 'Last seen'), h('dd', null, fmtTime(b.last_seen)),
      h('dt', null, 'Signature'), h('dd', null, h('code', {class: 'wrap'}, b.signature))),
    b.daily ? sparkline(dailyCounts(b.daily, SPARK_DAYS), 'crashes per day') : null),
    section('Per version', table('Reports per image version', [
      {label: 'Version', cell: (v) => v.image_version},
      {label: 'Reports', num: true, cell: (v) => fmtNum(v.count)},
      {label: 'First seen', cell: (v) => fmtTime(v.first_seen)},
      {label: 'Last seen', cell: (v) => fmtTime(v.last_seen)},
    ], b.versions || [])),
    section('Samples', table('Newest stored reports of this bucket', [
      {label: 'Received', cell: (r) => fmtTime(r.received_at)},
      {label: 'Device', cell: (r) => link('#/devices/' + encodeURIComponent(r.device_id), short(r.device_id))},
      {label: 'Version', cell: (r) => r.image_version},
      {label: 'Message', cell: (r) => h('span', {class: 'message'}, r.message === null ? '—' : r.message)},
      {label: 'Return addresses', cell: (r) => (r.return_addresses || []).join(' ')},
    ], b.samples || [])));
}
