// People on a canvas: boxes, the keypoint set's skeleton and colours (MMPose's, served by /ui/keypoint-sets.json).
// With track ids (live), each person's box, label and links take a stable colour of its id.

const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
const BOX = "rgb(0, 220, 120)"; // the service's render colour

// golden-angle hues: consecutive ids get far-apart colours, and an id keeps its colour
export function trackColor(id) {
  return `hsl(${(id * 137.508) % 360} 85% 55%)`;
}

export function drawImage(canvas, image) {
  if (canvas.width !== image.width || canvas.height !== image.height) {
    canvas.width = image.width;
    canvas.height = image.height;
  }
  canvas.getContext("2d").drawImage(image, 0, 0);
}

export function drawPeople(canvas, people, keypointSet) {
  const ctx = canvas.getContext("2d");
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 320));
  ctx.lineCap = "round";
  for (const person of people) {
    const own = person.track_id !== undefined ? trackColor(person.track_id) : null;
    drawBox(ctx, person, own || BOX, line);
    if (keypointSet) drawSkeleton(ctx, person, keypointSet, own, line);
  }
}

function drawBox(ctx, person, color, line) {
  const [x1, y1, x2, y2] = person.bbox;
  ctx.strokeStyle = color;
  ctx.lineWidth = line;
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  const label = person.track_id !== undefined ? `#${person.track_id} ${person.score.toFixed(2)}` : person.score.toFixed(2);
  ctx.font = `${Math.max(12, line * 6)}px system-ui, sans-serif`;
  const width = ctx.measureText(label).width + line * 4;
  const height = Math.max(12, line * 6) + line * 2;
  ctx.fillStyle = color;
  ctx.fillRect(x1, Math.max(0, y1 - height), width, height);
  ctx.fillStyle = "#000";
  ctx.fillText(label, x1 + line * 2, Math.max(height, y1) - line * 2);
}

function drawSkeleton(ctx, person, keypointSet, own, line) {
  const points = person.keypoints;
  const shown = person.visible;
  keypointSet.skeleton.forEach(([a, b], i) => {
    if (!shown[a] || !shown[b]) return;
    ctx.strokeStyle = own || rgb(keypointSet.link_colors[i]);
    ctx.lineWidth = line;
    ctx.beginPath();
    ctx.moveTo(points[a][0], points[a][1]);
    ctx.lineTo(points[b][0], points[b][1]);
    ctx.stroke();
  });
  points.forEach(([x, y], k) => {
    if (!shown[k]) return;
    ctx.fillStyle = rgb(keypointSet.keypoint_colors[k]);
    ctx.beginPath();
    ctx.arc(x, y, line * 1.5, 0, 2 * Math.PI);
    ctx.fill();
  });
}
