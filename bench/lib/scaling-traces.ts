// The traces of `npm run bench -- scaling`: every crane CPU trace, NAB's nyc_taxi,
// elb_request_count_8c0756 and the ten realTweets series (bench/data, or ../shared/data).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { craneRoot, nabRoot } from './nab-data.js';

/** Paths of the scaling benchmark's traces, crane first; missing ones are listed in `missing`. */
export function scalingTracePaths(): { paths: string[]; missing: string[] } {
  const paths: string[] = [];
  const missing: string[] = [];
  const crane = craneRoot();
  if (crane)
    for (const f of readdirSync(crane)
      .filter((x) => x.endsWith('.csv'))
      .sort())
      paths.push(join(crane, f));
  else missing.push('traces/crane/*.csv');
  const nab = nabRoot();
  const wanted = ['realKnownCause/nyc_taxi.csv', 'realAWSCloudwatch/elb_request_count_8c0756.csv'];
  for (const w of wanted) {
    const p = nab ? join(nab, 'data', w) : '';
    if (p && existsSync(p)) paths.push(p);
    else missing.push(`nab/data/${w}`);
  }
  const tweets = nab ? join(nab, 'data', 'realTweets') : '';
  if (tweets && existsSync(tweets))
    for (const f of readdirSync(tweets)
      .filter((x) => x.endsWith('.csv'))
      .sort())
      paths.push(join(tweets, f));
  else missing.push('nab/data/realTweets/*.csv');
  return { paths, missing };
}

/** `…/data/nab/data/realTweets/Twitter_volume_AAPL.csv` → `realTweets/Twitter_volume_AAPL.csv`. */
export function traceLabel(path: string): string {
  const parts = path.split('/');
  return parts.slice(-2).join('/');
}

/**
 * The fixed split of the traces: the policy is tuned on the tuning set only and its goals are
 * judged on the evaluation set. Alternate traces of each family go to each set (crane by number,
 * realTweets by name; nyc_taxi tunes, the ELB series evaluates). Never tune on these.
 */
export const EVALUATION_TRACES: readonly string[] = [
  'crane/cpu_1.csv',
  'crane/cpu_4.csv',
  'crane/cpu_6.csv',
  'realAWSCloudwatch/elb_request_count_8c0756.csv',
  'realTweets/Twitter_volume_AMZN.csv',
  'realTweets/Twitter_volume_CVS.csv',
  'realTweets/Twitter_volume_GOOG.csv',
  'realTweets/Twitter_volume_KO.csv',
  'realTweets/Twitter_volume_UPS.csv',
];

/** The set a trace belongs to: `evaluation` when listed in {@link EVALUATION_TRACES}, else `tuning`. */
export function traceSet(path: string): 'tuning' | 'evaluation' {
  return EVALUATION_TRACES.includes(traceLabel(path)) ? 'evaluation' : 'tuning';
}
