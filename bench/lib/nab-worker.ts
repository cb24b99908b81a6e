// Worker thread for bench/nab.ts: scores the files it is given and posts the results back.
import { parentPort, workerData } from 'node:worker_threads';
import { detectSeries } from './nab-detect.js';

interface Job {
  files: { name: string; timestamps: number[]; values: number[] }[];
}

const job = workerData as Job;
const out = job.files.map((f) => ({ name: f.name, ...detectSeries(f.timestamps, f.values) }));
parentPort?.postMessage(out);
