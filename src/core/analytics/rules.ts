// The versioned processing logic of analytics: which stored events count. Rollups are stamped
// with `logicVersion`; changing a rule means a new version, and `tally reprocess` rebuilds
// history with it. Rules see only stored, derived fields (raw IPs and user agents are never kept).
import type { TrackedEvent } from '../event.ts';

export interface AnalyticsRules {
  readonly logicVersion: string;
  /** True when the event must not count in any metric (bots found after the fact, referrer spam). */
  isExcluded(event: TrackedEvent): boolean;
}

export interface RuleSet {
  readonly version: number;
  /** Browser names (as derived at collection) that are bots, matched case-insensitively as substrings. */
  readonly botBrowserPatterns: readonly string[];
  /** Referrer sources that are spam, matched exactly (case-insensitive), like Plausible's blocklist. */
  readonly spamSources: readonly string[];
}

export function defineRules(set: RuleSet): AnalyticsRules {
  const botPatterns = set.botBrowserPatterns.map((pattern) => pattern.toLowerCase());
  const spam = new Set(set.spamSources.map((source) => source.toLowerCase()));
  return Object.freeze({
    logicVersion: `analytics@${set.version}`,
    isExcluded(event: TrackedEvent): boolean {
      const browser = event.visit.browser?.toLowerCase();
      if (browser && botPatterns.some((pattern) => browser.includes(pattern))) return true;
      const source = event.visit.source?.toLowerCase();
      return source !== undefined && spam.has(source);
    },
  });
}

/** The rules this build of Tally processes with. Bump `version` with every change. */
export const currentRules: AnalyticsRules = defineRules({
  version: 1,
  botBrowserPatterns: [],
  spamSources: [],
});
