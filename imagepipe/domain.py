"""The pipeline's typed domain model: the run's input, each step's request and result, and the image record.

Every orchestration and activity payload is one of these pydantic models, sent through Durable as plain JSON
(``to_json``) and read back with ``model_validate`` (or ``decode_result`` for step results), so the wire shape is
written down once and ``docs/contracts.md`` is generated from it (``python -m imagepipe.contracts_doc``).

Inputs are hostile: anyone who may start an orchestration chooses its input, so ``StepInput`` checks that the
image id, blob name, ETag and instance id belong together, and every string and number is bounded.

A step ends in one of four outcomes (``Outcome``): ``ok`` (the step's own result type), ``failed`` (a permanent
failure with a reason: never retried), ``superseded`` (a newer blob version exists; its own run does the work)
or ``deleted`` (the client deleted the image). Transient failures are not results: activities raise them and
Durable retries. Results keep the ``ok`` flag (and ``superseded`` / ``deleted``) that histories written before
the ``outcome`` field carry; ``decode_result`` reads both, so runs in flight across a deployment replay.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from imagepipe.ids import image_id_from_blob_name, instance_id, is_image_id
from imagepipe.retry import ExponentialRetryOptions
from imagepipe.vocabulary import Step

JsonDict = dict[str, Any]
SCHEMA_VERSION = 1
MAX_TEXT = 2000

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"^[^\x00-\x1f\x7f]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")]
Timestamp = Annotated[str, Field(max_length=40, description="UTC ISO-8601 with milliseconds and Z")]


class Wire(BaseModel):
    """A JSON payload: camelCase on the wire, immutable, unknown fields ignored (older or newer writers)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def to_json(self) -> JsonDict:
        """The JSON-native dict sent through Durable or stored."""
        return self.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------------------------------------------
# Retry policies (declared where the orchestrator calls the activity; the vision one travels in the input)
# ---------------------------------------------------------------------------------------------------


class RetryPolicy(Wire):
    """Exponential back-off for one activity call, in the Durable extension's retry-options names."""

    first_retry_interval_in_milliseconds: int = Field(ge=100, le=86_400_000, description="delay before attempt 2")
    max_number_of_attempts: int = Field(ge=1, le=30, description="attempts in all, the first included")
    backoff_coefficient: float = Field(default=2.0, ge=1.0, le=10.0, description="each delay is the last times this")
    max_retry_interval_in_milliseconds: int = Field(
        default=60_000, ge=100, le=86_400_000, description="cap on one delay"
    )

    def options(self) -> ExponentialRetryOptions:
        return ExponentialRetryOptions(
            self.first_retry_interval_in_milliseconds,
            self.max_number_of_attempts,
            self.backoff_coefficient,
            self.max_retry_interval_in_milliseconds,
        )


