// The public tuf-js client against an Aegis image repository over mutual TLS (docs/update.md).
// Used by tests/integration/test_tufjs.py; not part of the product.
//
//   node client.mjs CONFIG.json
//
// CONFIG: {"base": "https://127.0.0.1:PORT", "ca": PEM file, "cert": PEM file, "key": PEM file,
//          "metadata_dir": dir holding the trusted root.json (tuf-js keeps its cache there),
//          "target": target path or null, "out": file to write the target to}
// Prints one JSON line: {"ok": true, "root": n, "timestamp": n, "snapshot": n, "targets": n,
// "target": {"path", "length", "sha256"} | null} or {"ok": false, "error": class name, "message"}.
import fs from 'node:fs';
import https from 'node:https';
import { Readable } from 'node:stream';
import * as modelErrors from '@tufjs/models/dist/error.js';
import { BaseFetcher, Updater } from 'tuf-js';
import * as clientErrors from 'tuf-js/dist/error.js';

const { DownloadHTTPError } = clientErrors;

// tuf-js wraps some failures in a RuntimeError whose message embeds the cause as `${error}`, which prints
// "Error: ..." for its error classes (they do not set a name); naming them lets the test see which check refused.
for (const errors of [clientErrors, modelErrors]) {
  for (const [name, cls] of Object.entries(errors)) {
    if (typeof cls === 'function' && cls.prototype instanceof Error) cls.prototype.name = name;
  }
}

class MtlsFetcher extends BaseFetcher {
  constructor(tls) {
    super();
    this.agent = new https.Agent({ ...tls, keepAlive: false });
  }

  fetch(url) {
    return new Promise((resolve, reject) => {
      const req = https.get(url, { agent: this.agent }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new DownloadHTTPError(`GET ${url}: ${res.statusCode}`, res.statusCode));
          return;
        }
        resolve(Readable.toWeb(res));
      });
      req.on('error', reject);
      req.setTimeout(20000, () => req.destroy(new Error('timeout')));
    });
  }
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const fetcher = new MtlsFetcher({
    ca: fs.readFileSync(cfg.ca),
    cert: fs.readFileSync(cfg.cert),
    key: fs.readFileSync(cfg.key),
  });
  const updater = new Updater({
    metadataDir: cfg.metadata_dir,
    metadataBaseUrl: `${cfg.base}/v1/device/tuf/`,
    targetDir: cfg.metadata_dir,
    targetBaseUrl: `${cfg.base}/v1/device/tuf/targets/`,
    fetcher,
  });
  await updater.refresh();
  const ts = updater.trustedSet;
  const out = {
    ok: true,
    root: ts.root.signed.version,
    timestamp: ts.timestamp.signed.version,
    snapshot: ts.snapshot.signed.version,
    targets: ts.targets.signed.version,
    target: null,
  };
  if (cfg.target) {
    const info = await updater.getTargetInfo(cfg.target);
    if (!info) throw new Error(`no target ${cfg.target}`);
    await updater.downloadTarget(info, cfg.out);
    out.target = { path: info.path, length: info.length, sha256: info.hashes.sha256 };
  }
  return out;
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.log(JSON.stringify({ ok: false, error: err.constructor.name, message: String(err.message) }));
    process.exitCode = 1;
  },
);
