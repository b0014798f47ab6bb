import { describe, expect, it } from "vitest";
import { decodeRunLink, decodeView, encodeView } from "../src/share";

describe("links", () => {
  it("reads a kept run's id and nothing else", () => {
    expect(decodeRunLink("#r=0123abcd")).toBe("0123abcd");
    expect(decodeRunLink("r=ff")).toBe("ff");
    expect(decodeRunLink("#r=../../etc")).toBeNull();
    expect(decodeRunLink("#r=<img>")).toBeNull();
    expect(decodeRunLink("#p=abc")).toBeNull();
  });

  it("round-trips a shared program", () => {
    const view = { source: "x = 1 # ünïcode\n", device: "cpu", pass: 2, step: 3 };
    expect(decodeView(encodeView(view))).toEqual(view);
  });
});
