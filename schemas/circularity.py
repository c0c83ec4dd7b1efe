"""Circularity registry data: where sorting streams go and the targets the material
figures are measured against (docs/materials.md)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import STREAM_PATTERN
from schemas.named_queries import load_queries
from schemas.registry import SLUG_PATTERN, Material, Name

QUERIES = load_queries("schemas", "sql/queries/circularity.sql")


class Outcome(StrEnum):
    """What becomes of what a sorting stream takes."""

    REUSE = "reuse"
    MATERIAL_RECYCLING = "material_recycling"
    ENERGY_RECOVERY = "energy_recovery"
    RESIDUAL = "residual"


class Metric(StrEnum):
    """The rates of `GET /v1/stats/materials` a target can be set on."""

    COLLECTION_RATE = "collection_rate"
    MATERIAL_RECYCLING_RATE = "material_recycling_rate"
    REUSE_SHARE = "reuse_share"
    RECYCLED_CONTENT_SHARE = "recycled_content_share"
    RENEWABLE_CONTENT_SHARE = "renewable_content_share"
    RECYCLED_OR_RENEWABLE_SHARE = "recycled_or_renewable_share"
    FIBRE_SHARE = "fibre_share"


Fraction = Annotated[Decimal, Field(ge=0, le=1, decimal_places=5)]


class SortingStreamFields(BaseModel):
    """Where a sorting stream goes; the stream's name comes from the URL."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"outcome": "material_recycling", "material": "PET", "name": "Clear PET bales"}
            ]
        },
    )

    outcome: Outcome
    material: Material | None = Field(
        default=None, description="what the stream recycles; only with material_recycling"
    )
    name: Name

    @model_validator(mode="after")
    def _material_only_for_recycling(self) -> SortingStreamFields:
        if self.material is not None and self.outcome is not Outcome.MATERIAL_RECYCLING:
            raise ValueError(f"material is only meaningful with outcome material_recycling, "
                             f"not {self.outcome}")  # fmt: skip
        return self


class SortingStream(SortingStreamFields):
    """A stream a sorting site sorts into, and its outcome."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pet-clear",
                    "outcome": "material_recycling",
                    "material": "PET",
                    "name": "Clear PET bales",
                }
            ]
        }
    )

    stream: Annotated[str, Field(pattern=STREAM_PATTERN)]


TARGET_EXAMPLE: dict[str, Any] = {
    "name": "Material recycling of plastic packaging",
    "metric": "material_recycling_rate",
    "materials": ["PET", "HDPE", "PP"],
    "value": "0.55",
    "year": 2030,
    "baseline_value": "0.21",
    "baseline_year": 2020,
    "source": "Norwegian plastic strategy",
}


class TargetFields(BaseModel):
    """A circularity target: a metric of some materials to reach by the end of a year."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [TARGET_EXAMPLE]}
    )

    name: Name
    metric: Metric
    materials: Annotated[list[Material], Field(min_length=1, max_length=8)] | None = Field(
        default=None, description="the materials it covers; null: all"
    )
    value: Fraction = Field(description="the rate to reach, as a fraction (0.55 = 55 %)")
    year: Annotated[int, Field(ge=2000, le=2100)] = Field(description="reached by its end")
    baseline_value: Fraction | None = None
    baseline_year: Annotated[int, Field(ge=1990, le=2100)] | None = None
    source: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]

    @model_validator(mode="after")
    def _baseline_whole(self) -> TargetFields:
        if (self.baseline_value is None) != (self.baseline_year is None):
            raise ValueError("give baseline_value and baseline_year together, or neither")
        if self.materials is not None and len(set(self.materials)) != len(self.materials):
            raise ValueError("materials: each material once")
        return self


class Target(TargetFields):
    """A target and its id."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "no-plastic-recycling-2030", **TARGET_EXAMPLE}]}
    )

    id: Annotated[str, Field(pattern=SLUG_PATTERN)]


def upsert_sorting_stream(conn: psycopg.Connection[Any], record: SortingStream) -> bool:
    """Create or replace a stream's outcome; True when created. Reports read the mapping
    when asked, so a correction applies to all past sorting too."""
    row = conn.execute(QUERIES["upsert_sorting_stream"], record.model_dump()).fetchone()
    return bool(row and row[0])


def upsert_target(conn: psycopg.Connection[Any], record: Target) -> bool:
    """Create or replace a target; True when created."""
    params = record.model_dump()
    params["materials"] = [m.value for m in record.materials] if record.materials else None
    row = conn.execute(QUERIES["upsert_target"], params).fetchone()
    return bool(row and row[0])
