// The playground: the service's state and models, the two modes (image, live), the tabs.

import { getJson } from "./api.js";
import { clearError, showError } from "./errors.js";
import { Hover } from "./hover.js";
import { ImageMode } from "./image-mode.js";
import { LiveMode } from "./live-mode.js";
import { onOptionChange } from "./options.js";
import { Stats } from "./stats.js";

const $ = (id) => document.getElementById(id);

function fill(select, models) {
  select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.keypoints || m.family}, ${m.weights})`,
    m.name, m.default, m.default)));
}

async function loadModels() {
  const status = $("service-status");
  try {
    const { models } = await getJson("/v1/models");
    fill($("model"), models.filter((m) => m.task === "pose"));
    fill($("detector"), models.filter((m) => m.task === "detect"));
    const synthetic = models.some((m) => m.weights === "synthetic");
    status.textContent = synthetic ? "serving synthetic weights: keypoints are meaningless" : "serving";
    status.className = synthetic ? "status warn" : "status ready";
    clearError();
  } catch (error) {
    status.textContent = error.code === "unauthorized" ? "needs an API key" : "not available";
    status.className = "status warn";
    showError(error.code, error.message);
  }
}

function tabs(image, live) {
  const select = (name) => {
    for (const other of ["image", "live"]) {
      $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
      $(`panel-${other}`).hidden = other !== name;
    }
    if (name === "image") live.stop();
  };
  $("tab-image").addEventListener("click", () => select("image"));
  $("tab-live").addEventListener("click", () => select("live"));
}

async function boot() {
  const page = {
    canvas: $("canvas"),
    stage: $("stage"),
    hint: $("hint"),
    json: $("json"),
    stats: new Stats(),
    hover: new Hover($("canvas"), $("tooltip")),
    keypointSets: await getJson("/ui/keypoint-sets.json"),
  };
  const live = new LiveMode(page);
  const image = new ImageMode({ ...page, beforeRun: () => live.stop() });
  tabs(image, live);
  onOptionChange(() => (live.running ? live.restart() : image.rerun()));
  $("api-key").addEventListener("change", loadModels);
  await loadModels();
  document.body.dataset.ready = "true"; // models listed, handlers bound: what a test waits for
}

boot().catch((error) => showError(error.code || "unreachable", error.message));
