from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BGR8: _ClassVar[PixelFormat]
    RGB8: _ClassVar[PixelFormat]
BGR8: PixelFormat
RGB8: PixelFormat

class Image(_message.Message):
    __slots__ = ("encoded", "raw")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    raw: RawImage
    def __init__(self, encoded: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ("pixels", "width", "height", "format")
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    pixels: bytes
    width: int
    height: int
    format: PixelFormat
    def __init__(self, pixels: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[PixelFormat, str]] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class Options(_message.Message):
    __slots__ = ("model", "detector", "boxes", "max_people", "bbox_threshold", "keypoint_threshold", "flip_test")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    MAX_PEOPLE_FIELD_NUMBER: _ClassVar[int]
    BBOX_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    KEYPOINT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FLIP_TEST_FIELD_NUMBER: _ClassVar[int]
    model: str
    detector: str
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    max_people: int
    bbox_threshold: float
    keypoint_threshold: float
    flip_test: bool
    def __init__(self, model: _Optional[str] = ..., detector: _Optional[str] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ..., max_people: _Optional[int] = ..., bbox_threshold: _Optional[float] = ..., keypoint_threshold: _Optional[float] = ..., flip_test: _Optional[bool] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("image", "options")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    image: Image
    options: Options
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., options: _Optional[_Union[Options, _Mapping]] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("x", "y", "score", "visible")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    score: float
    visible: bool
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., score: _Optional[float] = ..., visible: _Optional[bool] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("bbox", "bbox_score", "score", "keypoints", "track_id")
    BBOX_FIELD_NUMBER: _ClassVar[int]
    BBOX_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    bbox: Box
    bbox_score: float
    score: float
    keypoints: _containers.RepeatedCompositeFieldContainer[Keypoint]
    track_id: int
    def __init__(self, bbox: _Optional[_Union[Box, _Mapping]] = ..., bbox_score: _Optional[float] = ..., score: _Optional[float] = ..., keypoints: _Optional[_Iterable[_Union[Keypoint, _Mapping]]] = ..., track_id: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("pose", "detector", "keypoints", "weights")
    POSE_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    pose: str
    detector: str
    keypoints: str
    weights: str
    def __init__(self, pose: _Optional[str] = ..., detector: _Optional[str] = ..., keypoints: _Optional[str] = ..., weights: _Optional[str] = ...) -> None: ...

class EstimateResponse(_message.Message):
    __slots__ = ("width", "height", "model", "people", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    model: ModelInfo
    people: _containers.RepeatedCompositeFieldContainer[Person]
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., people: _Optional[_Iterable[_Union[Person, _Mapping]]] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Batching(_message.Message):
    __slots__ = ("max_batch_size", "max_queue_delay_ms", "preferred_batch_sizes", "max_queue_size", "queued")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_queue_delay_ms: float
    preferred_batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    max_queue_size: int
    queued: int
    def __init__(self, max_batch_size: _Optional[int] = ..., max_queue_delay_ms: _Optional[float] = ..., preferred_batch_sizes: _Optional[_Iterable[int]] = ..., max_queue_size: _Optional[int] = ..., queued: _Optional[int] = ...) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("name", "task", "family", "keypoints", "num_keypoints", "input_width", "input_height", "weights", "version", "provider", "device", "device_warning", "instances", "threads_per_instance", "static_batch", "default", "batching", "backend", "precision", "precision_warning")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    NUM_KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_WARNING_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    STATIC_BATCH_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_WARNING_FIELD_NUMBER: _ClassVar[int]
    name: str
    task: str
    family: str
    keypoints: str
    num_keypoints: int
    input_width: int
    input_height: int
    weights: str
    version: int
    provider: str
    device: str
    device_warning: str
    instances: int
    threads_per_instance: int
    static_batch: int
    default: bool
    batching: Batching
    backend: str
    precision: str
    precision_warning: str
    def __init__(self, name: _Optional[str] = ..., task: _Optional[str] = ..., family: _Optional[str] = ..., keypoints: _Optional[str] = ..., num_keypoints: _Optional[int] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ..., weights: _Optional[str] = ..., version: _Optional[int] = ..., provider: _Optional[str] = ..., device: _Optional[str] = ..., device_warning: _Optional[str] = ..., instances: _Optional[int] = ..., threads_per_instance: _Optional[int] = ..., static_batch: _Optional[int] = ..., default: _Optional[bool] = ..., batching: _Optional[_Union[Batching, _Mapping]] = ..., backend: _Optional[str] = ..., precision: _Optional[str] = ..., precision_warning: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDescription]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDescription, _Mapping]]] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    frame: Frame
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("options", "det_interval", "max_in_flight", "smooth", "max_buffered", "tracker", "smoothing")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DET_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SMOOTH_FIELD_NUMBER: _ClassVar[int]
    MAX_BUFFERED_FIELD_NUMBER: _ClassVar[int]
    TRACKER_FIELD_NUMBER: _ClassVar[int]
    SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    options: Options
    det_interval: int
    max_in_flight: int
    smooth: bool
    max_buffered: int
    tracker: TrackerConfig
    smoothing: SmoothingConfig
    def __init__(self, options: _Optional[_Union[Options, _Mapping]] = ..., det_interval: _Optional[int] = ..., max_in_flight: _Optional[int] = ..., smooth: _Optional[bool] = ..., max_buffered: _Optional[int] = ..., tracker: _Optional[_Union[TrackerConfig, _Mapping]] = ..., smoothing: _Optional[_Union[SmoothingConfig, _Mapping]] = ...) -> None: ...

class TrackerConfig(_message.Message):
    __slots__ = ("det_nms_thr", "pose_kpt_thr", "pose_min_keypoints", "pose_bbox_scale", "pose_nms_thr", "track_oks_thr", "track_iou_thr", "track_max_missing")
    DET_NMS_THR_FIELD_NUMBER: _ClassVar[int]
    POSE_KPT_THR_FIELD_NUMBER: _ClassVar[int]
    POSE_MIN_KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    POSE_BBOX_SCALE_FIELD_NUMBER: _ClassVar[int]
    POSE_NMS_THR_FIELD_NUMBER: _ClassVar[int]
    TRACK_OKS_THR_FIELD_NUMBER: _ClassVar[int]
    TRACK_IOU_THR_FIELD_NUMBER: _ClassVar[int]
    TRACK_MAX_MISSING_FIELD_NUMBER: _ClassVar[int]
    det_nms_thr: float
    pose_kpt_thr: float
    pose_min_keypoints: int
    pose_bbox_scale: float
    pose_nms_thr: float
    track_oks_thr: float
    track_iou_thr: float
    track_max_missing: int
    def __init__(self, det_nms_thr: _Optional[float] = ..., pose_kpt_thr: _Optional[float] = ..., pose_min_keypoints: _Optional[int] = ..., pose_bbox_scale: _Optional[float] = ..., pose_nms_thr: _Optional[float] = ..., track_oks_thr: _Optional[float] = ..., track_iou_thr: _Optional[float] = ..., track_max_missing: _Optional[int] = ...) -> None: ...

class SmoothingConfig(_message.Message):
    __slots__ = ("min_cutoff_hz", "beta", "d_cutoff_hz")
    MIN_CUTOFF_HZ_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    D_CUTOFF_HZ_FIELD_NUMBER: _ClassVar[int]
    min_cutoff_hz: float
    beta: float
    d_cutoff_hz: float
    def __init__(self, min_cutoff_hz: _Optional[float] = ..., beta: _Optional[float] = ..., d_cutoff_hz: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("frame_id", "timestamp", "image")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    timestamp: float
    image: Image
    def __init__(self, frame_id: _Optional[int] = ..., timestamp: _Optional[float] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("frame_id", "people", "dropped_frame_ids", "detected", "error", "width", "height", "model", "timing_ms", "drops_only")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FRAME_IDS_FIELD_NUMBER: _ClassVar[int]
    DETECTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    DROPS_ONLY_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    people: _containers.RepeatedCompositeFieldContainer[Person]
    dropped_frame_ids: _containers.RepeatedScalarFieldContainer[int]
    detected: bool
    error: Error
    width: int
    height: int
    model: ModelInfo
    timing_ms: _containers.ScalarMap[str, float]
    drops_only: bool
    def __init__(self, frame_id: _Optional[int] = ..., people: _Optional[_Iterable[_Union[Person, _Mapping]]] = ..., dropped_frame_ids: _Optional[_Iterable[int]] = ..., detected: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., timing_ms: _Optional[_Mapping[str, float]] = ..., drops_only: _Optional[bool] = ...) -> None: ...
