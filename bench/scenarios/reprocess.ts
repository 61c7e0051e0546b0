// Scenario "reprocess": rebuild the 30 days of the 1 M-event dataset from raw events into a new
// generation (runReprocess, timed alone in a child process). Target: ≥ 100,000 events/s.
import type { Datasets } from '../datasets.ts';
import { atLeast, formatCount, row, type BenchContext, type ScenarioReport } from '../report.ts';

const eventsPerSecondGoal = 100_000;

export async function runReprocessScenario(context: BenchContext, datasets: Datasets): Promise<ScenarioReport> {
  const dataset = await datasets.get(context.scale.reprocessEvents);
  context.log(`reprocess: 30 days of ${formatCount(dataset.events)} events`);
  const result = await datasets.reprocess(dataset);
  const perSecond = result.eventsDone / result.seconds;
  const complete = result.state === 'done' && result.eventsDone === dataset.events;
  return {
    rows: [
      row(`reprocess 30 days @ ${formatCount(dataset.events)}`, `≥ ${formatCount(eventsPerSecondGoal)} events/s`, `${formatCount(perSecond)} events/s`,
        complete ? atLeast(perSecond, eventsPerSecondGoal) : 'error'),
    ],
    notes: [`reprocess: ${formatCount(result.eventsDone)} events rebuilt in ${result.seconds.toFixed(1)} s (job ${result.state})`],
  };
}
