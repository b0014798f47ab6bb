import { describe, expect, it } from "vitest";
import { diverging, flat, fmtNum, fmtTensor, pictureKind, toNumber } from "../src/tensor";
import { decodeView, encodeView, fromBase64Url, toBase64Url } from "../src/share";
import { view } from "./fixtures";

describe("numbers", () => {
  it("reads the wire's non-finite strings", () => {
    expect(toNumber("nan")).toBeNaN();
    expect(toNumber("inf")).toBe(Infinity);
    expect(toNumber("-inf")).toBe(-Infinity);
    expect(fmtNum("nan")).toBe("nan");
    expect(fmtNum("-inf")).toBe("-inf");
  });

  it("keeps four significant digits and round-trips within them", () => {
    for (const x of [1 / 3, -2.718281828, 123.456789, 6, 0.1, 1e-7, 3.5e12, -0.000123456]) {
      const s = fmtNum(x);
      expect(Math.abs(Number(s) - x)).toBeLessThanOrEqual(Math.abs(x) * 5e-4);
      expect(s.replace(/^-/, "").replace(/e.*$/, "").replace(".", "").replace(/^0+/, "").length).toBeLessThanOrEqual(4);
    }
    expect(fmtNum(null)).toBe("—");
  });
});

describe("tensors", () => {
  it("flattens nested values in row-major order", () => {
    expect(flat(view([2, 2], [[1, 2], [3, "inf"]]))).toEqual([1, 2, 3, Infinity]);
    expect(flat(view([100]))).toBeNull();
  });

  it("shortens long tensors and says when only stats came", () => {
    const long = view([20], Array.from({ length: 20 }, (_, i) => i));
    const text = fmtTensor(long, 5);
    expect(text.startsWith("[0, 1, 2, 3, 4")).toBe(true);
    expect(text).toContain("…");
    const s = view([1000]);
    s.stats = { min: -1, max: 2, mean: 0.5, std: 1, norm: 3, nan: 1, inf: 0 };
    expect(fmtTensor(s)).toContain("1 nan");
  });

  it("picks a picture by rank", () => {
    expect(pictureKind(view([], 1))).toBe("number");
    expect(pictureKind(view([4], [1, 2, 3, 4]))).toBe("strip");
    expect(pictureKind(view([2, 2], [[1, 2], [3, 4]]))).toBe("heatmap");
    expect(pictureKind(view([1, 1, 2, 2], [[[[1, 2], [3, 4]]]]))).toBe("maps");
    expect(pictureKind(view([500]))).toBe("stats");
  });

  it("colours are symmetric around zero and white at zero", () => {
    expect(diverging(0, 1)).toBe("rgb(247, 247, 247)");
    const red = diverging(1, 1).match(/\d+/g)!.map(Number);
    const blue = diverging(-1, 1).match(/\d+/g)!.map(Number);
    expect(red[0]).toBeGreaterThan(red[2]);
    expect(blue[2]).toBeGreaterThan(blue[0]);
    expect(diverging(5, 1)).toBe(diverging(1, 1));
  });
});

describe("share links", () => {
  it("round-trips any program, including non-ASCII text", () => {
    const source = "x = torch.ones(3, requires_grad=True)  # größe ∂L/∂x 🙂\nprint(x)";
    expect(fromBase64Url(toBase64Url(source))).toBe(source);
    const hash = encodeView({ source, device: "cpu", pass: 2, step: 7 });
    expect(new URLSearchParams(hash).get("p")).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeView(`#${hash}`)).toEqual({ source, device: "cpu", pass: 2, step: 7 });
  });

  it("ignores malformed hashes", () => {
    expect(decodeView("#nothing=here")).toBeNull();
    expect(decodeView("#p=%%%")).toBeNull();
    expect(decodeView(`#p=${toBase64Url("x")}&s=-4.z`)).toEqual({ source: "x", device: null, pass: 0, step: 0 });
  });
});
