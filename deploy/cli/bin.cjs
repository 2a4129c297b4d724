#!/usr/bin/env node
// Entry point of the `ecos` command: loads TypeScript through tsx and hands over to main.ts.
require("tsx/cjs");
require("./main.ts");
