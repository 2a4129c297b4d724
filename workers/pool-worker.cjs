// Entry of a piscina worker thread. Worker threads do not inherit the main thread's tsx hooks, so
// register them here, then hand piscina the task functions of tasks.ts (looked up by name).
require("tsx/cjs");
module.exports = require("./tasks.ts");
