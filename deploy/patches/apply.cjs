#!/usr/bin/env node
// Applies ecos-stream's patches to installed npm packages (run by `npm install` as postinstall, and by
// deploy/cli/ensure-deps.cjs before `npm start` / `npm test`). Idempotent. See deploy/patches/README.md.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PATCHES = [
  {
    name: "kafkajs read_committed filter",
    pkg: "kafkajs",
    versions: ["2.2.4"],
    target: "src/consumer/filterAbortedMessages.js",
    source: path.join(__dirname, "filter-aborted-messages.cjs"),
  },
];

function apply() {
  for (const p of PATCHES) {
    let pkgJson;
    try {
      pkgJson = require.resolve(`${p.pkg}/package.json`, { paths: [path.join(__dirname, "..", "..")] });
    } catch {
      continue; // not installed (yet): nothing to patch
    }
    const dir = path.dirname(pkgJson);
    const version = JSON.parse(fs.readFileSync(pkgJson, "utf8")).version;
    if (!p.versions.includes(version)) {
      throw new Error(
        `${p.name}: written for ${p.pkg} ${p.versions.join(", ")}, but ${version} is installed; ` +
          `check whether ${p.target} still needs it and update deploy/patches/apply.cjs`,
      );
    }
    const target = path.join(dir, p.target);
    const wanted = fs.readFileSync(p.source, "utf8");
    if (fs.existsSync(target) && fs.readFileSync(target, "utf8") === wanted) continue;
    fs.writeFileSync(target, wanted);
    process.stderr.write(`ecos: patched ${p.pkg} ${version}: ${p.name} (deploy/patches)\n`);
  }
}

if (require.main === module) {
  try {
    apply();
  } catch (err) {
    process.stderr.write(`ecos: ${err.message}\n`);
    process.exit(1);
  }
}
module.exports = { apply };
