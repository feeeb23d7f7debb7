import { SpiffeErrorCode, invalid, quote } from "./errors";

/** A workload or entry selector, e.g. `{ type: "k8s", value: "ns:default" }`. */
export interface Selector {
  /** Attestor family, e.g. `unix` or `k8s`. */
  type: string;
  /** Key and value inside the family, e.g. `ns:default`; may contain colons. */
  value: string;
}

/** Selector types whose keys {@link validateSelector} knows and checks. */
export const KNOWN_SELECTOR_TYPES: readonly string[] = Object.freeze(["unix", "k8s"]);

/** Options of {@link validateSelector}. */
export interface ValidateSelectorOptions {
  /**
   * Types accepted; default {@link KNOWN_SELECTOR_TYPES}. Types other than `unix` and `k8s`
   * only get the generic shape checks.
   */
  allowedTypes?: readonly string[];
}

const SELECTOR_TYPE = /^[a-z][a-z0-9_-]*$/;
// Control characters never belong in a selector (they would break logs and config files).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const MAX_UINT32 = 4294967295;
const DNS1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN_PART = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function isDns1123Subdomain(s: string): boolean {
  return (
    s.length > 0 && s.length <= 253 && s.split(".").every((p) => DNS1123_SUBDOMAIN_PART.test(p))
  );
}

function isLabelKey(s: string): boolean {
  const slash = s.indexOf("/");
  if (slash < 0) return LABEL_NAME.test(s);
  return isDns1123Subdomain(s.slice(0, slash)) && LABEL_NAME.test(s.slice(slash + 1));
}

/** A check of the part after `<key>:`; returns a reason when the value is bad. */
type ValueCheck = (v: string) => string | undefined;

const uint32: ValueCheck = (v) =>
  /^(0|[1-9][0-9]*)$/.test(v) && Number(v) <= MAX_UINT32
    ? undefined
    : "must be a decimal integer from 0 to 4294967295";
const count: ValueCheck = (v) =>
  /^(0|[1-9][0-9]{0,5})$/.test(v) ? undefined : "must be a non-negative decimal integer";
const name: ValueCheck = (v) =>
  v.length > 0 && !/[\s:]/.test(v)
    ? undefined
    : "must be a non-empty name without spaces or colons";
const absPath: ValueCheck = (v) => (v.startsWith("/") ? undefined : "must be an absolute path");
const sha256: ValueCheck = (v) =>
  SHA256_HEX.test(v) ? undefined : "must be 64 lowercase hexadecimal digits";
const dnsLabel: ValueCheck = (v) =>
  DNS1123_LABEL.test(v) ? undefined : "must be a DNS-1123 label (lowercase a-z, 0-9, -, max 63)";
const dnsSubdomain: ValueCheck = (v) =>
  isDns1123Subdomain(v)
    ? undefined
    : "must be a DNS-1123 subdomain (lowercase a-z, 0-9, -, ., max 253)";
const uuid: ValueCheck = (v) => (UUID.test(v) ? undefined : "must be a lowercase UUID");
const image: ValueCheck = (v) =>
  v.length > 0 && !/\s/.test(v) ? undefined : "must be a non-empty image reference without spaces";
const podLabel: ValueCheck = (v) => {
  const colon = v.indexOf(":");
  if (colon < 0) return 'must be "<key>:<value>"';
  if (!isLabelKey(v.slice(0, colon))) {
    return `has invalid label key ${quote(v.slice(0, colon))}`;
  }
  if (!LABEL_VALUE.test(v.slice(colon + 1))) {
    return `has invalid label value ${quote(v.slice(colon + 1))}`;
  }
  return undefined;
};
const owner =
  (second: ValueCheck, what: string): ValueCheck =>
  (v) => {
    const colon = v.indexOf(":");
    if (colon < 0) return `must be "<Kind>:<${what}>"`;
    if (!KIND.test(v.slice(0, colon))) {
      return `has invalid owner kind ${quote(v.slice(0, colon))} (e.g. ReplicaSet)`;
    }
    const reason = second(v.slice(colon + 1));
    return reason === undefined ? undefined : `owner ${what} ${reason}`;
  };

/** Value checks per known selector type and key (as SPIRE's unix and k8s attestors name them). */
const KNOWN_KEYS: Readonly<Record<string, Readonly<Record<string, ValueCheck>>>> = {
  unix: {
    uid: uint32,
    gid: uint32,
    user: name,
    group: name,
    supplementary_gid: uint32,
    path: absPath,
    sha256,
  },
  k8s: {
    ns: dnsLabel,
    sa: dnsSubdomain,
    "node-name": dnsSubdomain,
    "pod-uid": uuid,
    "pod-name": dnsSubdomain,
    "pod-label": podLabel,
    "pod-owner": owner(dnsSubdomain, "name"),
    "pod-owner-uid": owner(uuid, "uid"),
    "pod-image": image,
    "pod-image-count": count,
    "pod-init-image": image,
    "pod-init-image-count": count,
    "container-name": dnsLabel,
    "container-image": image,
  },
};

