"""Every response body of the API, as pydantic models (they become the OpenAPI page)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from convlens.app.core.verdict import Verdict


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. unreadable_image")
    message: str = Field(description="what went wrong, for a person")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class InputInfo(BaseModel):
    width: int = Field(description="width of the uploaded image in pixels")
    height: int
    format: str = Field(description="decoded file format, e.g. PNG")
    inverted: bool = Field(description="dark ink on a light background was inverted to MNIST's white on black")


class Timing(BaseModel):
    preprocess_ms: float
    inference_ms: float = Field(description="queueing plus the forward pass")
    total_ms: float


class VerdictScores(BaseModel):
    digit: float = Field(ge=0, le=1)
    not_a_digit: float = Field(ge=0, le=1)
    several_digits: float = Field(ge=0, le=1)


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9, description="the network's best guess; `verdict` says whether to believe it")
    confidence: float = Field(ge=0, le=1, description="probability of `digit`")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="softmax; index = digit")
    verdict: Verdict | None = Field(
        None,
        description="whether the upload is one digit: `digit`; `not_a_digit` (a letter, a symbol, a drawing, a "
        "photo, noise); `several_digits` (two or more digits); `blank` is never a 200 answer: an upload "
        "without ink is the 400 `blank_image` error. Null only when the service runs without its verdict network.",
    )
    verdict_scores: VerdictScores | None = Field(
        None,
        description="the verdict network's probabilities; the verdict is `digit` unless `digit` falls below "
        "the threshold on its card (GET /v1/models), and then the number reader's second look decides "
        "between `not_a_digit` and `several_digits`",
    )
    reading: str | None = Field(
        None,
        description="with `several_digits`: the numbers the reader sees in the upload, space-separated "
        "(POST the upload to /v1/read for their digits and boxes); otherwise null",
        examples=["42"],
    )
    model: str = Field(description="name of the model that answered (see /v1/models)")
    model_version: str
    input: InputInfo
    timing: Timing


class BatchItem(BaseModel):
    index: int
    filename: str | None = None
    prediction: Prediction | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    model: str
    model_version: str
    count: int
    succeeded: int
    results: list[BatchItem]
    timing: Timing


class LayerActivation(BaseModel):
    name: str
    type: str
    shape: list[int] = Field(description="[channels, height, width]")
    min: float
    max: float
    values: list[list[list[float]]] | None = Field(None, description="activations [c][y][x]; omitted with values=false")
    png: str | None = Field(None, description="data:image/png;base64 grid of all channels, with png=true")


class InputImage(BaseModel):
    shape: list[int] = Field(description="[1, 28, 28]")
    values: list[list[float]] = Field(description="the 28 x 28 ink map the network saw, 0 = background, 1 = ink")
    png: str | None = Field(None, description="data:image/png;base64 of the ink map, with png=true")


class FeatureMapsResponse(BaseModel):
    prediction: Prediction
    input_image: InputImage
    normalization: str = Field(description="how PNG grids map values to colours")
    layers: list[LayerActivation]


class Explanation(BaseModel):
    model: str
    digit: int = Field(ge=0, le=9, description="the predicted digit")
    target: int = Field(ge=0, le=9, description="the digit whose evidence the heat map shows")
    method: Literal["gradcam", "saliency", "occlusion"]
    heatmap: list[list[float]] = Field(
        description="28 x 28 numbers in [0, 1] on the grid of input_image: how much each pixel counted"
    )
    prediction: Prediction
    input_image: list[list[float]] = Field(description="the 28 x 28 ink map the network saw")


class ShiftResult(BaseModel):
    dx: int = Field(description="pixels to the right (negative: left)")
    dy: int = Field(description="pixels down (negative: up)")
    digit: int
    confidence: float
    conv_cosine: float | None = Field(
        None, description="cosine similarity of the first conv output with the unshifted one (CNNs only)"
    )
    pool_cosine: float | None = Field(
        None, description="cosine similarity of the last pool output with the unshifted one (CNNs only)"
    )


class ShiftModelResult(BaseModel):
    model: str
    parameters: int
    digit: int = Field(description="the prediction for the unshifted input")
    stable: float = Field(description="share of shifts that keep the unshifted prediction")
    mean_conv_cosine: float | None = None
    mean_pool_cosine: float | None = None
    shifts: list[ShiftResult]


class ShiftExperiment(BaseModel):
    max_shift: int
    input_image: list[list[float]] = Field(description="the unshifted 28 x 28 ink map")
    models: list[ShiftModelResult]


class LayerRow(BaseModel):
    name: str
    type: str
    output_shape: list[int] = Field(description="per image: [C, H, W] or [N]")
    parameters: int


class TrainingSummary(BaseModel):
    command: str | None = None
    seed: int | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    seconds: float | None = None
    history: list[dict[str, Any]] = []


class ModelCard(BaseModel):
    name: str
    version: str
    description: str | None = None
    created: str | None = None
    architecture: dict[str, Any] = Field(description="the NetConfig the network is built from")
    layers: list[LayerRow]
    parameters: int
    feature_layers: list[str] = Field(description="layer names accepted by the feature-map endpoints")
    filter_layers: list[str] = Field(description="conv layers whose 3x3 filters /v1/model/filters draws")
    test_accuracy: float | None = Field(None, description="fraction of the 10,000 MNIST test images")
    per_class_accuracy: list[float] | None = None
    confusion_matrix: list[list[int]] | None = None
    weights_sha256: str
    serving_precision: Literal["float32", "bfloat16"] = Field(
        description="number format of the network that makes predictions (float32 or bfloat16); "
        "test_accuracy is the float32 network's"
    )
    training: TrainingSummary
    data: dict[str, Any] = {}
    environment: dict[str, Any] = {}


class VerdictCard(BaseModel):
    version: str
    architecture: dict[str, Any] = Field(description="the verdict head's config (model/verdict_head.py)")
    parameters: int = Field(description="the head's own; the trunk's are the shipped network's")
    trunk: dict[str, Any] = Field(
        {}, description="the digit network whose activations the head reads: its folder, version and sha256"
    )
    classes: list[str] = Field(description="its outputs, in order")
    threshold: float = Field(description="the verdict is `digit` unless the digit probability falls below this")
    validation: dict[str, Any] = Field({}, description="recall per verdict on its validation split")
    benchmarks: dict[str, Any] = Field({}, description="held-out figures (benchmarks/verdict.py)")
    weights_sha256: str


class CutsCard(BaseModel):
    version: str
    architecture: dict[str, Any] = Field(description="the NetConfig of the cut network")
    parameters: int
    classes: list[str] = Field(description="its outputs, in order")
    validation: dict[str, Any] = Field({}, description="accuracy on the reader's candidates from held-back digits")
    weights_sha256: str


class ModelList(BaseModel):
    default: str = Field(description="the model that answers when a request names none")
    models: list[ModelCard]
    verdict: VerdictCard | None = Field(None, description="the network that judges whether an upload is one digit")
    cuts: CutsCard | None = Field(
        None, description="the network /v1/read scores its candidate cuts with: is a candidate exactly one digit?"
    )


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str
    model_version: str | None = Field(None, description="the default model's version")
    models: list[str] = Field([], description="every model served, all warmed up")


# -- /v1/read ------------------------------------------------------------------------------

PixelBox = list[int]
BOX = "[x0, y0, x1, y1] in pixels of the upload as a person sees it (after EXIF orientation), x1 and y1 exclusive"


class ReadDigit(BaseModel):
    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0, le=1, description="probability of `digit`")
    box: PixelBox = Field(min_length=4, max_length=4, description=f"the digit's ink: {BOX}")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="softmax; index = digit")


class ReadNumber(BaseModel):
    text: str = Field(description="the digits, left to right", examples=["0755"])
    confidence: float = Field(ge=0, le=1, description="the product of its digits' confidences")
    box: PixelBox = Field(min_length=4, max_length=4, description=f"the union of its digits' boxes: {BOX}")
    digits: list[ReadDigit]


class ReadTiming(BaseModel):
    segment_ms: float = Field(description="decoding, finding the ink and cutting it into candidates")
    inference_ms: float = Field(description="scoring every candidate, queueing included, and choosing the cuts")
    total_ms: float


class ReadResponse(BaseModel):
    numbers: list[ReadNumber] = Field(
        description="in reading order: rows top to bottom, left to right within a row; a gap wider than 0.75 "
        "of the digit height starts a new number. Empty when the image holds no digits."
    )
    width: int = Field(description="of the upload as a person sees it (after EXIF orientation)")
    height: int
    format: str
    truncated: bool = Field(
        description="the page held more ink than one request reads (over 3,000 strokes or 6,000 candidates): "
        "what was read is here, the rest is not"
    )
    candidates: int = Field(description="pictures of possible digits the network scored")
    model: str
    model_version: str
    timing: ReadTiming
