// One banner for every error the page meets, in words a person can act on, with the service's code and message.

const ADVICE = {
  queue_full: "The service is busy: its queues are full. Retry in a moment.",
  too_many_streams: "Too many streams are open on the service (POSE_MAX_STREAMS). Stop one, or retry later.",
  not_ready: "The service is still loading and warming up its models. Retry in a few seconds.",
  shutting_down: "The service is shutting down. Reload the page to reach another instance.",
  unauthorized: "Missing or wrong API key: type the service's key in the API key field.",
  forbidden: "This page's origin may not open streams on the service (POSE_CORS_ORIGINS).",
  stream_idle: "The stream sent no frame for too long and was closed.",
  deadline_exceeded: "The service took too long to answer (deadline exceeded).",
  invalid_image: "The service could not read this image.",
  unsupported_media_type: "The service does not read this file type (JPEG, PNG, WebP, BMP).",
  too_large: "The image is too large for the service.",
  invalid_options: "An option is out of range.",
  unknown_model: "The service does not serve this model.",
  handshake: "The stream was refused: check the API key, or the service is unreachable.",
  unreachable: "The service does not answer.",
  camera: "The camera could not be opened.",
};

const banner = () => document.getElementById("error");

export function showError(code, message) {
  const element = banner();
  element.replaceChildren();
  const advice = document.createElement("strong");
  advice.textContent = ADVICE[code] || "Something went wrong.";
  const detail = document.createElement("span");
  const codeText = document.createElement("code");
  codeText.textContent = code;
  detail.append(" ", codeText, `: ${message}`);
  element.append(advice, detail);
  element.dataset.code = code;
  element.hidden = false;
}

export function clearError() {
  banner().hidden = true;
  delete banner().dataset.code;
}
