// Automatic "away": after idleMs without input the user shows away, and
// online again at the next input. Only a user who chose "online" goes
// away by themselves: do-not-disturb and a chosen away stay as they are.
// send(show) is called with the show to announce (as an automatic state,
// which the server does not remember).

export const IDLE_MS = 10 * 60 * 1000;

export class IdleWatch {
  constructor({ idleMs = IDLE_MS, now = Date.now, send }) {
    this.idleMs = idleMs;
    this.now = now;
    this.send = send;
    this.chosen = 'online';
    this.auto = false; // away was set by us
    this.last = now();
  }

  // choose records the show the user picked (or the server remembered).
  choose(show) {
    this.chosen = show;
    this.auto = false;
    this.last = this.now();
  }

  activity() {
    this.last = this.now();
    if (this.auto) {
      this.auto = false;
      this.send(this.chosen);
    }
  }

  tick() {
    if (this.auto || this.chosen !== 'online') return;
    if (this.now() - this.last >= this.idleMs) {
      this.auto = true;
      this.send('away');
    }
  }
}
