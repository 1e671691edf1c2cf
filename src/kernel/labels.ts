/**
 * Kubernetes-style label selectors (`tier=web,env!=prod,team,!legacy,zone in (a,b)`), parsed
 * once at the boundary and applied by the stores.
 */

/** One requirement of a selector. */
export type LabelRequirement =
  | { readonly key: string; readonly op: "=" | "!="; readonly value: string }
  | { readonly key: string; readonly op: "in" | "notin"; readonly values: readonly string[] }
  | { readonly key: string; readonly op: "exists" | "!exists" };

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Thrown when a label selector cannot be parsed; the message names the offending part. */
export class LabelSelectorError extends Error {
  override readonly name = "LabelSelectorError";
  readonly code = "DV_LABEL_SELECTOR";

  constructor(message: string) {
    super(message);
  }
}

/** Splits on commas that are not inside parentheses. */
function splitTop(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function checkKey(key: string, part: string): string {
  if (!KEY.test(key)) throw new LabelSelectorError(`"${part}": "${key}" is not a valid label key`);
  return key;
}

function checkValue(value: string, part: string): string {
  if (!VALUE.test(value))
    throw new LabelSelectorError(`"${part}": "${value}" is not a valid label value`);
  return value;
}

/**
 * Parses a label selector.
 *
 * @throws {LabelSelectorError} naming the requirement that is not valid.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  return splitTop(selector).map((part): LabelRequirement => {
    const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(part);
    if (set) {
      const values = (set[3] ?? "").split(",").map((v) => checkValue(v.trim(), part));
      return { key: checkKey(set[1] ?? "", part), op: set[2] === "in" ? "in" : "notin", values };
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (cmp) {
      return {
        key: checkKey(cmp[1] ?? "", part),
        op: cmp[2] === "!=" ? "!=" : "=",
        value: checkValue(cmp[3] ?? "", part),
      };
    }
    if (part.startsWith("!")) return { key: checkKey(part.slice(1).trim(), part), op: "!exists" };
    return { key: checkKey(part, part), op: "exists" };
  });
}

/** True when `labels` satisfy every requirement (used by in-memory fakes and tests). */
export function matchesLabels(
  labels: Readonly<Record<string, string>>,
  requirements: readonly LabelRequirement[],
): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case "=":
        return value === r.value;
      case "!=":
        return value !== r.value;
      case "in":
        return has && r.values.includes(value ?? "");
      case "notin":
        return !has || !r.values.includes(value ?? "");
      case "exists":
        return has;
      case "!exists":
        return !has;
    }
  });
}
