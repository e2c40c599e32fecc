// Preloaded into Azurite (node -r). Its blob service sweeps the data of deleted blobs every 10 minutes, and with
// an in-memory store a sweep scans every extent once per dead extent: after a test session's worth of dropped
// containers (45,000 blobs) one sweep held its single thread for minutes and every request timed out; sweeping
// every 15 s instead kept it busy for good. A test session frees little enough memory to keep it all, so the
// sweep is put off for the session: every AZURITE_GC_INTERVAL_MS, default 23 days (setTimeout's limit is 24.8).
"use strict";
const fs = require("fs");
const path = require("path");

const main = fs.realpathSync(process.argv[1]); // .../azurite/dist/src/blob/main.js
const constants = require(path.join(path.dirname(main), "utils", "constants.js"));
constants.DEFAULT_GC_INTERVAL_MS = Number(process.env.AZURITE_GC_INTERVAL_MS || 2e9);
