/**
 * A 429 from the API server is waited out as its Retry-After says (client-go's behaviour), not with the
 * informer's exponential backoff: the two error shapes client-node gives (a failed list: ApiException
 * with headers; a failed watch: an Error with statusCode only).
 */
import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { retryAfterMs } from "../../src/kube/kubernetes-source.ts";

/** A wait of `seconds`, with its up to 20% jitter. */
const about = (seconds: number) => ({
  asymmetricMatch: (ms: unknown) => typeof ms === "number" && ms >= seconds * 1000 && ms <= seconds * 1200,
});

describe("retryAfterMs", () => {
  it("takes a failed list's Retry-After, between 1 and 60 s", () => {
    const throttled = (after?: string) =>
      retryAfterMs(
        new ApiException(429, "Too Many Requests", {}, after === undefined ? {} : { "retry-after": after }),
      );
    expect(throttled("3")).toEqual(about(3));
    expect(throttled("600")).toEqual(about(60));
    expect(throttled("0")).toEqual(about(1));
    expect(throttled()).toEqual(about(1));
    expect(throttled("soon")).toEqual(about(1));
    expect(throttled("3")).not.toEqual(about(1));
  });

  it("waits 1 s after a failed watch's 429 (no headers there)", () => {
    expect(retryAfterMs(Object.assign(new Error("Too Many Requests"), { statusCode: 429 }))).toEqual(
      about(1),
    );
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
