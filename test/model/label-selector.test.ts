/**
 * metav1.LabelSelector matching (model/label-selector.ts) against the Kubernetes semantics
 * (k8s.io/apimachinery labels.Selector from metav1.LabelSelectorAsSelector).
 */
import { describe, expect, it } from "vitest";
import type { LabelSelector } from "../../src/api/v1alpha1/index.ts";
import { matchesLabelSelector } from "../../src/model/label-selector.ts";

type Op = "In" | "NotIn" | "Exists" | "DoesNotExist";
const expr = (key: string, operator: Op, values?: string[]): LabelSelector => ({
  matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
});

describe("matchesLabelSelector", () => {
  const labels = { zone: "a", tier: "edge" };
  const cases: { selector: LabelSelector | undefined; selected: boolean }[] = [
    { selector: undefined, selected: true },
    { selector: {}, selected: true },
    { selector: { matchLabels: {}, matchExpressions: [] }, selected: true },
    { selector: { matchLabels: { zone: "a" } }, selected: true },
    { selector: { matchLabels: { zone: "a", tier: "edge" } }, selected: true },
    { selector: { matchLabels: { zone: "b" } }, selected: false },
    { selector: { matchLabels: { missing: "" } }, selected: false },
    { selector: expr("zone", "In", ["a", "b"]), selected: true },
    { selector: expr("zone", "In", ["b"]), selected: false },
    { selector: expr("gpu", "In", ["x"]), selected: false },
    { selector: expr("zone", "NotIn", ["a"]), selected: false },
    { selector: expr("zone", "NotIn", ["b", "c"]), selected: true },
    { selector: expr("gpu", "NotIn", ["x"]), selected: true },
    { selector: expr("tier", "Exists"), selected: true },
    { selector: expr("gpu", "Exists"), selected: false },
    { selector: expr("tier", "DoesNotExist"), selected: false },
    { selector: expr("gpu", "DoesNotExist"), selected: true },
    {
      selector: {
        matchLabels: { zone: "a" },
        matchExpressions: [{ key: "tier", operator: "In", values: ["core"] }],
      },
      selected: false,
    },
    {
      selector: {
        matchLabels: { zone: "a" },
        matchExpressions: [
          { key: "tier", operator: "In", values: ["edge", "core"] },
          { key: "gpu", operator: "DoesNotExist" },
        ],
      },
      selected: true,
    },
  ];
  it.each(cases)("$selector -> $selected", ({ selector, selected }) => {
    expect(matchesLabelSelector(selector, labels)).toBe(selected);
  });

  it("matches a namespace without labels only by {}, NotIn and DoesNotExist", () => {
    const none = {};
    expect(matchesLabelSelector({}, none)).toBe(true);
    expect(matchesLabelSelector(expr("team", "NotIn", ["a"]), none)).toBe(true);
    expect(matchesLabelSelector(expr("team", "DoesNotExist"), none)).toBe(true);
    expect(matchesLabelSelector(expr("team", "In", ["a"]), none)).toBe(false);
    expect(matchesLabelSelector(expr("team", "Exists"), none)).toBe(false);
    expect(matchesLabelSelector({ matchLabels: { team: "a" } }, none)).toBe(false);
  });

  it("treats an empty value as a value, and never reads inherited properties as labels", () => {
    expect(matchesLabelSelector({ matchLabels: { team: "" } }, { team: "" })).toBe(true);
    expect(matchesLabelSelector(expr("team", "In", [""]), { team: "" })).toBe(true);
    expect(matchesLabelSelector(expr("team", "NotIn", [""]), { team: "" })).toBe(false);
    expect(matchesLabelSelector(expr("toString", "Exists"), {})).toBe(false);
    expect(matchesLabelSelector(expr("constructor", "DoesNotExist"), {})).toBe(true);
  });
});
