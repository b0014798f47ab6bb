import { describe, expect, it } from "vitest";
import { allGroupIds, buildDisplay, consumersOf, defaultOptions, moduleGroups } from "../src/graph";
import type { DisplayGraph } from "../src/graph";
import { node, rnn, view } from "./fixtures";

function endpointsExist(g: DisplayGraph): void {
  const ids = new Set(g.items.map((i) => i.id));
  expect(ids.size).toBe(g.items.length);
  for (const e of g.edges) {
    expect(ids.has(e.from)).toBe(true);
    expect(ids.has(e.to)).toBe(true);
  }
}

describe("module groups", () => {
  it("makes one group per call, not one per module", () => {
    const nodes = rnn(5);
    const { groups, chainOf } = moduleGroups(nodes, consumersOf(nodes));
    expect(groups.size).toBe(5);
    expect(new Set([...groups.values()].map((g) => g.path))).toEqual(new Set(["cell"]));
    expect(chainOf.get("mm0")).toEqual(chainOf.get("tanh0"));
    expect(chainOf.get("mm1")).not.toEqual(chainOf.get("mm0"));
    // parameters join the call of their first consumer
    expect(chainOf.get("W")).toEqual(chainOf.get("mm0"));
  });

  it("nests submodules inside their parent's call", () => {
    const nodes = [
      node({ id: "x", kind: "leaf", names: ["x"] }),
      node({ id: "a", module: "features.0", inputs: ["x"] }),
      node({ id: "b", module: "features.1", inputs: ["a"] }),
      node({ id: "c", module: "head", inputs: ["b"] }),
    ];
    const { groups, chainOf } = moduleGroups(nodes, consumersOf(nodes));
    const [outer, inner] = chainOf.get("b")!;
    expect(groups.get(outer)!.path).toBe("features");
    expect(groups.get(inner)!.parent).toBe(outer);
    expect(chainOf.get("a")![0]).toBe(outer);
    expect(groups.get(chainOf.get("c")![0])!.path).toBe("head");
  });
});

