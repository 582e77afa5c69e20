// What the stats line shows: people, track ids, frames answered, FPS and latency over the last seconds, drops.

const WINDOW_MS = 2000;
const field = (id) => document.getElementById(id);

export class Stats {
  constructor() {
    this.reset();
  }

  reset() {
    this.answered = 0;
    this.dropped = 0;
    this.recent = []; // [answered at, latency ms]
    this.seen = new Set(); // every track id of this stream
    delete field("track-ids").dataset.seen;
    for (const [id, text] of [["frames-answered", "0"], ["fps", "0"], ["latency", "–"], ["dropped", "0"],
      ["track-ids", ""]]) {
      field(id).textContent = text;
    }
  }

  // the people of the last drawn answer (both modes)
  people(people) {
    field("people-count").textContent = String(people.length);
    const ids = people.filter((p) => p.track_id !== undefined).map((p) => p.track_id).sort((a, b) => a - b);
    field("track-ids").textContent = ids.join(",");
    if (ids.length) {
      ids.forEach((id) => this.seen.add(id));
      field("track-ids").dataset.seen = [...this.seen].sort((a, b) => a - b).join(",");
    }
  }

  timing(timingMs, roundTripMs) {
    const parts = Object.entries(timingMs).map(([stage, ms]) => `${stage} ${ms.toFixed(1)}`);
    if (roundTripMs !== undefined) parts.push(`round trip ${roundTripMs.toFixed(0)}`);
    field("timing").textContent = parts.length ? `${parts.join(" · ")} ms` : "–";
  }

  // one stream answer: latency from the frame's send to its answer
  frame(latencyMs, dropped) {
    const now = performance.now();
    this.answered += 1;
    this.dropped += dropped;
    this.recent.push([now, latencyMs]);
    while (this.recent.length && this.recent[0][0] < now - WINDOW_MS) this.recent.shift();
    const span = (now - this.recent[0][0]) / 1000;
    const fps = this.recent.length > 1 && span > 0 ? (this.recent.length - 1) / span : 0;
    const latency = this.recent.reduce((sum, [, ms]) => sum + ms, 0) / this.recent.length;
    field("frames-answered").textContent = String(this.answered);
    field("fps").textContent = fps.toFixed(1);
    field("latency").textContent = `${latency.toFixed(0)} ms`;
    field("dropped").textContent = String(this.dropped);
  }

  drops(count) {
    this.dropped += count;
    field("dropped").textContent = String(this.dropped);
  }
}
