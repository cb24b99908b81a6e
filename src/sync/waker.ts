/** Lets a loop sleep until kicked or until a timeout. */
export class Waker {
  #resolve: (() => void) | undefined;
  #pending = false;

  kick(): void {
    this.#pending = true;
    const r = this.#resolve;
    this.#resolve = undefined;
    r?.();
  }

  /** Resolves on the next kick (or at once if one arrived since the last wait), or after `ms`. */
  async wait(ms?: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      let t: NodeJS.Timeout | undefined;
      this.#resolve = () => {
        if (t) clearTimeout(t);
        resolve();
      };
      if (ms !== undefined)
        t = setTimeout(
          () => {
            this.#resolve = undefined;
            resolve();
          },
          Math.max(0, ms),
        );
    });
    this.#pending = false;
  }
}
