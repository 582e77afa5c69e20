"""Request options and response shapes of the HTTP API (the OpenAPI schema is generated from them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.requests.options import PoseOptions
from service.wire.formats import OutputFormat


class HttpPoseOptions(PoseOptions):
    """The pose options plus how HTTP presents the answer (after merging query and body)."""

    format: OutputFormat = Field(OutputFormat.NATIVE, description="native, or coco (COCO results-file entries).")
    image_id: int = Field(0, ge=0, le=2**53, description="image_id written into COCO entries.")
    render: bool = Field(False, description="Answer image/jpeg with boxes and skeletons drawn.")


class PoseQuery(HttpPoseOptions):
    """Options as query parameters (every input form accepts them)."""

    boxes: str | None = Field(  # type: ignore[assignment]  # JSON text in a query: parsed when merged with the body
        None,
        max_length=4000,  # URLs stay well under HTTP parsers' limits; longer lists go in a form field or JSON body
        description="Person boxes as JSON, e.g. [[10,20,200,400]]: skips the detector. Pixels of the original "
        "image. Longer lists: send them as a form field or in the JSON body.",
    )

    @field_validator("boxes", mode="before")
    @classmethod
    def _boxes_from_json(cls, value: Any) -> Any:
        return value  # stays JSON text here; parsed when merged with the body (HttpPoseOptions)


class PoseJsonBody(HttpPoseOptions):
    """``application/json`` body: the image as base64 plus any option."""

    image: str = Field(description="The image file (JPEG, PNG, WebP, BMP, TIFF), base64-encoded.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_image, queue_full.")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ImageInfo(BaseModel):
    width: int
    height: int


class ModelUsed(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    pose: str
    detector: str | None = Field(description="None when boxes were given.")
    keypoints: str = Field(description="Keypoint set, e.g. coco17 or wholebody133.")
    weights: str = Field(description="official | synthetic | custom (synthetic if any model used is).")


class Person(BaseModel):
    bbox: list[float] = Field(description="x1, y1, x2, y2 in original image pixels.")
    bbox_score: float
    score: float = Field(description="bbox_score x mean score of the keypoints above 0.2 (MMPose's rescoring).")
    keypoints: list[list[float]] = Field(description="[x, y, score] per keypoint, in the keypoint set's order.")
    visible: list[bool] = Field(description="score > keypoint_threshold, per keypoint.")


class PoseResponse(BaseModel):
    image: ImageInfo
    model: ModelUsed
    people: list[Person]
    timing_ms: dict[str, float] = Field(description="decode, detect, pose, total (milliseconds).")


class CocoResult(BaseModel):
    image_id: int
    category_id: int
    keypoints: list[float] = Field(description="Flat x, y, score triplets.")
    score: float
    bbox: list[float] = Field(description="x, y, width, height.")


class BatchItemError(BaseModel):
    error: ErrorDetail


class BatchResponse(BaseModel):
    results: list[PoseResponse | list[CocoResult] | BatchItemError] = Field(
        description="One entry per image, in order: a result, or the error of that image."
    )


class BatchingInfo(BaseModel):
    max_batch_size: int
    max_queue_delay_ms: float
    preferred_batch_sizes: list[int]
    max_queue_size: int
    queued: int


class PublishedFigure(BaseModel):
    """One published accuracy row of the model (OpenMMLab's model zoo); null where the docs give none."""

    dataset: str = Field(description="coco, humanart, coco-wholebody, crowdpose, mpii, body8, coco-person, ...")
    dataset_name: str
    metric: str = Field(description="AP, mAP, PCKh@0.5, PCK@0.1, PCK@0.2 or NME.")
    value: float = Field(description="AP, AR, PCK and AUC as fractions (74.9 published is 0.749); NME as published.")
    ar: float | None
    boxes: str | None = Field(description="gt (annotation boxes) or detector; null where the docs do not say.")
    detector_ap: float | None = Field(description="Person AP of the detector the row used.")
    detector: str | None
    flip_test: bool | None
    details: dict[str, float] = Field(description="The row's other numbers: part APs, AP easy/medium/hard, AUC, EPE.")
    source: str = Field(description="The section of the model zoo notes the row comes from.")


class ModelInfo(BaseModel):
    name: str
    task: str
    family: str
    keypoints: str | None
    num_keypoints: int | None
    input_size: list[int] = Field(description="width, height")
    weights: str
    version: int
    backend: str = Field(description="The runtime that runs the model: onnxruntime | openvino.")
    precision: str = Field(description="The precision that really runs: fp32 (exact) | bf16 | fp16.")
    precision_warning: str | None = Field(description="Set when precision auto found no reduced precision (fp32 runs).")
    provider: str = Field(description="The ONNX Runtime provider the session really uses, or OpenVINO:CPU.")
    device: str
    device_warning: str | None = Field(description="Set when the model runs on CPU although a GPU was asked for.")
    instances: int
    threads_per_instance: int
    static_batch: int | None
    default: bool
    published: list[PublishedFigure] = Field(
        description="Published accuracy of this model (python -m service.eval measures it beside them)."
    )
    batching: BatchingInfo


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: str
