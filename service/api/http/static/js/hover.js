// Scores on hover: the keypoint nearest the pointer (name and score), else the person whose box it is in.

const REACH_PX = 12; // on screen

export class Hover {
  constructor(canvas, tooltip) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.people = [];
    this.keypointSet = null;
    canvas.addEventListener("mousemove", (event) => this.move(event));
    canvas.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
  }

  // the people now drawn (image pixels) and their keypoint set
  show(people, keypointSet) {
    this.people = people;
    this.keypointSet = keypointSet;
  }

  move(event) {
    const scale = this.canvas.width / this.canvas.clientWidth;
    const x = event.offsetX * scale;
    const y = event.offsetY * scale;
    const text = this.nearestKeypoint(x, y, REACH_PX * scale) || this.personAt(x, y);
    if (!text) {
      this.tooltip.hidden = true;
      return;
    }
    this.tooltip.textContent = text;
    this.tooltip.style.left = `${this.canvas.offsetLeft + event.offsetX + 14}px`;
    this.tooltip.style.top = `${this.canvas.offsetTop + event.offsetY + 14}px`;
    this.tooltip.hidden = false;
  }

  nearestKeypoint(x, y, reach) {
    let best = null;
    let bestDistance = reach;
    this.people.forEach((person, i) => {
      person.keypoints.forEach(([px, py, score], k) => {
        const distance = Math.hypot(px - x, py - y);
        if (person.visible[k] && distance < bestDistance) {
          bestDistance = distance;
          const name = this.keypointSet ? this.keypointSet.names[k] : `keypoint ${k}`;
          best = `${name}: ${score.toFixed(3)} · ${who(person, i)}`;
        }
      });
    });
    return best;
  }

  personAt(x, y) {
    const i = this.people.findIndex(({ bbox: [x1, y1, x2, y2] }) => x >= x1 && x <= x2 && y >= y1 && y <= y2);
    if (i < 0) return null;
    const person = this.people[i];
    return `${who(person, i)}: score ${person.score.toFixed(3)}, box ${person.bbox_score.toFixed(3)}`;
  }
}

function who(person, i) {
  return person.track_id !== undefined ? `track ${person.track_id}` : `person ${i + 1}`;
}
