import { describe, expect, it } from "vitest";
import { exact, tiling } from "../src/images";

describe("images for images", () => {
  it("cuts a shape into channels of pictures", () => {
    expect(tiling([1, 6, 28, 28])).toEqual({ rows: 1, cols: 6, h: 28, w: 28 });
    expect(tiling([16, 6, 5, 5])).toEqual({ rows: 16, cols: 6, h: 5, w: 5 });
    expect(tiling([120, 400])).toEqual({ rows: 1, cols: 1, h: 120, w: 400 });
    expect(tiling([10])).toEqual({ rows: 1, cols: 1, h: 1, w: 10 });
  });

  it("writes a float32 with the fewest digits that are exactly it", () => {
    const f = Math.fround(0.1);
    expect(exact(f, "float32")).toBe("0.1");
    expect(Math.fround(Number(exact(Math.fround(-1.2345678e-5), "float32")))).toBe(Math.fround(-1.2345678e-5));
    expect(exact(f, "float64")).toBe(String(f));
    expect(exact(Infinity, "float32")).toBe("inf");
  });
});
