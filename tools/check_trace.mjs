// Parses a deepseek Chrome trace with Chrome DevTools' trace engine (npm
// @paulirish/trace_engine, pinned in scripts/test_tools.sh) and prints, as JSON, the complete
// ("X") events the engine's Renderer handler built: {entries: name -> [count, total us],
// bounds_us: the trace's time range}.
// Usage: node tools/check_trace.mjs TRACE.json ENGINE_DIR
import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';

const [file, engineDir] = process.argv.slice(2);
if (!file || !engineDir) {
  console.error('usage: node tools/check_trace.mjs TRACE.json ENGINE_DIR');
  process.exit(2);
}
globalThis.DOMRect = class DOMRect {
  constructor(x = 0, y = 0, width = 0, height = 0) {
    Object.assign(this, {x, y, width, height, top: y, left: x, right: x + width, bottom: y + height});
  }
};
const Trace = await import(pathToFileURL(
    path.join(engineDir, 'node_modules/@paulirish/trace_engine/models/trace/trace.js')).href);
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
const events = doc.traceEvents ?? doc;
const model = Trace.TraceModel.Model.createWithAllHandlers();
await model.parse(events);
const parsed = model.parsedTrace();
if (!parsed) throw new Error('the trace engine returned no data');
const out = {};
const data = parsed.data ?? parsed;
for (const [, proc] of data.Renderer.processes) {
  for (const [, thread] of proc.threads) {
    for (const e of thread.entries ?? []) {
      const k = e.name;
      const dur = e.dur ?? 0;  // microseconds
      out[k] = out[k] ? [out[k][0] + 1, out[k][1] + dur] : [1, dur];
    }
  }
}
console.log(JSON.stringify({entries: out, bounds_us: data.Meta.traceBounds.range}));
