/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { decodeRun } from "../src/compact";
// The pair tests/test_compact.py writes with the engine's own encoder (and keeps current).
import encoded from "./fixtures/decoder_run.clr.b64?raw";
import json from "./fixtures/decoder_run.json?raw";

function bytesOf(base64: string): ArrayBuffer {
  const text = atob(base64.trim());
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes.buffer;
}

describe("the compact Run, read by the page", () => {
  it("is the JSON Run it carries, value for value", () => {
    expect(decodeRun(bytesOf(encoded))).toEqual(JSON.parse(json));
  });

  it("refuses what is not one", () => {
    expect(() => decodeRun(new TextEncoder().encode('{"id": "x"}').buffer)).toThrow(/CLR1/);
  });
});
