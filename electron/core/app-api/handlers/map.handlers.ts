import type { mapCalls } from '../../../common/contract/map.js';
import type { HandlerGroup } from '../app-api.js';

export const mapHandlers: HandlerGroup<keyof typeof mapCalls> = {
  mapGroups: (input, { core }) => ({ groups: core.map.groups(input.imageIds, input.colourBy) }),
  mapPoints: (input, { core }) => core.map.layout(input),
  mapStart: (input, { core, jobs }) => {
    const job = jobs.start('map', async (control) => {
      const layout = await core.map.layout(input, control);
      // The job's result stays small (it travels in every job event); the points are fetched once by id.
      return { status: 'success', result: { mapId: core.map.keep(layout), points: layout.imageIds.length, source: layout.source } };
    });
    return { jobId: job.id };
  },
  mapResult: (input, { core }) => core.map.result(input.mapId),
};
