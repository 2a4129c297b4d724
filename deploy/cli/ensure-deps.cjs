#!/usr/bin/env node
// Runs before `npm start` and `npm test`: on a fresh clone (no node_modules, or a lock file newer than
// the installed tree) it installs the locked npm dependencies, so the README's two commands work as
// written. Plain JavaScript because nothing else is installed yet when it runs.
const { execSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..", "..");
const marker = path.join(root, "node_modules", ".package-lock.json");
const lock = path.join(root, "package-lock.json");
const stale = !fs.existsSync(marker) || fs.statSync(lock).mtimeMs > fs.statSync(marker).mtimeMs;
if (stale) {
  process.stderr.write("ecos: installing npm dependencies from package-lock.json ...\n");
  try {
    execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: "inherit" });
  } catch {
    // The registry reachable here lists only some platforms' optional binaries, so `npm ci` can call
    // the lock out of sync; `npm install` honours the same locked versions.
    process.stderr.write("ecos: npm ci refused the lock file; installing with npm install\n");
    execSync("npm install --no-audit --no-fund", { cwd: root, stdio: "inherit" });
  }
}
// Patches to installed packages (idempotent; also run by `npm install` as postinstall).
try {
  require("../patches/apply.cjs").apply();
} catch (err) {
  process.stderr.write(`ecos: ${err.message}\n`);
  process.exit(1);
}
