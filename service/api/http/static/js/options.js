// The option controls as the API names them (empty fields: the service's defaults).

const value = (id) => document.getElementById(id).value.trim();

function number(id) {
  const text = value(id);
  return text === "" ? null : Number(text);
}

// the pose options of /v1/pose and of a stream's config
export function poseOptions() {
  const options = {
    model: value("model") || null,
    detector: value("detector") || null,
    keypoint_threshold: number("keypoint-threshold"),
    bbox_threshold: number("bbox-threshold"),
    max_people: number("max-people"),
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== null));
}

// the first message of a WebSocket stream (StreamConfig's fields)
export function streamConfig() {
  return {
    options: poseOptions(),
    det_interval: number("det-interval") || 1,
    smooth: document.getElementById("smooth").checked,
    smoothing: { min_cutoff_hz: number("min-cutoff") ?? 1.0, beta: number("beta") ?? 0.05 },
    max_in_flight: 2,
    max_buffered: 1,
  };
}

export function onOptionChange(callback) {
  for (const id of ["model", "detector", "keypoint-threshold", "bbox-threshold", "max-people", "det-interval", "smooth",
    "min-cutoff", "beta"]) {
    document.getElementById(id).addEventListener("change", callback);
  }
}
