// Kubernetes label selectors (metav1.LabelSelector): matchLabels AND matchExpressions.

/** One matchExpressions requirement. */
export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values: readonly string[];
}

/** A parsed label selector; the empty selector matches everything. */
export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly LabelSelectorRequirement[];
}

/** The selector that matches every object. */
export const MATCH_ALL: LabelSelector = Object.freeze({ matchLabels: {}, matchExpressions: [] });

const OPERATORS = new Set(["In", "NotIn", "Exists", "DoesNotExist"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses a metav1.LabelSelector from an API object (`undefined`/`null` → {@link MATCH_ALL}).
 * Never throws: returns a message naming the bad part instead.
 */
export function parseLabelSelector(value: unknown, field: string): LabelSelector | string {
  if (value === undefined || value === null) return MATCH_ALL;
  if (!isRecord(value)) return `${field} must be an object`;
  for (const key of Object.keys(value)) {
    if (key !== "matchLabels" && key !== "matchExpressions") {
      return `${field}: unknown field "${key}"`;
    }
  }
  const matchLabels: Record<string, string> = {};
  if (value.matchLabels !== undefined && value.matchLabels !== null) {
    if (!isRecord(value.matchLabels)) return `${field}.matchLabels must be an object`;
    for (const [k, v] of Object.entries(value.matchLabels)) {
      if (typeof v !== "string") return `${field}.matchLabels.${k} must be a string`;
      matchLabels[k] = v;
    }
  }
  const matchExpressions: LabelSelectorRequirement[] = [];
  if (value.matchExpressions !== undefined && value.matchExpressions !== null) {
    if (!Array.isArray(value.matchExpressions)) return `${field}.matchExpressions must be a list`;
    for (const [i, raw] of (value.matchExpressions as unknown[]).entries()) {
      const at = `${field}.matchExpressions[${i}]`;
      if (!isRecord(raw)) return `${at} must be an object`;
      const { key, operator, values } = raw;
      if (typeof key !== "string" || key === "") return `${at}.key must be a non-empty string`;
      if (typeof operator !== "string" || !OPERATORS.has(operator)) {
        return `${at}.operator must be one of In, NotIn, Exists, DoesNotExist`;
      }
      const list = values ?? [];
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
        return `${at}.values must be a list of strings`;
      }
      const needsValues = operator === "In" || operator === "NotIn";
      if (needsValues !== list.length > 0) {
        return `${at}.values must be ${needsValues ? "non-empty" : "empty"} for ${operator}`;
      }
      matchExpressions.push({
        key,
        operator: operator as LabelSelectorRequirement["operator"],
        values: list,
      });
    }
  }
  return { matchLabels, matchExpressions };
}

/** True when `labels` satisfy every part of `selector`. */
export function matchesLabelSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels)) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case "In":
        if (value === undefined || !req.values.includes(value)) return false;
        break;
      case "NotIn":
        if (value !== undefined && req.values.includes(value)) return false;
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
