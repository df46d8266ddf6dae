// Failures: crash buckets (sortable, per-version counts, sparkline), crash rate per version and crash-free
// hours (charts), emerging-problem flags; and one bucket's detail with samples and frames.
import {get, qs} from './api.js';
import {h, section, table, pagedTable, link, fmtTime, fmtNum, short, unavailable} from './dom.js';
import {lineChart, sparkline} from './charts.js';

const SPARK_DAYS = 14;

// Daily crashes and per-version counts of a set of buckets, one request (GET /v1/failures/bucket-series):
// a Map of bucket id (as a string) -> {daily, versions}; empty when the server lacks it.
async function seriesOf(ids) {
  if (ids.length === 0) return new Map();
  const p = new URLSearchParams();
  for (const id of ids) p.append('id', id);
  p.set('days', SPARK_DAYS);
  const r = await get('/v1/failures/bucket-series?' + p).catch(() => null);
  return new Map(((r && r.items) || []).map((x) => [String(x.bucket_id), x]));
}

async function bucketPage(sort, cursor) {
  const page = await get('/v1/failures/buckets' + qs({sort, limit: 25, cursor}));
  const series = await seriesOf((page.items || []).map((b) => b.id));
  for (const b of page.items || []) b.series = series.get(String(b.id)) || null;
  return page;
}

function versionsText(versions) {
  return (versions || []).map((v) => v.image_version + ': ' + v.count).join(', ') || '—';
}

