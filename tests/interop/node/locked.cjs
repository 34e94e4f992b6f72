// Exits 0 when every package of package-lock.json is installed in node_modules at its locked
// version; else prints what is missing or different and exits 3. Used by tests/interop/run
// and .ci/run to skip `npm ci` when it has nothing to do.
const fs = require('node:fs');
const path = require('node:path');

const lock = JSON.parse(fs.readFileSync(path.join(__dirname, 'package-lock.json'), 'utf8'));
const wrong = [];
for (const [where, locked] of Object.entries(lock.packages)) {
  if (where === '') continue;
  let found = 'none';
  try {
    found = JSON.parse(fs.readFileSync(path.join(__dirname, where, 'package.json'), 'utf8')).version;
  } catch {}
  if (found !== locked.version) wrong.push(`${where}: locked ${locked.version}, installed ${found}`);
}
if (wrong.length > 0) {
  console.error(`not installed as locked: ${wrong.join('; ')}`);
  process.exit(3);
}