#: Blob and record storage steps: a short outage is retried, a long one fails the step.
STORAGE_RETRY = RetryPolicy(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
#: Vision steps when the input carries no policy (the starter puts the settings' policy in every input).
VISION_RETRY = RetryPolicy(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=5)


# ---------------------------------------------------------------------------------------------------
# Errors and run facts
# ---------------------------------------------------------------------------------------------------


class RunError(Wire):
    """Why an image failed: what the client reads in the record's ``error``."""

    code: Text = Field(description="machine-readable reason, e.g. `undecodable_image`, `lost`")
    message: Text = Field(description="what happened, for a person")
    step: Text = Field(description="the step that failed (an activity name, `upload` or `run`)")
    guidance: Text | None = Field(default=None, description="what the client can do (optional)")

    @classmethod
    def of(cls, code: str, message: str, step: str, guidance: str | None = None) -> RunError:
        """A reason from any text (an exception's message included): control characters become spaces and
        each part is cut to its limit, so building a reason never fails."""

        def clean(text: str) -> str:
            flat = " ".join("".join(" " if ch < " " or ch == "\x7f" else ch for ch in text).split())
            return (flat or "unknown")[:MAX_TEXT]

        return cls(
            code=clean(code), message=clean(message), step=clean(step), guidance=clean(guidance) if guidance else None
        )

    @model_serializer(mode="wrap")
    def _without_empty_guidance(self, handler: Any) -> JsonDict:
        data: JsonDict = handler(self)
        if data.get("guidance") is None:
            data.pop("guidance", None)
        return data


class RunFacts(Wire):
    """Timings of one run, written on the record's ``run`` by ``persist_record``."""

    started_at: Timestamp | None = Field(default=None, description="when the run started")
    completed_at: Timestamp | None = Field(default=None, description="when the run asked for the final write")
    stages_ms: dict[Name, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=16, description="milliseconds spent in each step, by step name"
    )


# ---------------------------------------------------------------------------------------------------
# Requests: the orchestration input and what each activity receives
# ---------------------------------------------------------------------------------------------------


class StepInput(Wire):
    """The blob version a run is for; every activity receives it and refuses it unless its parts belong together."""

    image_id: str = Field(max_length=26, description="the image id (26 characters, 0-9 and lowercase letters)")
    blob_name: str = Field(max_length=40, description="`<imageId>.<ext>`: the image's blob")
    etag: Text = Field(max_length=256, description="the blob version (ETag) the run is for")
    instance_id: str = Field(max_length=64, description="`<imageId>-<version key>`, a function of id and ETag")

    @field_validator("etag")
    @classmethod
    def _unquoted(cls, etag: str) -> str:
        return etag.strip('"') or etag

    @model_validator(mode="after")
    def _belongs_together(self) -> StepInput:
        if not is_image_id(self.image_id):
            raise ValueError("imageId must be an image id (26 characters, 0-9 and lowercase letters)")
        if image_id_from_blob_name(self.blob_name) != self.image_id:
            raise ValueError(f"blobName must name the blob of image {self.image_id} (<imageId>.<ext>)")
        if self.instance_id != instance_id(self.image_id, self.etag):
            raise ValueError("instanceId does not belong to this image and blob version")
        return self

    def step(self) -> StepInput:
        """Just the blob-version fields (what a subclass adds left out)."""
        return StepInput(image_id=self.image_id, blob_name=self.blob_name, etag=self.etag, instance_id=self.instance_id)


class PipelineInput(StepInput):
    """The ``image_pipeline`` orchestration input, written by the starter and the reconcile sweep."""

    source: Name | None = Field(default=None, description="who started the run: `eventgrid`, `sweep`, `replay`")
    retry: RetryPolicy = Field(default=VISION_RETRY, description="retry policy of the vision steps")
    vision_quota: bool = Field(
        default=False, description="ask the shared `vision_quota` entity before each vision call (AI Vision runs)"
    )


class VisionStepInput(StepInput):
    """Input of ``analyze_image`` and ``read_text``."""

    profile: Name = Field(description="the profile ``fetch_image_metadata`` found for the image")


class PersistInput(StepInput):
    """Input of ``persist_record``: the status the run reached and, for a failure, why."""

    status: Literal["completed", "failed"] = Field(default="completed", description="the status to record")
    error: RunError | None = Field(default=None, description="the reason; required when status is `failed`")
    run: RunFacts = Field(default_factory=lambda: RunFacts(), description="the run's timings")

    @model_validator(mode="after")
    def _failure_has_a_reason(self) -> PersistInput:
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed status needs an error with code, message and step")
        return self


# ---------------------------------------------------------------------------------------------------
# Step results
# ---------------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    DELETED = "deleted"


class _NotOk(Wire):
    """A step result that ends the run without the step's work: ``ok`` is false on the wire."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return False


class Failure(_NotOk):
    """A permanent failure: recorded on the record, ends the run Failed, never retried."""

    outcome: Literal[Outcome.FAILED] = Outcome.FAILED
    error: RunError


class Superseded(_NotOk):
    """A newer blob version exists (or no image has arrived yet): this run ends without writing."""

    outcome: Literal[Outcome.SUPERSEDED] = Outcome.SUPERSEDED
    reason: Text | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def superseded(self) -> bool:
        return True


class Deleted(_NotOk):
    """The client deleted the image through the API: this run ends without writing."""

    outcome: Literal[Outcome.DELETED] = Outcome.DELETED
    reason: Text | None = "the image was deleted through the API"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def deleted(self) -> bool:
        return True


class _Succeeded(Wire):
    outcome: Literal[Outcome.OK] = Outcome.OK

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return True


class Fetched(_Succeeded):
    """``fetch_image_metadata``: the blob version is a valid image, now ``processing`` on its record."""

    profile: Name = Field(description="the image's profile")
    format: str = Field(max_length=8, description="JPEG, PNG, GIF, BMP, WEBP or TIFF")
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    phash: str = Field(max_length=16, description="64-bit difference hash, 16 hex digits")


class Analyzed(_Succeeded):
    """``analyze_image``: the analysis is on the record; whether OCR should follow."""

    text_heavy: bool = Field(default=False, description="run `read_text` next")
    top_tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=5)
    labels: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    provider: str | None = Field(default=None, max_length=64, description="the vision provider that answered")


class TextRead(_Succeeded):
    """``read_text``: the OCR result is on the record."""

    lines: int = Field(default=0, ge=0)
    characters: int = Field(default=0, ge=0)
    fields: int = Field(default=0, ge=0, description="document fields read (profiles with `documentFields`)")


class Persisted(_Succeeded):
    """``persist_record``: the final status was written."""

    status: Literal["completed", "failed"]
    near_duplicates: int = Field(default=0, ge=0, description="near duplicates found (completed only)")


Ended = Superseded | Deleted
NotOk = Failure | Superseded | Deleted
FetchResult = Annotated[Fetched | Failure | Superseded | Deleted, Field(discriminator="outcome")]
AnalyzeResult = Annotated[Analyzed | Failure | Superseded | Deleted, Field(discriminator="outcome")]
ReadTextResult = Annotated[TextRead | Failure | Superseded | Deleted, Field(discriminator="outcome")]
PersistResult = Annotated[Persisted | Failure | Superseded | Deleted, Field(discriminator="outcome")]

R = TypeVar("R")


def _with_outcome(raw: Any) -> Any:
    """A result written before the ``outcome`` field (``{"ok": ...}`` plus a flag) with its outcome added."""
    if not isinstance(raw, dict) or "outcome" in raw:
        return raw
    if raw.get("ok") is True:
        return {**raw, "outcome": Outcome.OK.value}
    if raw.get("superseded"):
        return {**raw, "outcome": Outcome.SUPERSEDED.value}
    if raw.get("deleted"):
        return {**raw, "outcome": Outcome.DELETED.value}
    if "error" in raw:
        return {**raw, "outcome": Outcome.FAILED.value}
    return raw


def decode_result(adapter: TypeAdapter[R], raw: Any, step: Step) -> R | Failure:
    """The typed result of ``step`` from its JSON (today's or a legacy shape); a ``Failure`` naming the problem
    when the result cannot be read (a replay must end clearly, never crash)."""
    try:
        return adapter.validate_python(_with_outcome(raw))
    except ValidationError as exc:
        return Failure(
            error=RunError.of(
                "invalid_step_result", f"{step} returned a result this version cannot read: {describe(exc)}", step
            )
        )


def describe(exc: ValidationError) -> str:
    """A short, single-line account of what is wrong with a payload (field and reason, at most three)."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not where and error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = f"the input must be a JSON object, not {type(error['input']).__name__}"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)[: MAX_TEXT - 200]


FETCH_RESULT: TypeAdapter[Fetched | Failure | Superseded | Deleted] = TypeAdapter(FetchResult)
ANALYZE_RESULT: TypeAdapter[Analyzed | Failure | Superseded | Deleted] = TypeAdapter(AnalyzeResult)
READ_TEXT_RESULT: TypeAdapter[TextRead | Failure | Superseded | Deleted] = TypeAdapter(ReadTextResult)
PERSIST_RESULT: TypeAdapter[Persisted | Failure | Superseded | Deleted] = TypeAdapter(PersistResult)


# ---------------------------------------------------------------------------------------------------
# The record (one document per image)
# ---------------------------------------------------------------------------------------------------


class BlobFacts(Wire):
    container: str = Field(description="the images container")
    name: str = Field(description="`<imageId>.<ext>`")
    etag: str | None = Field(description="the blob version; null until a run records it")
    size: int | None = Field(description="bytes; null until known")
    content_type: str | None = Field(description="the MIME type")
    last_modified: Timestamp | None = Field(description="the blob version's time; null until a run records it")


class ImageFacts(Wire):
    width: int
    height: int
    format: str = Field(description="JPEG, PNG, GIF, BMP, WEBP or TIFF")
    sha256: str = Field(description="of the stored bytes")
    phash: str = Field(description="64-bit difference hash, 16 hex digits (near-duplicate search)")
    exif: JsonDict = Field(default_factory=dict, description="`captureTime`, `cameraMake`, `cameraModel`, `gps`")


class ClientFacts(Wire):
    original_name: str | None = Field(description="the uploaded file's base name")
    metadata: dict[str, str] = Field(default_factory=dict, description="the client's metadata (at most 16 keys)")


class Label(Wire):
    name: str
    confidence: float
    evidence: str = Field(description="the strongest support, e.g. `tag:car`, `object:car`, `text:total`")


class CustomLabel(Wire):
    label_set: str = Field(description="the custom label set's name (docs/custom-labels.md)")
    version: int = Field(description="the label set version that classified the image")
    name: str = Field(description="the best label of the set, or `unknown` below the set's threshold")
    confidence: float = Field(description="0..1; 0.5 at the set's threshold (a score, not a probability)")


class NearDuplicate(Wire):
    id: str
    distance: int = Field(description="Hamming distance of the perceptual hashes (bits)")


class RecordRun(RunFacts):
    instance_id: str | None = Field(default=None, description="the orchestration instance of the recorded version")
    provider: str | None = Field(default=None, description="the vision provider (`azure` or `local`)")
    model_version: str | None = Field(default=None, description="the provider's model version")

    def to_json(self) -> JsonDict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


class Acceptance(Wire):
    source: Literal["upload", "sas"] = Field(description="`POST /api/images` or an upload URL")
    accepted_at: Timestamp = Field(description="when the upload was accepted")
    upload_expires_at: Timestamp | None = Field(default=None, description="when the upload URL expires (`sas`)")


# ---------------------------------------------------------------------------------------------------
# Document fields (docs/document-fields.md)
# ---------------------------------------------------------------------------------------------------


class FieldPoint(Wire):
    x: float
    y: float


class FieldSource(Wire):
    """Where a field was read: an OCR line (or Document Intelligence region) and its polygon in image pixels."""

    text: str = Field(max_length=MAX_TEXT, description="the line's text (the region's content, Azure mode)")
    bounding_polygon: list[FieldPoint] = Field(default_factory=list, max_length=64, description="its outline")


class DocumentField(Wire):
    """One typed field, named as Azure AI Document Intelligence's prebuilt invoice model names it."""

    type: Literal["string", "date", "currency", "identifier", "registration"] = Field(description="the value type")
    value: str = Field(max_length=MAX_TEXT, description="the text as read")
    normalized: str = Field(
        max_length=200,
        description="ISO date, amount with 2+ decimals (`1234.56`), upper-case identifier or registration, name",
    )
    amount: float | None = Field(default=None, description="`currency` fields: the amount")
    currency_code: str | None = Field(default=None, max_length=3, description="`currency` fields: ISO 4217 code")
    confidence: float = Field(ge=0, le=1, description="0..1")
    sources: list[FieldSource] = Field(default_factory=list, max_length=4, description="value line first")


class DocumentFields(Wire):
    """Fields read from a text-heavy image when its profile asks for them (``read_text``)."""

    provider: str = Field(max_length=64, description="`local` or `azure-document-intelligence`")
    model_version: str = Field(max_length=64, description="the extractor or Document Intelligence model")
    locale: str = Field(max_length=16, description="the profile's locale (dates, decimal separator)")
    fields: dict[Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9]*$")], DocumentField] = Field(
        default_factory=dict,
        max_length=64,
        description="by name: ClaimNumber, PolicyNumber, IncidentDate, ClaimDate, InvoiceId, InvoiceDate, "
        "SubTotal, TotalTax, InvoiceTotal, AmountDue, VehicleRegistration, PolicyholderName, ClaimantName, "
        "InsurerName, VendorName, CustomerName",
    )
    truncated: int = Field(default=0, ge=0, description="OCR lines left unread (work is bounded per document)")


RecordStatus = Literal["pending", "processing", "completed", "failed"]


class Record(Wire):
    """One document per image (Cosmos DB partition key ``/id``); written by the API and the pipeline."""

    id: str = Field(description="the image id")
    schema_version: int = Field(default=SCHEMA_VERSION, description="the document's schema version")
    profile: str = Field(description="the profile that chose features, labels and OCR policy")
    status: RecordStatus = Field(description="`pending` -> `processing` -> `completed` or `failed`")
    blob: BlobFacts
    image: ImageFacts | None = Field(default=None, description="decoded facts; null until the run validated the bytes")
    client: ClientFacts
    analysis: JsonDict | None = Field(
        default=None, description="AI Vision 4.0 `ImageAnalysisResult` JSON (+ `imagepipe`)"
    )
    read_result: JsonDict | None = Field(default=None, description="OCR (`readResult`: blocks, lines, words)")
    text: str = Field(default="", description="all OCR text, one line per line, for search")
    document_fields: DocumentFields | None = Field(
        default=None, description="typed fields of a document (profiles that ask for them; docs/document-fields.md)"
    )
    tags: list[str] = Field(default_factory=list, description="lower-case tag and object names, for search")
    labels: list[Label] = Field(default_factory=list, description="the profile's labels that hold, best first")
    label_names: list[str] = Field(default_factory=list, description="names of `labels`, for search")
    near_duplicates: list[NearDuplicate] = Field(default_factory=list, description="found when completed")
    custom_labels: list[CustomLabel] = Field(
        default_factory=list, description="one entry per active custom label set of the profile"
    )
    custom_label_names: list[str] = Field(
        default_factory=list, description="`<labelSet>:<name>` of `customLabels`, for search"
    )
    run: RecordRun = Field(default_factory=lambda: RecordRun(), description="the run that wrote the version")
    error: RunError | None = Field(default=None, description="why the image failed (status `failed`)")
    acceptance: Acceptance | None = Field(default=None, description="null for blobs that arrived without the API")
    created_at: Timestamp = Field(description="first acceptance of this image id")
    updated_at: Timestamp = Field(description="last write")

    def to_json(self) -> JsonDict:
        data = super().to_json()
        data["run"] = self.run.to_json()
        return data
