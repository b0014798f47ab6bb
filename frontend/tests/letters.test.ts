import { describe, expect, it } from "vitest";
import { named } from "../src/letters";

const names: Record<string, string> = { 0: "y", 1: "const", out: "pow" };
const role = (r: number | string): string | null => names[String(r)] ?? null;

describe("a rule in the program's names", () => {
  it("replaces each mapped letter, keeping commands and words", () => {
    const latex = String.raw`\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot 2\cdot x`;
    expect(named(latex, { x: 0, y: "out" }, role)).toBe(
      String.raw`\frac{\partial L}{\partial {y}} = \frac{\partial L}{\partial {\text{pow}}} \odot 2\cdot {y}`);
  });

  it("leaves words in text groups and commands alone", () => {
    const latex = String.raw`\mathbb{1}[a \text{ wins}],\ \max(a, b)\ \sqrt{a}`;
    expect(named(latex, { a: 0, b: 1 }, role)).toBe(
      String.raw`\mathbb{1}[{y} \text{ wins}],\ \max({y}, {\text{const}})\ \sqrt{{y}}`);
  });

  it("sets a product of letters apart and keeps unmapped runs", () => {
    expect(named("Y = XW + ab", { X: 0, W: 1, Y: "out" }, role)).toBe(String.raw`{\text{pow}} = {y}\,{\text{const}} + ab`);
    expect(named("x_i", null, role)).toBe("x_i");
  });
});