describe("display graph", () => {
  it("shows every node as an item when nothing is collapsed", () => {
    const nodes = rnn(3);
    const g = buildDisplay(nodes, [], new Set(["loss"]), { collapsed: new Set(), splitShared: false, showConstants: true, calls: new Map(), foldRepeats: true });
    endpointsExist(g);
    for (const n of nodes) expect(g.itemOf.get(n.id)).toBe(n.id);
    expect(g.items.find((i) => i.id === "loss")!.kind).toBe("output");
    expect(g.items.find((i) => i.id === "W")!.kind).toBe("param");
    expect(g.items.find((i) => i.id === "h0")!.kind).toBe("leaf");
    expect(g.items.filter((i) => i.kind === "const")).toHaveLength(nodes.flatMap((n) => n.inputs).filter((i) => i === null).length);
    expect(g.items.filter((i) => i.kind === "const")).toHaveLength(3);
    expect(g.boxes).toHaveLength(3);
  });

  it("folds a collapsed call into one item and keeps the chain connected", () => {
    const nodes = rnn(4);
    const all = allGroupIds(nodes);
    const g = buildDisplay(nodes, [], new Set(["loss"]), { collapsed: all, splitShared: true, showConstants: false, calls: new Map(), foldRepeats: true });
    endpointsExist(g);
    const groups = g.items.filter((i) => i.kind === "group");
    expect(groups).toHaveLength(4);
    expect(g.boxes).toHaveLength(0);
    // the calls form a chain: call k feeds call k+1
    for (let t = 1; t < 4; t++) {
      const from = g.itemOf.get(`tanh${t - 1}`)!;
      const to = g.itemOf.get(`mm${t}`)!;
      expect(g.edges.some((e) => e.from === from && e.to === to)).toBe(true);
    }
    // shared parameters are hidden inside the collapsed calls, not drawn with edges everywhere
    expect(g.items.some((i) => i.node === "W")).toBe(false);
  });

  it("splits a shared leaf into one copy per consumer", () => {
    const nodes = rnn(6);
    const g = buildDisplay(nodes, [], new Set(), { collapsed: new Set(), splitShared: true, showConstants: false, calls: new Map(), foldRepeats: true });
    endpointsExist(g);
    const copies = g.items.filter((i) => i.node === "W");
    expect(copies).toHaveLength(6);
    for (const c of copies) expect(g.edges.filter((e) => e.from === c.id)).toHaveLength(1);
  });

  it("folds a module called over and over into one box ×N, and opens one call among them", () => {
    const nodes = rnn(500);
    const opts = { ...defaultOptions(nodes), collapsed: new Set<string>() };  // even "Expand groups"
    const g = buildDisplay(nodes, [], new Set(["loss"]), opts);
    endpointsExist(g);
    const folds = g.items.filter((i) => i.id.startsWith("f:"));
    expect(folds.map((f) => f.label)).toEqual(["cell ×500"]);
    expect(g.itemOf.get("mm0")).toBe("f:cell:all");
    expect(g.itemOf.get("W")).toBe("f:cell:all");
    expect(g.items.length).toBeLessThan(6);
    expect(g.boxes).toHaveLength(0);

    const open = buildDisplay(nodes, [], new Set(["loss"]), { ...opts, calls: new Map([["cell", 37]]) });
    endpointsExist(open);
    expect(open.items.filter((i) => i.id.startsWith("f:")).map((f) => f.label))
      .toEqual(["cell ×36 (calls 1–36)", "cell ×463 (calls 38–500)"]);
    expect(open.itemOf.get("mm36")).toBe("mm36");  // call 37 is drawn node by node, in its box
    expect(open.boxes.map((b) => b.label)).toEqual(["cell (call 37)"]);
    expect(open.items.some((i) => i.id === "W@mm36")).toBe(true);  // the module's parameter, beside the call opened
    // the calls before feed the call opened, which feeds the calls after
    expect(open.edges.some((e) => e.from === "f:cell:before" && e.to === "mm36")).toBe(true);
    expect(open.edges.some((e) => e.from === "tanh36" && e.to === "f:cell:after")).toBe(true);
    expect(open.edges.some((e) => e.from === e.to)).toBe(false);

    const unfolded = buildDisplay(nodes, [], new Set(["loss"]), { ...opts, foldRepeats: false });
    expect(unfolded.items.filter((i) => i.kind === "group")).toHaveLength(0);
    expect(unfolded.boxes).toHaveLength(500);
  });

  it("draws cut edges dashed", () => {
    const nodes = [node({ id: "w", kind: "leaf", names: ["w"] }), node({ id: "m", inputs: ["w", null] })];
    const g = buildDisplay(nodes, [{ source: "w", op: "sub_", line: 3, reason: "no_grad" }], new Set(), defaultOptions(nodes));
    endpointsExist(g);
    const cut = g.edges.filter((e) => e.dashed);
    expect(cut).toHaveLength(1);
    expect(cut[0].from).toBe("w");
    expect(g.items.find((i) => i.id === cut[0].to)!.kind).toBe("cut");
  });

  it("collapses by default only when the graph is large", () => {
    expect(defaultOptions(rnn(3)).collapsed.size).toBe(0);
    const big = rnn(200);
    const opts = defaultOptions(big);
    expect(opts.collapsed.size).toBe(200);
    expect(opts.splitShared).toBe(true);
  });

  it("sizes items to fit their label and shape", () => {
    const nodes = [node({ id: "a", kind: "leaf", names: ["a_rather_long_variable_name"], value: view([64, 1, 28, 28]) })];
    const g = buildDisplay(nodes, [], new Set(), defaultOptions(nodes));
    const it0 = g.items[0];
    expect(it0.w).toBeGreaterThanOrEqual("a_rather_long_variable_name".length * 7);
    expect(it0.sub).toBe("64×1×28×28");
  });
});
