// A time series chart over uPlot (loaded as a classic script: the global
// `uPlot`). Series are given as columns: times in seconds, then one array
// per line.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { h } from './dom.ts';

interface UPlotInstance {
  setData(data: (number | null)[][]): void;
  setSize(size: { width: number; height: number }): void;
  destroy(): void;
}
type UPlotCtor = new (opts: unknown, data: (number | null)[][], target: HTMLElement) => UPlotInstance;

const COLORS = ['#2f6fdb', '#2e9d5b', '#d08a11', '#cf3b3b', '#7d4cc4', '#1b9aaa', '#8a93a6', '#c44c8a'];
export const CHART_HEIGHT_PX = 180;
/** Width of the value axis, labels included. */
export const CHART_VALUE_AXIS_PX = 72;

export class Chart {
  readonly el: HTMLDivElement;
  private plot: UPlotInstance | null = null;
  private key = '';

  constructor() {
    this.el = h('div', { class: 'chart' });
  }

  /** Draws the columns; a new title or set of series names makes a new plot. */
  set(title: string, names: string[], columns: (number | null)[][], options: { points?: boolean } = {}): void {
    const ctor = (globalThis as { uPlot?: UPlotCtor }).uPlot;
    if (!ctor) {
      this.el.textContent = 'uPlot did not load';
      return;
    }
    const key = [title, ...names].join('\u0000');
    if (this.plot && key === this.key) {
      this.plot.setData(columns);
      return;
    }
    this.plot?.destroy();
    this.el.replaceChildren();
    this.key = key;
    this.el.setAttribute('data-chart', title);
    const width = Math.max(300, this.el.clientWidth - 12 || 560);
    const series = [{}, ...names.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, points: options.points ? { show: true, size: 5 } : { size: 4 } }))];
    // The value axis is sized for labels such as 3,600,000 (an hour in ms).
    this.plot = new ctor({ title, width, height: CHART_HEIGHT_PX, series, axes: [{}, { size: CHART_VALUE_AXIS_PX }], legend: { live: false } }, columns, this.el);
  }

  dispose(): void {
    this.plot?.destroy();
    this.plot = null;
  }
}