/**
 * Parses `type:value` (e.g. `k8s:pod-uid:123`): the type is the text before the first colon,
 * the value is the rest and may contain colons. Only the shape is checked; use
 * {@link validateSelector} for the per-key rules.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.selector.invalid` when there is no colon or
 *   the type or value is empty.
 */
export function parseSelector(text: string): Selector {
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw invalid(
      SpiffeErrorCode.selectorInvalid,
      "format",
      `invalid selector ${quote(text)}: expected "<type>:<value>"`,
    );
  }
  const sel = { type: text.slice(0, colon), value: text.slice(colon + 1) };
  checkShape(sel);
  return sel;
}

/** Formats a selector as `type:value`, the inverse of {@link parseSelector}. */
export function formatSelector(sel: Selector): string {
  return `${sel.type}:${sel.value}`;
}

/**
 * Returns the canonical string key of a selector (`type:value`), suitable for sets and maps.
 * Two selectors are equal exactly when their keys are equal.
 */
export function selectorKey(sel: Selector): string {
  return formatSelector(sel);
}

function checkShape(sel: Selector): void {
  const text = formatSelector(sel);
  const fail = (rule: string, reason: string) =>
    invalid(SpiffeErrorCode.selectorInvalid, rule, `invalid selector ${quote(text)}: ${reason}`, {
      type: sel.type,
    });
  if (!SELECTOR_TYPE.test(sel.type)) {
    throw fail("type", "type must be lowercase letters, digits, '_' or '-' (e.g. \"k8s\")");
  }
  if (sel.value === "") {
    throw fail("value", "value is empty");
  }
  if (CONTROL_CHARS.test(sel.value)) {
    throw fail("value", "value contains a control character");
  }
}

/**
 * Validates a selector: generic shape, type in `options.allowedTypes` (default
 * {@link KNOWN_SELECTOR_TYPES}), and for `unix` and `k8s` a known key with a well-formed
 * value (`unix:uid:<n>` numeric, `unix:path:<abs>`, `unix:sha256:<64 hex>`,
 * `k8s:ns:<DNS label>`, `k8s:pod-label:<key>:<value>`, `k8s:pod-owner:<Kind>:<name>`, …).
 *
 * @throws MeshidError `invalid_argument` / `spiffe.selector.unknown_type` for a type that is not
 *   allowed, or `spiffe.selector.invalid` (`details.rule`: `type`, `value`, `key`) otherwise.
 */
export function validateSelector(sel: Selector, options: ValidateSelectorOptions = {}): void {
  checkShape(sel);
  const text = formatSelector(sel);
  const allowed = options.allowedTypes ?? KNOWN_SELECTOR_TYPES;
  if (!allowed.includes(sel.type)) {
    throw invalid(
      SpiffeErrorCode.selectorUnknownType,
      "unknown-type",
      `invalid selector ${quote(text)}: type ${quote(sel.type)} is not one of ${allowed
        .map((t) => quote(t))
        .join(", ")}`,
      { type: sel.type },
    );
  }
  const keys = KNOWN_KEYS[sel.type];
  if (keys === undefined) return;
  const colon = sel.value.indexOf(":");
  const key = colon < 0 ? sel.value : sel.value.slice(0, colon);
  const check = Object.hasOwn(keys, key) ? keys[key] : undefined;
  if (check === undefined) {
    throw invalid(
      SpiffeErrorCode.selectorInvalid,
      "key",
      `invalid selector ${quote(text)}: unknown ${sel.type} selector key ${quote(key)} (known: ${Object.keys(
        keys,
      ).join(", ")})`,
      { type: sel.type },
    );
  }
  if (colon < 0) {
    throw invalid(
      SpiffeErrorCode.selectorInvalid,
      "value",
      `invalid selector ${quote(text)}: expected "${sel.type}:${key}:<value>"`,
      { type: sel.type, key },
    );
  }
  const reason = check(sel.value.slice(colon + 1));
  if (reason !== undefined) {
    throw invalid(
      SpiffeErrorCode.selectorInvalid,
      "value",
      `invalid selector ${quote(text)}: ${sel.type}:${key} value ${reason}`,
      { type: sel.type, key },
    );
  }
}

/**
 * Reports whether a registration entry's selectors match a workload's: every entry selector is
 * among the workload's (subset). An entry with no selectors never matches.
 */
export function selectorsMatch(
  entrySelectors: readonly Selector[],
  workloadSelectors: readonly Selector[],
): boolean {
  if (entrySelectors.length === 0) return false;
  const have = new Set(workloadSelectors.map(selectorKey));
  return entrySelectors.every((s) => have.has(selectorKey(s)));
}

/**
 * Returns the selectors deduplicated and sorted by {@link selectorKey} (code-unit order), as new
 * objects; the canonical form to store and compare selector sets.
 */
export function normalizeSelectors(selectors: readonly Selector[]): Selector[] {
  const byKey = new Map<string, Selector>();
  for (const s of selectors) {
    byKey.set(selectorKey(s), { type: s.type, value: s.value });
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
}
