// Placeholder until the GCS storage lands (issue 4).
import type { Storage } from "./storage.ts";
export const GcsStorage = {
  open(url: string): Storage {
    throw new TypeError(`Cannot open '${url}': GCS storage is not available yet`);
  },
};
