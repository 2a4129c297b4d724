// Entry of a CoS Party pool thread: the verify and pre-command tasks of party-task.ts.
// Worker threads do not inherit the main thread's tsx hooks, so register them here.
require("tsx/cjs");
module.exports = require("./party-task.ts");
