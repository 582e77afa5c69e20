// Image: a file (picker or drag-and-drop) -> POST /v1/pose -> the image with its people, the JSON, the timing.

import { estimate } from "./api.js";
import { drawImage, drawPeople } from "./draw.js";
import { clearError, showError } from "./errors.js";
import { poseOptions } from "./options.js";

export class ImageMode {
  // page: {canvas, stage, hint, json, hover, stats, keypointSets, beforeRun}
  constructor(page) {
    this.page = page;
    this.file = null;
    document.getElementById("upload").addEventListener("change", (event) => {
      if (event.target.files.length) this.run(event.target.files[0]);
    });
    const stage = page.stage;
    stage.addEventListener("dragover", (event) => {
      event.preventDefault();
      stage.classList.add("dragging");
    });
    stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
    stage.addEventListener("drop", (event) => {
      event.preventDefault();
      stage.classList.remove("dragging");
      if (event.dataTransfer.files.length) this.run(event.dataTransfer.files[0]);
    });
  }

  // the last file again (an option changed)
  rerun() {
    if (this.file) this.run(this.file);
  }

  async run(file) {
    const { canvas, hint, json, hover, stats, keypointSets } = this.page;
    this.page.beforeRun();
    this.file = file;
    clearError();
    stats.reset();
    let image;
    try {
      image = await createImageBitmap(file);
    } catch {
      showError("invalid_image", `the browser cannot show ${file.name}`);
      return;
    }
    delete canvas.dataset.people;
    drawImage(canvas, image);
    image.close();
    hint.hidden = true;
    const started = performance.now();
    let result;
    try {
      result = await estimate(file, poseOptions());
    } catch (error) {
      showError(error.code, error.message);
      stats.people([]);
      hover.show([], null);
      return;
    }
    const keypointSet = keypointSets[result.model.keypoints];
    drawPeople(canvas, result.people, keypointSet);
    hover.show(result.people, keypointSet);
    stats.people(result.people);
    stats.timing(result.timing_ms, performance.now() - started);
    json.textContent = JSON.stringify(result, null, 1);
    canvas.dataset.people = String(result.people.length); // drawn: what a test waits for
  }
}
