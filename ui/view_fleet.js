// Fleet: devices by state, attestation pass rate over time with refusal reasons, certificates expiring.
// Data: GET /v1/devices/stats and GET /v1/attestations/stats (docs/api.md "Dashboard figures"), the device list.
import {get, qs} from './api.js';
import {h, section, table, pagedTable, link, fmtTime, fmtNum, short, unavailable} from './dom.js';
import {lineChart, bars} from './charts.js';

const DAY = 86400e3;

// The figures are computed over the whole fleet (every device's current certificate, a week of attestation
// records: about a second at 100,000 devices on a busy machine), so the view paints without them and each
// card fills in when its figures arrive; the device list is one page, shown at once.
export async function render(view) {
  const since = new Date(Date.now() - 7 * DAY).toISOString().slice(0, 19) + 'Z';
  const devices = devicesCard();
  const stats = get('/v1/devices/stats').catch((e) => e);
  const att = get('/v1/attestations/stats' + qs({since, granularity: 'hour'})).catch((e) => e);
  view.append(h('h1', null, 'Fleet'), later('Devices by state', stats, statesCard),
    later('Attestation pass rate (7 days, hourly)', att, attestCard), later('Certificates expiring', stats, certCard), devices.el);
  await devices.ready;
}

// A card that shows "…" until promise resolves, then build(result) in its place.
function later(title, promise, build) {
  const card = section(title, h('p', null, h('span', {class: 'muted'}, '…'), ' (computing over the fleet)'));
  promise.then((r) => card.replaceWith(build(r)));
  return card;
}

function statesCard(stats) {
  if (stats instanceof Error) return section('Devices by state', unavailable('Device statistics', stats));
  const by = stats.states || {};
  const items = Object.keys(by).map((k) => ({label: k, value: by[k]}));
  const total = items.reduce((a, b) => a + b.value, 0);
  const att = stats.attestation || {};
  const attItems = Object.keys(att).map((k) => ({label: 'last attestation ' + k, value: att[k]}));
  return section('Devices by state', h('p', {class: 'big', 'data-testid': 'device-total'}, fmtNum(total), ' devices'),
    bars(items, 'Devices by state'), bars(attItems, 'Claimed devices by their last attestation result'));
}

function attestCard(att) {
  if (att instanceof Error) return section('Attestation pass rate', unavailable('Attestation statistics', att));
  const items = att.items || [];
  const rate = items.filter((i) => i.pass + i.fail > 0)
    .map((i) => [Date.parse(i.period_start), (100 * i.pass) / (i.pass + i.fail)]);
  const reasons = (att.totals && att.totals.reasons) || {};
  const rows = Object.entries(reasons).sort((a, b) => b[1] - a[1]).map(([reason, n]) => ({reason, n}));
  return section('Attestation pass rate (7 days, hourly)',
    lineChart([{name: 'pass rate %', points: rate}], {title: 'Attestation pass rate per hour, percent', yLabel: '% passed', yMax: 100}),
    table('Refusal reasons (7 days)', [
      {label: 'Reason', cell: (r) => r.reason},
      {label: 'Attempts', num: true, cell: (r) => fmtNum(r.n)},
    ], rows, 'No refusals.'));
}

function certCard(stats) {
  if (stats instanceof Error) return section('Certificates expiring', unavailable('Certificate expiry', stats));
  const c = stats.certificates || {};
  const hours = Math.round((stats.within || 0) / 3600);
  return section('Certificates expiring', h('p', null,
    `${fmtNum(c.expiring)} expiring within ${hours} h, ${fmtNum(c.expired)} expired, ${fmtNum(c.valid)} valid longer, ` +
    `${fmtNum(c.none)} claimed devices without a certificate.`),
  table('Device certificates expired or expiring, soonest first', [
    {label: 'Device', cell: (x) => link('#/devices/' + encodeURIComponent(x.device_id), short(x.device_id))},
    {label: 'Expires', cell: (x) => fmtTime(x.not_after)},
  ], stats.expiring || [], 'No certificate expires soon.'));
}

function devicesCard() {
  const p = pagedTable('Devices by id', [
    {label: 'Device', cell: (d) => link('#/devices/' + encodeURIComponent(d.id), short(d.id))},
    {label: 'State', cell: (d) => d.state},
    {label: 'Group', cell: (d) => (d.group_id === null ? '—' : String(d.group_id))},
    {label: 'Last attestation', cell: (d) => (d.attestation ? d.attestation.result + (d.attestation.reason ? ' (' + d.attestation.reason + ')' : '') + ', ' + fmtTime(d.attestation.at) : '—')},
  ], (cursor) => get('/v1/devices' + qs({limit: 25, cursor})), 'No devices.');
  return {el: section('Devices', p.el), ready: p.ready};
}
