// Live: the webcam or a video file, streamed over the WebSocket; each answer is drawn on the frame it answers.

import { apiKey } from "./api.js";
import { drawImage, drawPeople } from "./draw.js";
import { clearError, showError } from "./errors.js";
import { streamConfig } from "./options.js";
import { PoseStream } from "./stream.js";

const WINDOW = 2; // frames sent and not yet answered (the stream's max_in_flight): a closed loop, no pile-up
const MAX_FPS = 30; // and only new video frames: a frame is never sent twice where the browser says when one comes
const MAX_WIDTH = 960; // frames wider than this are scaled down before encoding
const JPEG_QUALITY = 0.85;

async function encodeJpeg(bitmap) {
  const scale = Math.min(1, MAX_WIDTH / bitmap.width);
  const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
  return { jpeg: await blob.arrayBuffer(), scale };
}

export class LiveMode {
  // page: {canvas, hint, hover, stats, keypointSets}
  constructor(page) {
    this.page = page;
    this.video = document.getElementById("video");
    this.startButton = document.getElementById("camera-start");
    this.stopButton = document.getElementById("live-stop");
    this.source = null;
    this.running = false;
    this.startButton.addEventListener("click", () => this.startCamera());
    this.stopButton.addEventListener("click", () => this.stop());
    document.getElementById("video-file").addEventListener("change", (event) => {
      if (event.target.files.length) this.startFile(event.target.files[0]);
    });
  }

  async startCamera() {
    this.stop();
    let media;
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } } });
    } catch (error) {
      showError("camera", `${error.name}: ${error.message}`);
      return;
    }
    this.media = media;
    this.video.srcObject = media;
    await this.play("camera");
  }

  async startFile(file) {
    this.stop();
    this.video.srcObject = null;
    this.video.src = URL.createObjectURL(file);
    this.video.loop = true;
    await this.play("file");
  }

  async play(source) {
    try {
      await this.video.play();
    } catch (error) {
      showError("camera", `the video does not play: ${error.message}`);
      return;
    }
    this.source = source;
    this.begin();
  }

  // (re)open the stream with the settings now in the controls
  begin() {
    clearError();
    this.page.stats.reset();
    this.page.hint.hidden = true;
    this.sent = new Map(); // frame id -> {bitmap, scale, at}
    this.nextId = 0;
    this.running = true;
    this.stopButton.disabled = false;
    // a restart closes the old stream and opens this one at once: the old one's late events (its close above all)
    // must not touch this one, so each handler acts only while its own stream is the current one
    const stream = new PoseStream(streamConfig(), apiKey(), {
      onAnswer: (answer) => this.stream === stream && this.answered(answer),
      onError: (code, message) => this.stream === stream && showError(code, message),
      onClose: () => this.stream === stream && this.halt(),
    });
    this.stream = stream;
    this.lastSent = 0;
    this.watchFrames();
    this.timer = setInterval(() => this.pump(), 1000 / MAX_FPS);
  }

  // a new video frame is there to send (requestVideoFrameCallback; without it, any tick may send)
  watchFrames() {
    this.fresh = true;
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    this.frameCallbacks = true;
    const stream = this.stream;
    const onFrame = () => {
      if (!this.running || this.stream !== stream) return;
      this.fresh = true;
      this.video.requestVideoFrameCallback(onFrame);
      this.pump();
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  restart() {
    if (!this.running) return;
    this.halt();
    this.begin();
  }

  async pump() {
    if (!this.running || this.encoding || !this.stream.open || this.sent.size >= WINDOW) return;
    if (this.video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !this.fresh) return;
    if (performance.now() - this.lastSent < 1000 / MAX_FPS) return;
    this.encoding = true;
    this.fresh = !this.frameCallbacks;
    this.lastSent = performance.now();
    try {
      const bitmap = await createImageBitmap(this.video); // the frame as sent: drawn with its answer
      const { jpeg, scale } = await encodeJpeg(bitmap);
      if (!this.running || !this.stream.open) {
        bitmap.close();
        return;
      }
      const id = this.nextId++;
      this.sent.set(id, { bitmap, scale, at: performance.now() });
      this.stream.send(id, performance.now() / 1000, jpeg); // seconds on the page's clock: smoothing's time base
    } finally {
      this.encoding = false;
    }
  }

  answered(answer) {
    for (const id of answer.dropped_frame_ids) this.forget(id);
    if (answer.drops_only) {
      this.page.stats.drops(answer.dropped_frame_ids.length);
      return;
    }
    const frame = this.sent.get(answer.frame_id);
    this.sent.delete(answer.frame_id);
    if (!frame) return;
    const { canvas, hover, stats, keypointSets } = this.page;
    drawImage(canvas, frame.bitmap);
    frame.bitmap.close();
    stats.frame(performance.now() - frame.at, answer.dropped_frame_ids.length);
    if (answer.error) {
      showError(answer.error.code, `frame ${answer.frame_id}: ${answer.error.message}`);
      this.frameError = true;
    } else {
      if (this.frameError) clearError();
      this.frameError = false;
      const people = scaled(answer.people, frame.scale);
      const keypointSet = keypointSets[answer.model.keypoints];
      drawPeople(canvas, people, keypointSet);
      hover.show(people, keypointSet);
      stats.people(people);
      stats.timing(answer.timing_ms);
    }
    this.pump();
  }

  forget(id) {
    const frame = this.sent.get(id);
    if (frame) frame.bitmap.close();
    this.sent.delete(id);
  }

  // the stream ends (closed, failed); the source stays for a restart
  halt() {
    this.running = false;
    clearInterval(this.timer);
    if (this.stream) this.stream.close();
    for (const id of [...(this.sent || new Map()).keys()]) this.forget(id);
  }

  stop() {
    this.halt();
    this.stopButton.disabled = true;
    if (this.media) this.media.getTracks().forEach((track) => track.stop());
    this.media = null;
    this.video.pause();
    this.source = null;
  }
}

// the answer's people in the pixels of the frame as shown (the JPEG sent may have been scaled down)
function scaled(people, scale) {
  if (scale === 1) return people;
  const back = (v) => v / scale;
  return people.map((p) => ({
    ...p,
    bbox: p.bbox.map(back),
    keypoints: p.keypoints.map(([x, y, s]) => [back(x), back(y), s]),
  }));
}