function spark(series) {
  return series && series.daily ? sparkline(series.daily, 'crashes per day') : '—';
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

const SORTS = {count: 'most reports', devices: 'most devices', recent: 'most recent'};

// The link of the bucket list as shown: #/failures?sort=&cursor=&page= (a shared link reproduces the view).
export function failuresHash(sort, cursor, page) {
  const p = new URLSearchParams();
  if (sort !== 'count') p.set('sort', sort);
  if (cursor) {
    p.set('cursor', cursor);
    p.set('page', String(page));
  }
  const q = p.toString();
  return '#/failures' + (q ? '?' + q : '');
}

// params: the link's query (URLSearchParams). The sort and page are kept in the link without re-rendering
// the view (history.replaceState fires no hashchange); a new sort starts at its first page.
function bucketsCard(params) {
  const initial = SORTS[params.get('sort')] ? params.get('sort') : 'count';
  const sortSel = h('select', {id: 'bucket-sort'}, Object.entries(SORTS).map(([v, text]) => h('option', {value: v}, text)));
  sortSel.value = initial;
  const holder = h('div');
  let ready = null;
  function load(cursor, page) {
    const sort = sortSel.value;
    const p = pagedTable('Crash buckets by ' + SORTS[sort], [
      {label: 'Bucket', cell: (b) => link('#/failures/bucket/' + encodeURIComponent(b.id), short(b.id))},
      {label: 'Component', cell: (b) => b.component},
      {label: 'Reason', cell: (b) => b.reason},
      {label: 'Reports', num: true, cell: (b) => h('span', {'data-testid': 'bucket-count'}, fmtNum(b.count))},
      {label: 'Devices', num: true, cell: (b) => fmtNum(b.devices)},
      {label: 'Last seen', cell: (b) => fmtTime(b.last_seen)},
      {label: 'Per version', cell: (b) => versionsText(b.series && b.series.versions)},
      {label: `Last ${SPARK_DAYS} days`, cell: (b) => spark(b.series)},
    ], (c) => bucketPage(sort, c), 'No crashes reported.', {
      cursor, page, testid: 'buckets',
      onPage: (c, n) => {
        const want = failuresHash(sort, c, n);
        if (location.hash.startsWith('#/failures') && !location.hash.startsWith('#/failures/') && location.hash !== want) {
          history.replaceState(null, '', want);
        }
      },
    });
    holder.replaceChildren(p.el);
    ready = p.ready;
  }
  sortSel.addEventListener('change', () => load(null, 1));
  load(params.get('cursor'), Number(params.get('page')) || 2);
  const el = section('Crash buckets', h('div', {class: 'controls'}, h('label', {for: 'bucket-sort'}, 'Sort by '), sortSel), holder);
  return {el, ready};
}

const RATE_SERIES_MAX = 6;

// The crash-rate series drawn: the RATE_SERIES_MAX versions with the most device-hours in the window (a
// little-run version's rate is noise) among those with a rate, and a note naming every other version with its
// device-hours, so nothing is left out silently.
function rateSeries(items) {
  const byVersion = new Map();
  for (const it of items) {
    const key = it.component + ' ' + it.image_version;
    if (!byVersion.has(key)) byVersion.set(key, {name: key, points: [], hours: 0});
    const v = byVersion.get(key);
    v.hours += it.device_hours || 0;
    if (it.crash_rate !== null) v.points.push([Date.parse(it.period_start), it.crash_rate]);
  }
  const all = [...byVersion.values()].sort((a, b) => b.hours - a.hours || (a.name < b.name ? -1 : 1));
  const drawn = all.filter((v) => v.points.length > 0).slice(0, RATE_SERIES_MAX);
  const left = all.filter((v) => !drawn.includes(v));
  const note = left.length === 0 ? null : h('p', {class: 'muted', 'data-testid': 'rates-left-out'},
    `${drawn.length} of ${all.length} versions drawn (those with the most device-hours); not drawn: ` +
    left.map((v) => `${v.name} (${fmtNum(Math.round(v.hours))} device-hours${v.points.length ? '' : ', no crash rate'})`).join(', ') + '.');
  return {series: drawn, note};
}

function ratesCards(rates, fleetSeries) {
  if (rates instanceof Error) return [section('Crash rate per version', unavailable('Crash rates', rates))];
  const {series, note} = rateSeries(rates.items || []);
  const fleet = rates.fleet || {};
  let freeSeries;
  let freeTitle;
  if (!(fleetSeries instanceof Error)) {
    const pts = (k) => (fleetSeries.items || []).map((p) => [Date.parse(p.period_start), p[k]]);
    freeSeries = [{name: 'crash-free device-hours', points: pts('crash_free_device_hours')}, {name: 'device-hours', points: pts('device_hours')}];
    freeTitle = 'Crash-free device-hours and device-hours per day';
  } else {
    const sum = new Map();
    for (const it of rates.items || []) sum.set(it.period_start, (sum.get(it.period_start) || 0) + it.device_hours);
    freeSeries = [{name: 'device-hours', points: [...sum].map(([t, v]) => [Date.parse(t), v])}];
    freeTitle = 'Device-hours per day (this server gives crash-free hours as a total only)';
  }
  const pct = fleet.device_hours > 0 ? (100 * fleet.crash_free_device_hours) / fleet.device_hours : null;
  return [
    section('Crash rate per version (7 days, daily)', lineChart(series, {title: 'Crashes per device-hour, per image version', yLabel: 'crashes / device-hour',
      xMin: Date.parse(rates.since), xMax: Date.parse(rates.until)}), note),
    section('Crash-free hours',
      h('p', {class: 'big'}, fmtNum(fleet.crash_free_device_hours), ' crash-free device-hours of ', fmtNum(fleet.device_hours),
        pct === null ? '' : ` (${pct.toFixed(2)} %)`),
      lineChart(freeSeries, {title: freeTitle, yLabel: 'hours'})),
  ];
}

export async function render(view, query) {
  const [rates, fleetSeries] = await Promise.all([
    get('/v1/failures/crash-rates' + qs({granularity: 'day'})).catch((e) => e),
    get('/v1/failures/fleet' + qs({granularity: 'day'})).catch((e) => e),
  ]);
  const flags = flagsTable(20);
  const buckets = bucketsCard(new URLSearchParams(query || ''));
  view.append(h('h1', null, 'Failures'), buckets.el, section('Emerging problems', flags.el), ...ratesCards(rates, fleetSeries));
  await Promise.all([buckets.ready, flags.ready]);
  return {poll: () => flags.reload()};
}

export async function renderBucket(view, id) {
  const [b, series] = await Promise.all([get('/v1/failures/buckets/' + encodeURIComponent(id)), seriesOf([id])]);
  const daily = series.get(String(b.id)) || null;
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
    h('p', null, `Crashes per day, last ${SPARK_DAYS} days: `, spark(daily))),
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
