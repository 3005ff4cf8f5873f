// ical-generator on the benchmark's events (read as JSON from stdin); prints seconds and memory.
import { readFileSync } from "node:fs";
import ical from "ical-generator";

const events = JSON.parse(readFileSync(0, "utf8"));
const before = process.memoryUsage().rss;
const start = performance.now();
const calendar = ical({ name: "Benchmark", prodId: "-//bench//ical-generator//EN" });
for (const e of events) {
  calendar.createEvent({
    id: `bench/${e.id}@eventwatch`,
    start: e.allDay ? e.start : e.start.replace(" ", "T"),
    end: e.allDay ? e.end : e.end.replace(" ", "T"),
    allDay: e.allDay,
    timezone: e.allDay ? undefined : e.timezone,
    stamp: new Date("2026-01-01T00:00:00Z"),
    summary: e.title,
    description: e.description,
    location: e.location,
    categories: e.categories.map((name) => ({ name })),
    sequence: 0,
  });
}
const body = calendar.toString();
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({
  seconds,
  bytes: Buffer.byteLength(body, "utf8"),
  peak_mb: process.resourceUsage().maxRSS / 1024,
  input_mb: before / 1024 / 1024,
}));
