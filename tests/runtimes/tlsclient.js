// A long-running Node.js HTTPS client for tests/runtime_matrix.rs.
//
// Usage: node [--use-openssl-ca] tlsclient.js PORT, then one mode per line on
// stdin; one line back: "ok" or "fail <reason>".
//   default  https.get with Node's default CAs: the bundled Mozilla roots plus
//            NODE_EXTRA_CA_CERTS, or with --use-openssl-ca OpenSSL's store
//            (SSL_CERT_FILE / SSL_CERT_DIR)
//   reread   https.get with `ca` read from TI_BUNDLE now: what an application
//            must do to follow a rotation
'use strict';
const fs = require('fs');
const https = require('https');
const readline = require('readline');

const port = Number(process.argv[2]);

function get(extra) {
  return new Promise((resolve) => {
    // agent: false: a new connection and TLS session per request.
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 15000, ...extra }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `fail HTTP ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`fail ${String(e.code || '')} ${e.message}`.replace(/\n/g, ' ')));
  });
}

async function main() {
  // Touch the default store now, before any rotation, as a long-running
  // program would have done with its first request.
  require('tls').createSecureContext();
  console.log('ready');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const mode of rl) {
    let out;
    if (mode === 'default') {
      out = await get({});
    } else if (mode === 'reread') {
      out = await get({ ca: fs.readFileSync(process.env.TI_BUNDLE) });
    } else {
      out = `fail unknown mode ${mode}`;
    }
    console.log(out);
  }
}

main();
