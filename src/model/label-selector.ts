/**
 * PURE: metav1.LabelSelector matching with the Kubernetes semantics (labels.Selector from
 * metav1.LabelSelectorAsSelector): every matchLabels entry and every matchExpressions requirement must
 * hold; In needs the key with one of the values, NotIn holds when the key is absent or its value is not
 * one of them, Exists / DoesNotExist test the key only. An empty selector ({}) matches everything.
 * @kubernetes/client-node has the types only, no matcher. Used for VirtualService nodeSelector (an
 * absent selector: every node) and IPVSAddressPolicy namespaceSelectors.
 */
import type { LabelSelector } from "../api/v1alpha1/index.ts";

export function matchesLabelSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = has ? labels[e.key] : undefined;
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(value ?? "")) return false;
        break;
      case "NotIn":
        if (has && values.includes(value ?? "")) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}
