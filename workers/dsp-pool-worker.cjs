// Entry of a dsp-validate pool thread: the tasks of tasks.ts plus the verify-and-countersign task.
// Worker threads do not inherit the main thread's tsx hooks, so register them here.
require("tsx/cjs");
module.exports = { ...require("./tasks.ts"), ...require("./dsp/dsp-task.ts") };
