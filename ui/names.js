// Names of the tenant's device groups and products for the views that hold only their ids (devices,
// deployments). One request per group or product, remembered while signed in (names are free text from
// the API: rendered as text nodes like everything else).
import {get, onSessionChange} from './api.js';
import {lazyText} from './dom.js';

const groups = new Map(); // id -> Promise<group>
const products = new Map(); // id -> Promise<product>

onSessionChange(() => {
  groups.clear();
  products.clear();
});

function cached(map, path, id) {
  if (!map.has(id)) {
    const p = get(path + encodeURIComponent(id));
    p.catch(() => map.delete(id)); // a failure is not remembered
    map.set(id, p);
  }
  return map.get(id);
}

// "name (#id)" of a group, filled in when it arrives; "—" for no group.
export function groupName(id) {
  if (id === null || id === undefined) return '—';
  return lazyText(cached(groups, '/v1/device-groups/', id).then((g) => `${g.name} (#${id})`));
}

// "group name (#id), product name" of a group.
export function groupAndProduct(id) {
  if (id === null || id === undefined) return '—';
  return lazyText(cached(groups, '/v1/device-groups/', id).then((g) =>
    cached(products, '/v1/products/', g.product_id).then((p) => `${g.name} (#${id}), product ${p.name}`)));
}
