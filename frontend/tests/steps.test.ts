import { describe, expect, it } from "vitest";
import { PassIndex, StepCursor } from "../src/steps";
import type { Pass } from "../src/wire";
import { view } from "./fixtures";

// y = x * x (x shared by both inputs of mul), z = y.sum(): steps sum, mul, x
const inputs: Record<string, (string | null)[]> = { z: ["y"], y: ["x", "x"], x: [] };
const pass: Pass = {
  index: 0, root: "z", gradient: null,
  steps: [
    { node: "z", grad_output: view([], 1), grad_inputs: [view([2], [1, 1])], formula: null },
    { node: "y", grad_output: view([2], [1, 1]), grad_inputs: [view([2], [3, 4]), view([2], [3, 4])], formula: null },
    { node: "x", grad_output: view([2], [6, 8]), grad_inputs: [], formula: null },
  ],
};

describe("pass index", () => {
  const index = new PassIndex(pass, (id) => inputs[id] ?? []);

  it("never reports a gradient before its step", () => {
    expect(index.gradAt("x", 0)).toEqual({ kind: "pending" });
    expect(index.gradAt("x", 1)).toEqual({ kind: "pending" });
    const known = index.gradAt("x", 2);
    expect(known.kind).toBe("known");
    expect(index.gradAt("other", 2)).toEqual({ kind: "unreached" });
  });

  it("collects each consumer's contribution, which sum to the upstream", () => {
    const contributions = index.contributions.get("x")!;
    expect(contributions).toHaveLength(2);
    const sum = [0, 1].map((i) => contributions.reduce((s, c) => s + (c.grad!.values as number[])[i], 0));
    expect(sum).toEqual(pass.steps[2].grad_output!.values);
  });

  it("orders statuses around the cursor", () => {
    expect(["z", "y", "x"].map((n) => index.status(n, 1))).toEqual(["done", "active", "ahead"]);
    expect(index.status("nope", 1)).toBe("out");
  });
});

describe("step cursor", () => {
  it("stays inside the pass", () => {
    const c = new StepCursor(() => [3, 5]);
    c.last();
    expect(c.step).toBe(2);
    expect(c.atEnd).toBe(true);
    expect(c.next()).toBe(false);
    c.goto(1, 99);
    expect([c.pass, c.step]).toEqual([1, 4]);
    c.first();
    expect(c.prev()).toBe(false);
    c.goto(7, -3);
    expect([c.pass, c.step]).toEqual([1, 0]);
  });

  it("handles a run without backward", () => {
    const c = new StepCursor(() => []);
    c.next();
    expect([c.pass, c.step]).toEqual([0, 0]);
    expect(c.atEnd).toBe(true);
  });
});
