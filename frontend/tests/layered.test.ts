import { describe, expect, it } from "vitest";
import { buildDisplay, defaultOptions } from "../src/graph";
import { layered } from "../src/layered";
import { rnn } from "./fixtures";

function overlaps(a: [number, number, number, number], b: [number, number, number, number]): boolean {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

describe("layered layout", () => {
  it("puts every producer left of its consumer, without overlaps", () => {
    const nodes = rnn(50);
    const g = buildDisplay(nodes, [], new Set(["loss"]), { ...defaultOptions(nodes), collapsed: new Set() });
    const r = layered(g.items, g.edges, g.boxes);
    for (const e of g.edges) expect(r.pos[e.from][0]).toBeLessThan(r.pos[e.to][0]);
    const rects = g.items.map((it) => [...r.pos[it.id], it.w, it.h] as [number, number, number, number]);
    const byX = [...rects].sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < byX.length; i++) {
      for (let j = i + 1; j < byX.length && byX[j][0] < byX[i][0] + byX[i][2]; j++) {
        expect(overlaps(byX[i], byX[j])).toBe(false);
      }
    }
  });

  it("lays out 10,000 items in well under a second and boxes enclose their members", () => {
    const nodes = rnn(3300);
    const g = buildDisplay(nodes, [], new Set(["loss"]), { collapsed: new Set(), splitShared: true, showConstants: false, calls: new Map(), foldRepeats: false });
    expect(g.items.length).toBeGreaterThan(10_000);
    const r = layered(g.items, g.edges, g.boxes);
    expect(r.ms).toBeLessThan(3000);
    for (const box of g.boxes.slice(0, 50)) {
      const b = r.boxes[box.id];
      for (const it of g.items.filter((i) => i.parent === box.id)) {
        const [x, y] = r.pos[it.id];
        expect(x).toBeGreaterThanOrEqual(b[0]);
        expect(y).toBeGreaterThanOrEqual(b[1]);
        expect(x + it.w).toBeLessThanOrEqual(b[0] + b[2]);
        expect(y + it.h).toBeLessThanOrEqual(b[1] + b[3]);
      }
    }
  });

  it("survives a cycle between collapsed groups", () => {
    const items = ["a", "b", "c"].map((id) => ({ id, w: 50, h: 30, parent: null }));
    const r = layered(items, [{ from: "a", to: "b" }, { from: "b", to: "c" }, { from: "c", to: "b" }], []);
    expect(Object.keys(r.pos).sort()).toEqual(["a", "b", "c"]);
  });
});
