// One device (attestation history, reports, update attempts, certificate) and the images list.
import {get, qs} from './api.js';
import {h, section, pagedTable, link, fmtTime, fmtNum, short, unavailable} from './dom.js';
import {groupName, groupAndProduct} from './names.js';

function attestText(a) {
  if (!a) return 'never attested';
  return a.result + (a.reason ? ' (' + a.reason + ')' : '') + ' at ' + fmtTime(a.at);
}

function reportDetail(r) {
  if (r.type === 'crash') return [r.component, ' ', r.image_version, ': ', r.reason, ' at ', r.pc, r.message === null ? '' : ' — ', h('span', {class: 'message'}, r.message || '')];
  if (r.type === 'heartbeat') return `every ${r.period_s} s, free memory ${fmtNum(r.free_memory)}`;
  return 'reboot: ' + r.reason;
}

// The device's current certificate (GET /v1/devices/{id}/certificate: its newest passed attestation since its
// claim, however many attempts failed since).
async function certCard(id) {
  const r = await get(`/v1/devices/${encodeURIComponent(id)}/certificate`).catch((e) => e);
  if (r instanceof Error) return section('Certificate', unavailable('The certificate', r));
  const c = r.certificate;
  if (!c) return section('Certificate', h('p', {class: 'muted', 'data-testid': 'cert-none'}, 'No current certificate (never passed attestation since its claim).'));
  const left = (Date.parse(c.not_after) - Date.now()) / 3600e3;
  return section('Certificate', h('dl', {class: 'kv'},
    h('dt', null, 'Serial'), h('dd', null, h('code', {'data-testid': 'cert-serial'}, c.serial)),
    h('dt', null, 'Issued'), h('dd', null, fmtTime(c.issued_at)),
    h('dt', null, 'Expires'), h('dd', {'data-testid': 'cert-expiry'}, fmtTime(c.not_after), left > 0 ? ` (in ${left.toFixed(1)} h)` : ' (expired)')));
}

export async function render(view, id) {
  const base = '/v1/devices/' + encodeURIComponent(id);
  const d = await get(base);
  const atts = pagedTable('Attestation history, newest first', [
    {label: 'At', cell: (a) => fmtTime(a.created_at)},
    {label: 'Result', cell: (a) => a.result},
    {label: 'Reason', cell: (a) => a.reason || '—'},
    {label: 'Measurements', cell: (a) => (a.measurements || []).map((m) => `${m.stage || ''} ${m.component || ''} ${m.version || ''}`.trim()).join('; ')},
    {label: 'Certificate until', cell: (a) => (a.certificate ? fmtTime(a.certificate.not_after) : '—')},
  ], (cursor) => get(base + '/attestations' + qs({limit: 20, cursor})), 'No attestation kept.', {testid: 'attestations'});
  const reports = pagedTable('Reports, newest first', [
    {label: 'Received', cell: (r) => fmtTime(r.received_at)},
    {label: 'Type', cell: (r) => r.type},
    {label: 'Detail', cell: reportDetail},
    {label: 'Bucket', cell: (r) => (r.bucket_id ? link('#/failures/bucket/' + encodeURIComponent(r.bucket_id), short(r.bucket_id)) : '—')},
  ], (cursor) => get(base + '/reports' + qs({limit: 20, cursor})), 'No reports.');
  const attempts = pagedTable('Update attempts, newest first', [
    {label: 'Updated', cell: (u) => fmtTime(u.updated_at || u.created_at)},
    {label: 'Deployment', cell: (u) => link('#/rollouts/' + encodeURIComponent(u.deployment_id), String(u.deployment_id))},
    {label: 'Image', cell: (u) => short(u.image)},
    {label: 'State', cell: (u) => u.state},
    {label: 'Reason', cell: (u) => u.reason || '—'},
  ], (cursor) => get(base + '/update-attempts' + qs({limit: 20, cursor})), 'No update attempts.');
  view.append(
    h('h1', null, 'Device ', h('code', null, short(d.id))),
    section('Registration', h('dl', {class: 'kv'},
      h('dt', null, 'Id'), h('dd', null, h('code', {class: 'wrap'}, d.id)),
      h('dt', null, 'State'), h('dd', null, d.state),
      h('dt', null, 'Group'), h('dd', null, groupAndProduct(d.group_id)),
      h('dt', null, 'Claimed'), h('dd', null, fmtTime(d.claimed_at)),
      h('dt', null, 'Last attestation'), h('dd', null, attestText(d.attestation)),
      h('dt', null, 'Tags'), h('dd', null, Object.entries(d.tags || {}).map(([k, v]) => k + '=' + v).join(', ') || '—'))),
    await certCard(id),
    section('Attestation history', atts.el),
    section('Reports', reports.el),
    section('Update attempts', attempts.el));
  await Promise.all([atts.ready, reports.ready, attempts.ready]);
}

export async function renderImages(view) {
  const images = pagedTable('Images, oldest first', [
    {label: 'SHA-256', cell: (i) => h('code', null, short(i.sha256))},
    {label: 'Component', cell: (i) => i.component},
    {label: 'Kind', cell: (i) => i.kind},
    {label: 'Version', cell: (i) => i.version},
    {label: 'SVN', num: true, cell: (i) => String(i.svn)},
    {label: 'Hardware', cell: (i) => i.hardware},
    {label: 'Size', num: true, cell: (i) => fmtNum(i.size)},
    {label: 'Uploaded', cell: (i) => fmtTime(i.created_at)},
  ], (cursor) => get('/v1/images' + qs({limit: 50, cursor})), 'No images.');
  const deps = pagedTable('Deployments, newest first', [
    {label: 'Deployment', cell: (d) => link('#/rollouts/' + encodeURIComponent(d.id), d.name)},
    {label: 'State', cell: (d) => d.state},
    {label: 'Group', cell: (d) => groupName(d.group_id)},
    {label: 'Images', cell: (d) => d.images.map(short).join(', ')},
    {label: 'Created', cell: (d) => fmtTime(d.created_at)},
  ], (cursor) => get('/v1/deployments' + qs({limit: 20, cursor})), 'No deployments.');
  view.append(h('h1', null, 'Images and deployments'), section('Images', images.el), section('Deployments', deps.el));
  await Promise.all([images.ready, deps.ready]);
}
