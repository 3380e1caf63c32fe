/**
 * A 429 from the API server is waited out as its Retry-After says (client-go's behaviour), not with the
 * informer's exponential backoff: the two error shapes client-node gives (a failed list: ApiException
 * with headers; a failed watch: an Error with statusCode only).
 */
import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { retryAfterMs } from "../../src/kube/kubernetes-source.ts";

describe("retryAfterMs", () => {
  it("takes a failed list's Retry-After, bounded to 60 s", () => {
    expect(retryAfterMs(new ApiException(429, "Too Many Requests", {}, { "retry-after": "3" }))).toBe(3000);
    expect(retryAfterMs(new ApiException(429, "Too Many Requests", {}, { "retry-after": "600" }))).toBe(
      60_000,
    );
    expect(retryAfterMs(new ApiException(429, "Too Many Requests", {}, {}))).toBe(1000);
    expect(retryAfterMs(new ApiException(429, "Too Many Requests", {}, { "retry-after": "soon" }))).toBe(
      1000,
    );
  });

  it("waits 1 s after a failed watch's 429 (no headers there)", () => {
    expect(retryAfterMs(Object.assign(new Error("Too Many Requests"), { statusCode: 429 }))).toBe(1000);
  });

  it("is undefined for every other error", () => {
    expect(
      retryAfterMs(new ApiException(500, "Internal Server Error", {}, { "retry-after": "1" })),
    ).toBeUndefined();
    expect(retryAfterMs(Object.assign(new Error("Gone"), { statusCode: 410 }))).toBeUndefined();
    expect(retryAfterMs(new Error("ECONNRESET"))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
